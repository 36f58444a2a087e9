"""The Logs page: filters, paging, level colours, escaped and expandable messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from tests.dashboard.seed import Seeded
from workbench.alerting.evidence import logs_url
from workbench.config import Settings
from workbench.dashboard.logs import PAGE_SIZE, QUERY_DEFAULTS, build_logs, page_from_query
from workbench.dashboard.page import request_params
from workbench.notebooks import dashboard_dir


def test_newest_first_page_with_total(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_logs(settings, clock=clock)
    page.refresh()
    assert page.error.message == ""
    assert page.total == 158  # last 24 h: 120 api + 30 auth + 8 billing
    assert len(page.result.logs) == PAGE_SIZE
    ts = [e.timestamp for e in page.result.logs]
    assert ts == sorted(ts, reverse=True)
    assert "page 1 of 4" in page.pager_label.value and page.prev_button.disabled


def test_messages_are_text_not_markup_and_expand_with_meta(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_logs(settings, service="auth-service", clock=clock)
    page.refresh()
    html = page.table.value
    assert "<b>u" not in html and "&lt;b&gt;u29&lt;/b&gt; &amp; retried" in html
    assert "<details>" in html and "wb-log-meta" in html and "&quot;user&quot;" in html
    assert "wb-level-error" in html and "wb-level-fatal" in html


def test_filters_and_paging(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_logs(settings, clock=clock)
    page.refresh()
    page.next_button.click()
    assert page.page_no == 2 and "page 2 of 4" in page.pager_label.value
    for level, box in page.level_boxes.items():
        box.value = level in ("error", "fatal")
    assert page.page_no == 1 and page.total == 34
    page.text.value = "DECLINED"
    assert page.total == 4
    page.time_range.value = "all time"
    assert page.total == 6  # billing errors over the whole lake


def test_no_level_ticked_says_so(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_logs(settings, clock=clock)
    page.refresh()
    for box in page.level_boxes.values():
        box.value = False
    assert "Tick at least one level" in page.table.value


def test_empty_lake_shows_the_curl_line(empty: Settings, clock: Callable[[], datetime]) -> None:
    page = build_logs(empty, clock=clock)
    page.refresh()
    assert "curl -X POST" in page.table.value


# The link of a notification (``evidence.logsUrl``): service, levels, text and the incident's window.
# the auth burst: 11:40–11:44:50
LINK_FROM, LINK_TO = "2026-11-20T11:38:00Z", "2026-11-20T11:46:00Z"


def test_a_links_window_shows_only_that_windows_events_and_says_which(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_logs(settings, start=LINK_FROM, end=LINK_TO, clock=clock)
    page.refresh()
    assert page.error.message == "" and page.link_notice.value == ""
    assert page.time_range.value == "from the link: 2026-11-20 11:38–11:46 UTC"
    assert page.total == 30  # the 30 auth-service events; api at 11:35 and 11:47 are outside
    lo, hi = datetime(2026, 11, 20, 11, 38, tzinfo=UTC), datetime(2026, 11, 20, 11, 46, tzinfo=UTC)
    assert all(lo <= e.timestamp <= hi for e in page.result.logs)
    page.time_range.value = "last 24 h"  # another range leaves the link's window
    assert page.total == 158
    page.time_range.value = "from the link: 2026-11-20 11:38–11:46 UTC"  # and it can come back
    assert page.total == 30


def test_the_url_evidence_builds_opens_that_page(
    settings: Settings,
    world: Seeded,
    clock: Callable[[], datetime],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = logs_url(
        "http://127.0.0.1:8866/",
        service="auth-service",
        levels=("fatal",),
        start=datetime(2026, 11, 20, 11, 38, tzinfo=UTC),
        end=datetime(2026, 11, 20, 11, 46, tzinfo=UTC),
        text="authenticate",
    )
    assert urlsplit(url).path == "/voila/render/logs.ipynb"
    monkeypatch.setenv("QUERY_STRING", urlsplit(url).query)  # what Voilà hands the kernel
    page = page_from_query(settings, request_params(QUERY_DEFAULTS), clock=clock)
    page.refresh()
    assert page.link_notice.value == "" and page.error.message == ""
    assert page.service.value == "auth-service" and page.levels() == ["fatal"]
    assert page.text.value == "authenticate"
    assert page.time_range.value == "from the link: 2026-11-20 11:38–11:46 UTC"
    assert page.total == 6  # every fifth event of the burst is fatal


def test_the_notebook_builds_the_page_from_its_query_the_same_way() -> None:
    nb = json.loads((dashboard_dir() / "logs.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "request_params(" in code and "QUERY_DEFAULTS" in code and "page_from_query(" in code


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"from": "yesterday", "to": LINK_TO}, "from"),
        ({"from": LINK_FROM, "to": "11:46"}, "to"),
        ({"from": LINK_TO, "to": LINK_FROM}, "to"),  # to before from
        ({"from": "2020-01-01T00:00:00Z", "to": LINK_TO}, "from/to"),  # an absurd span
        ({"to": LINK_TO}, "from"),  # an end without a start
    ],
)
def test_a_bad_window_is_named_and_the_default_range_shown(
    settings: Settings,
    world: Seeded,
    clock: Callable[[], datetime],
    query: dict[str, str],
    named: str,
) -> None:
    page = page_from_query(settings, {**QUERY_DEFAULTS, **query}, clock=clock)
    page.refresh()
    notice = page.link_notice.value
    assert f"<b>{named}</b>" in notice and "last 24 h" in notice and "Traceback" not in notice
    assert page.error.message == ""
    assert page.time_range.value == "last 24 h" and page.total == 158
    assert not any(str(o).startswith("from the link") for o in page.time_range.options)
