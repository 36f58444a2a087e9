"""End to end: a real Voilà server over a seeded data dir, driven by headless Chromium.

One server and one browser for the module (pre-heated kernels, as ``workbench
dashboard`` runs them). Screenshots of every page go to
``test-artifacts/screenshots/``; timings to ``test-artifacts/dashboard-timings.json``.
Chromium is Debian's (``/usr/bin/chromium``); never ``playwright install``.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.seed import Seeded, seed_catalog
from tests.live_server import stop_process
from workbench.catalog.db import dispose_engine, get_engine, session_scope
from workbench.catalog.models import (
    AlertIncident,
    AlertRule,
    EvaluationRun,
    NotificationChannel,
)
from workbench.config import Settings
from workbench.dashboard.serve import start_dashboard

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
TIMINGS = ROOT / "test-artifacts" / "dashboard-timings.json"
PAGES = ("overview", "logs", "incidents", "rules", "notifications")
REFRESH_S = 5
LOAD_TIMEOUT_MS = 60_000
_timings: dict[str, Any] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"voila exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/")
            status = conn.getresponse().status
            conn.close()
            if status in (301, 302):
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("voila did not start")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings, Seeded]]:
    """A Voilà server on a free loopback port over a freshly seeded data dir."""
    data = tmp_path_factory.mktemp("dashboard") / "data"
    data.mkdir()
    # No dashboard token even if the environment sets one: the browser opens pages directly.
    settings = Settings(WORKBENCH_DATA_DIR=data, WORKBENCH_REFRESH_SECONDS=REFRESH_S,  # type: ignore[call-arg]
                        WORKBENCH_DASHBOARD_TOKEN="")
    world = seed_catalog(settings, datetime.now(UTC))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH_", "DATABASE_URL"))}
    env["WORKBENCH_REFRESH_SECONDS"] = str(REFRESH_S)
    log = (data.parent / "voila.log").open("wb")
    proc = start_dashboard(settings, "127.0.0.1", port, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(port, proc)
        yield f"http://127.0.0.1:{port}", settings, world
    finally:
        stop_process(proc, timeout=15)
        log.close()
        dispose_engine(settings.database_url)
        TIMINGS.parent.mkdir(parents=True, exist_ok=True)
        TIMINGS.write_text(json.dumps(_timings, indent=2))


def _open(page: Any, base: str, key: str, query: str = "") -> float:
    """Open a page and wait until its widgets hold data; return seconds from request to ready."""
    t0 = time.monotonic()
    page.goto(f"{base}/voila/render/{key}.ipynb{query}", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(f".wb-page-{key} .wb-updated >> text=updated", timeout=LOAD_TIMEOUT_MS)
    return time.monotonic() - t0


def _error_outputs(page: Any) -> list[str]:
    sel = (
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'], "
        ".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr'], "
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']"
    )
    texts = page.locator(sel).all_inner_texts()
    body = page.inner_text("body")
    if "Traceback" in body:
        texts.append("Traceback on page")
    return texts


def _beat(settings: Settings) -> None:
    """Record a fresh evaluation run, as the scheduler would every minute."""
    now = datetime.now(UTC)
    with session_scope(get_engine(settings.database_url)) as s:
        s.add(EvaluationRun(now=now, started_at=now - timedelta(seconds=1), finished_at=now,
                            status="ok"))


def _status(settings: Settings, incident_id: uuid.UUID) -> str:
    with session_scope(get_engine(settings.database_url)) as s:
        inc = s.get(AlertIncident, incident_id)
        assert inc is not None
        return inc.status


def test_landing_page_is_the_overview(server: tuple[str, Settings, Seeded], page: Any) -> None:
    base, _, _ = server
    page.goto(base + "/", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(".wb-page-overview", timeout=LOAD_TIMEOUT_MS)
    assert page.url.endswith("/voila/render/overview.ipynb")


@pytest.mark.parametrize("key", PAGES)
def test_every_page_loads_without_error_output(
    server: tuple[str, Settings, Seeded], page: Any, key: str
) -> None:
    base, settings, _ = server
    _beat(settings)
    seconds = _open(page, base, key)
    _timings.setdefault("page_ready_s", {})[key] = round(seconds, 2)
    page.wait_for_timeout(500)
    assert _error_outputs(page) == []
    assert page.locator(".wb-error-box:visible").count() == 0
    # Navigation to every page and the heartbeat are on every page.
    for other in PAGES:
        assert page.locator(f".wb-nav a[href='{other}.ipynb']").count() == 1
    assert "alerting ran" in page.inner_text(".wb-heartbeat")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{key}.png"), full_page=True)


def test_trend_chart_is_a_plotly_plot_with_points(
    server: tuple[str, Settings, Seeded], page: Any
) -> None:
    base, _, _ = server
    _open(page, base, "overview")
    page.wait_for_selector(".wb-trend .js-plotly-plot .scatterlayer .trace", timeout=30_000)
    ys = page.evaluate("document.querySelector('.wb-trend .js-plotly-plot').data[0].y")
    assert len(ys) >= 280 and 0 in ys and sum(ys) >= 30
    # The range picker redraws the chart in place.
    page.click(".wb-range-picker button:has-text('1h')")
    page.wait_for_function(
        "document.querySelector('.wb-trend .js-plotly-plot')"
        " && document.querySelector('.wb-trend .js-plotly-plot').data[0].y.length <= 61",
        timeout=30_000,
    )


def test_acknowledge_click_updates_catalog_and_page(
    server: tuple[str, Settings, Seeded], page: Any
) -> None:
    base, settings, world = server
    assert world.open_incident is not None
    _open(page, base, "incidents")
    row = f".wb-incident-{world.open_incident}"
    page.wait_for_selector(f"{row} .wb-status-open")
    t0 = time.monotonic()
    page.click(f"{row} .wb-ack")
    page.wait_for_selector(f"{row} .wb-status-acknowledged", timeout=15_000)
    _timings["acknowledge_to_row_updated_s"] = round(time.monotonic() - t0, 3)
    assert _status(settings, world.open_incident) == "acknowledged"
    assert page.locator(f"{row} .wb-ack").count() == 0
    page.screenshot(path=str(SHOTS / "incidents-after-ack.png"), full_page=True)


def test_incident_link_opens_its_detail(server: tuple[str, Settings, Seeded], page: Any) -> None:
    base, _, world = server
    _open(page, base, "incidents", f"?incident={world.acked_incident}")
    detail = page.wait_for_selector(".wb-incident-detail .wb-kv", timeout=30_000)
    assert "payments" in detail.inner_text()
    page.wait_for_selector(".wb-mini-trend .js-plotly-plot", timeout=30_000)
    page.screenshot(path=str(SHOTS / "incident-detail.png"), full_page=True)


def test_a_notifications_logs_link_opens_its_window(
    server: tuple[str, Settings, Seeded], page: Any
) -> None:
    from urllib.parse import urlsplit

    from workbench.alerting.evidence import logs_url

    base, _, world = server  # the auth burst: 30 events from 20 min to 15 min 10 s before world.now
    url = logs_url(base, service="auth-service", levels=("error", "fatal"),
                   start=world.now - timedelta(minutes=21), end=world.now - timedelta(minutes=14))
    _timings["logs_link_ready_s"] = round(_open(page, base, "logs", "?" + urlsplit(url).query), 2)
    page.screenshot(path=str(SHOTS / "logs-link-window.png"), full_page=True)
    pager = page.inner_text(".wb-logs-pager")
    assert "of 30 " in pager, pager
    chosen = page.eval_on_selector(".wb-logs-range select", "s => s.options[s.selectedIndex].text")
    chosen = chosen.replace("\xa0", " ")
    assert chosen.startswith("from the link: ") and chosen.endswith(" UTC")
    assert page.locator(".wb-logs-table tr.wb-log-row").count() == 30
    assert _error_outputs(page) == []


def test_bad_threshold_shows_message_and_creates_nothing(
    server: tuple[str, Settings, Seeded], page: Any
) -> None:
    base, settings, _ = server
    _open(page, base, "rules")
    page.fill(".wb-rule-service input", "auth-service")
    page.fill(".wb-rule-threshold input", "0")
    page.click(".wb-rule-create")
    err = page.wait_for_selector(".wb-error-threshold .wb-field-error", timeout=15_000)
    assert "greater than or equal to 1" in err.inner_text()
    assert "Not created" in page.inner_text(".wb-form-result")
    with session_scope(get_engine(settings.database_url)) as s:
        assert len(s.exec(AlertRule.__table__.select()).all()) == 2  # type: ignore[attr-defined]
    page.screenshot(path=str(SHOTS / "rules-validation.png"), full_page=True)


def test_toggling_a_channel_persists(server: tuple[str, Settings, Seeded], page: Any) -> None:
    base, settings, world = server
    channel_id = world.channels[1]
    _open(page, base, "notifications")
    toggle = f".wb-channel-{channel_id} .wb-channel-toggle"
    assert "Disabled" in page.inner_text(toggle)
    page.click(toggle)
    page.wait_for_selector(f"{toggle}:has-text('Enabled')", timeout=15_000)
    enabled = False
    deadline = time.monotonic() + 10
    while not enabled and time.monotonic() < deadline:
        with session_scope(get_engine(settings.database_url)) as s:
            ch = s.get(NotificationChannel, channel_id)
            enabled = ch is not None and ch.enabled
        time.sleep(0.2)
    assert enabled
    _open(page, base, "notifications")  # a new kernel reads it back
    assert "Enabled" in page.inner_text(toggle)


def test_channel_form_previews_a_slack_template_beside_it(
    server: tuple[str, Settings, Seeded], page: Any
) -> None:
    base, settings, _ = server
    _open(page, base, "notifications")
    page.select_option(".wb-channel-type select", label="Slack")
    page.wait_for_selector(".wb-channel-target:has-text('Slack URL')", timeout=15_000)
    page.fill(".wb-channel-target input", "https://hooks.slack.example/T0/B0")
    page.fill(".wb-channel-template textarea", "{{ service }} <b>{{ errorCount }}</b> errors")
    page.click(".wb-channel-preview-button")
    text = page.wait_for_selector(".wb-channel-preview .wb-preview-text", timeout=15_000)
    shown = text.inner_text()
    assert "<b>" in shown and shown.endswith("</b> errors")  # the template's output, as text
    assert "nothing is sent" in page.inner_text(".wb-channel-preview")
    page.screenshot(path=str(SHOTS / "notifications-preview.png"), full_page=True)


def test_page_refreshes_itself_without_reload(
    server: tuple[str, Settings, Seeded], page: Any
) -> None:
    base, settings, _ = server
    _open(page, base, "incidents")
    now = datetime.now(UTC)
    new_id = uuid.uuid4()
    with session_scope(get_engine(settings.database_url)) as s:
        s.add(AlertIncident(id=new_id, service="search", fingerprint=f"search:{new_id}",
                            status="open", error_count=7, threshold=5, window_minutes=5,
                            first_triggered_at=now, triggered_at=now,
                            last_seen_error_at=now - timedelta(seconds=5)))
    page.wait_for_selector(f".wb-incident-{new_id}", timeout=(REFRESH_S * 3) * 1000)


# ---------------------------------------------------------------- XSS: content is text, never markup

XSS_MESSAGE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
XSS_META = {"note": '<img src=x onerror="window.__xss=3">', "html": "<b>bold?</b>"}
XSS_SERVICE = 'xss<img src=x onerror="window.__xss=4">'
XSS_RULE = '<img src=x onerror="window.__xss=5">rule'
XSS_CHANNEL = "<script>window.__xss=6</script>hook"


def _assert_not_executed(page: Any) -> None:
    page.wait_for_timeout(300)  # let any injected <img> fail to load and fire onerror
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator(".wb-page img[src='x'], .wb-page script:has-text('__xss')").count() == 0


def test_html_in_logs_rules_incidents_and_channels_is_shown_as_text(
    server: tuple[str, Settings, Seeded], page: Any
) -> None:
    """Proves: a log message, meta value and service holding HTML/JS, and a rule name,
    incident service and channel name holding HTML, appear literally on the Logs,
    Incidents, Rules, Notifications and Overview pages and never run
    (``window.__xss`` stays undefined, no injected ``<img>``/``<script>`` element)."""
    from tests.factories import make_events, write_events

    base, settings, _ = server
    now = datetime.now(UTC)
    write_events(
        settings.lake_url,
        make_events([
            {"timestamp": now - timedelta(seconds=2), "service": XSS_SERVICE, "level": "error",
             "message": XSS_MESSAGE, "meta": XSS_META},
        ]),
        name="xss",
    )
    incident_id = uuid.uuid4()
    with session_scope(get_engine(settings.database_url)) as s:
        rule = AlertRule(name=XSS_RULE, service=XSS_SERVICE, threshold=1, window_minutes=5,
                         enabled=False, created_at=now, updated_at=now)
        s.add(rule)
        s.flush()
        s.add(AlertIncident(id=incident_id, rule_id=rule.id, service=XSS_SERVICE,
                            fingerprint=f"{XSS_SERVICE}:{rule.id}", status="open", error_count=1,
                            threshold=1, window_minutes=5, first_triggered_at=now,
                            triggered_at=now, last_seen_error_at=now - timedelta(seconds=2)))
        s.add(NotificationChannel(name=XSS_CHANNEL, target="https://example.invalid/x",
                                  enabled=False, created_at=now))
    _beat(settings)

    # Logs: the newest row is ours; expanding it shows the full message and meta as text.
    _open(page, base, "logs")
    row = page.locator(".wb-logs-table tr.wb-log-row").first
    row.locator("summary").click()
    assert row.locator("pre.wb-log-message").inner_text() == XSS_MESSAGE
    meta = row.locator("pre.wb-log-meta").inner_text()
    assert json.dumps(XSS_META["note"]) in meta and json.dumps(XSS_META["html"]) in meta  # as JSON text
    assert XSS_SERVICE in row.inner_text()
    _assert_not_executed(page)
    page.screenshot(path=str(SHOTS / "xss-logs.png"), full_page=True)

    # Incidents: the row and the detail show the service as text.
    _open(page, base, "incidents")
    assert XSS_SERVICE in page.inner_text(f".wb-incident-{incident_id}")
    _assert_not_executed(page)
    _open(page, base, "incidents", f"?incident={incident_id}")
    detail = page.wait_for_selector(".wb-incident-detail .wb-kv", timeout=30_000)
    assert XSS_SERVICE in detail.inner_text()
    _assert_not_executed(page)

    # Rules, notifications, overview: names and services as text.
    _open(page, base, "rules")
    assert XSS_RULE in page.inner_text(".wb-page-rules")
    _assert_not_executed(page)
    _open(page, base, "notifications")
    assert XSS_CHANNEL in page.inner_text(".wb-page-notifications")
    _assert_not_executed(page)
    _open(page, base, "overview")
    assert XSS_SERVICE in page.inner_text(".wb-page-overview")
    _assert_not_executed(page)
