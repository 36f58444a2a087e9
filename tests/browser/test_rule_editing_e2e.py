"""In a real browser: edit an existing rule on the Alert rules page; an empty filtered Incidents list.

Reuses the Voilà server fixture of ``test_dashboard_e2e.py`` (this module gets its own
server over its own seeded data directory); Chromium and the tab come from
``tests/browser_helpers.py`` through ``tests/browser/conftest.py``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.browser.test_dashboard_e2e import _open, server  # noqa: F401
from tests.dashboard.seed import Seeded
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
