"""In a real browser: edit an existing rule and create a match rule after a 24 h preview on the
Alert rules page; an empty filtered Incidents list.

Reuses the Voilà server fixture of ``test_dashboard_e2e.py`` (this module gets its own
server over its own seeded data directory); Chromium and the tab come from
``tests/browser_helpers.py`` through ``tests/browser/conftest.py``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlmodel import select

from tests.browser.test_dashboard_e2e import _open, server  # noqa: F401
from tests.dashboard.seed import Seeded
from tests.waiting import wait_until
from workbench.catalog.db import get_engine, session_scope
from workbench.catalog.models import AlertRule
from workbench.config import Settings

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _threshold(settings: Settings, rule_id: object) -> int | None:
    with session_scope(get_engine(settings.database_url)) as s:
        rule = s.get(AlertRule, rule_id)
        return None if rule is None else rule.threshold


def test_edit_a_rule_in_the_browser(
    server: tuple[str, Settings, Seeded], page: Any  # noqa: F811
) -> None:
    base, settings, world = server
    _open(page, base, "rules")
    row = f".wb-rule-{world.rules[0]}"
    page.click(f"{row} .wb-rule-edit")
    field = f"{row} .wb-edit-threshold input"
    page.wait_for_selector(field, state="visible", timeout=15_000)
    assert page.input_value(field) == "10"
    page.fill(field, "0")
    page.click(f"{row} .wb-rule-save")
    err = page.wait_for_selector(f"{row} .wb-edit-error-threshold .wb-field-error", timeout=15_000)
    assert "greater than or equal to 1" in err.inner_text()
    page.fill(field, "42")
    page.click(f"{row} .wb-rule-save")
    page.wait_for_selector(f"{row} .wb-ok-box:has-text('Saved')", timeout=15_000)
    deadline = time.monotonic() + 10
    while _threshold(settings, world.rules[0]) != 42 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _threshold(settings, world.rules[0]) == 42
    assert "≥ 42 in 5 min" in page.inner_text(row)


def test_empty_filtered_incidents_name_the_filter(
    server: tuple[str, Settings, Seeded], page: Any  # noqa: F811
) -> None:
    base, _, _ = server
    _open(page, base, "incidents", "?status=acknowledged&service=billing")
    text = page.wait_for_selector(".wb-empty-filtered", timeout=15_000).inner_text()
    assert "No acknowledged incidents for service billing" in text
    assert "status filter" in text and "service filter" in text
    page.click(".wb-clear-filters")
    page.wait_for_selector(".wb-incident-table .wb-row", timeout=15_000)


def _kinds(settings: Settings) -> dict[str, str | None]:
    with session_scope(get_engine(settings.database_url)) as s:
        return {r.name: r.kind for r in s.exec(select(AlertRule))}


def test_create_a_match_rule_with_a_preview_in_the_browser(
    server: tuple[str, Settings, Seeded], page: Any  # noqa: F811
) -> None:
    base, settings, _ = server
    _open(page, base, "rules")
    page.select_option(".wb-rule-kind select", label="Match: a message text")
    page.wait_for_selector(".wb-rule-row-match", state="visible", timeout=15_000)
    assert not page.is_visible(".wb-rule-row-min-events")
    page.fill(".wb-rule-name input", "auth failures")
    page.fill(".wb-rule-service input", "auth-service")
    page.fill(".wb-rule-threshold input", "5")
    page.click(".wb-rule-create")  # no text yet: the error sits beside the field
    err = page.wait_for_selector(".wb-error-match .wb-field-error", timeout=15_000)
    assert "match is required for kind match" in err.inner_text()
    page.fill(".wb-rule-match input", "failed to AUTHENTICATE")
    page.click(".wb-rule-preview")
    table = page.wait_for_selector(".wb-backtest .wb-preview-table", timeout=60_000)
    assert "would fire at" in table.inner_text()
    assert "Over the last 24 h" in page.inner_text(".wb-backtest")
    assert "would have opened 1 incident(s)" in page.inner_text(".wb-backtest")
    page.wait_for_selector(".wb-backtest-chart .js-plotly-plot", timeout=30_000)
    assert "auth failures" not in _kinds(settings)  # a preview saves nothing
    page.click(".wb-rule-create")
    page.wait_for_selector(".wb-form-result .wb-ok-box:has-text('Created rule')", timeout=15_000)
    wait_until(lambda: _kinds(settings).get("auth failures") == "match", timeout=10)


def _flap(settings: Settings, name: str) -> tuple[object, ...] | None:
    with session_scope(get_engine(settings.database_url)) as s:
        rule = s.exec(select(AlertRule).where(AlertRule.name == name)).first()
        return None if rule is None else (rule.pending_minutes, rule.repeat_minutes)


def test_set_flap_control_in_the_collapsed_advanced_section(
    server: tuple[str, Settings, Seeded], page: Any  # noqa: F811
) -> None:
    base, settings, _ = server
    _open(page, base, "rules")
    pending = ".wb-rule-pending-minutes input"
    assert not page.is_visible(pending)  # collapsed by default
    page.click(".wb-rule-advanced >> text=Advanced: flap control and reminders")
    page.wait_for_selector(pending, state="visible", timeout=15_000)
    page.fill(".wb-rule-name input", "flappy")
    page.fill(".wb-rule-service input", "api")
    page.fill(pending, "2")
    page.fill(".wb-rule-repeat-minutes input", "30")
    page.click(".wb-rule-create")
    page.wait_for_selector(".wb-form-result .wb-ok-box:has-text('Created rule')", timeout=15_000)
    wait_until(lambda: _flap(settings, "flappy") == (2, 30), timeout=10)
    row = page.wait_for_selector(".wb-rule-row:has-text('flappy')", timeout=15_000)
    assert "for 2 min · repeats every 30 min" in row.inner_text()
