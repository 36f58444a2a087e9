"""The Logs page: filters, paging, level colours, escaped and expandable messages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from tests.dashboard.seed import Seeded
from workbench.config import Settings
from workbench.dashboard.logs import PAGE_SIZE, build_logs


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


def test_filters_and_paging(settings: Settings, world: Seeded, clock: Callable[[], datetime]) -> None:
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
