"""The Overview page: pickers, the zero-filled trend, incident counts, the empty state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from tests.dashboard.seed import Seeded
from workbench.config import Settings
from workbench.dashboard.charts import PLOTLY_MIME
from workbench.dashboard.format import FIRST_LOG_CURL, esc
from workbench.dashboard.overview import build_overview


def test_trend_has_every_bucket_with_zeros_and_the_burst(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_overview(settings, clock=clock)
    page.refresh()
    assert page.error.message == ""
    ys = list(page.figure.data[0].y)  # type: ignore[union-attr]
    assert len(ys) == 289  # 24 h of 5-minute buckets (the first one partial)
    assert 0 in ys and sum(ys) == 34  # 30 burst errors + 4 billing errors in 24 h
    # The figure is what the Output shows, as plotly's mime bundle (renders offline).
    (out,) = page.chart.outputs
    assert PLOTLY_MIME in out["data"]


def test_service_and_range_pickers_redraw(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_overview(settings, clock=clock)
    page.refresh()
    assert [v for _, v in page.service_picker.options] == ["", "api", "auth-service", "billing"]
    page.service_picker.value = "auth-service"
    assert sum(p.count for p in page.points) == 30
    page.range_picker.value = "1h"
    assert len(page.points) == 61 and sum(p.count for p in page.points) == 30
    assert "auth-service" in page.figure.layout.title.text  # type: ignore[union-attr]


def test_cards_count_open_and_acknowledged_incidents(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_overview(settings, clock=clock)
    page.refresh()
    html = page.summary.value
    assert "open incidents" in html and "acknowledged" in html
    assert 'wb-card-open"><div class="wb-card-value" style="color:#dc2626">1<' in html


def test_empty_lake_shows_how_to_send_a_first_log(
    empty: Settings, clock: Callable[[], datetime]
) -> None:
    page = build_overview(empty, clock=clock)
    page.refresh()
    assert page.error.message == ""
    assert page.empty.layout.display is None
    assert esc(FIRST_LOG_CURL) in page.empty.value
    assert all(p.count == 0 for p in page.points)


def test_unreachable_database_shows_a_message_not_a_traceback(
    settings: Settings, clock: Callable[[], datetime]
) -> None:
    broken = Settings(  # type: ignore[call-arg]
        WORKBENCH_DATA_DIR=settings.data_dir,
        DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/nothing",
    )
    page = build_overview(broken, clock=clock)
    page.refresh()  # must not raise
    assert "catalog database" in page.error.message
    assert "Traceback" not in page.error.widget.value
    assert "unknown" in page.heartbeat.widget.value


def test_page_has_navigation_and_heartbeat(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_overview(settings, clock=clock)
    page.refresh()
    assert "alerting ran 40 s ago" in page.heartbeat.widget.value
    assert "updated 2026-11-20 12:00:00 UTC" in page.status.value


def test_active_incidents_link_to_their_detail(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_overview(settings, clock=clock)
    page.refresh()
    html = page.active.value
    assert f'href="incidents.ipynb?incident={world.open_incident}"' in html
    assert f"incident={world.resolved_incident}" not in html
