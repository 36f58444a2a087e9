"""The navigation bar and the alerting heartbeat indicator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tests.dashboard.seed import Seeded
from workbench.catalog.models import EvaluationRun
from workbench.config import Settings
from workbench.dashboard.context import PageContext
from workbench.dashboard.nav import PAGES, Heartbeat, describe_heartbeat, nav_html

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STALE = timedelta(minutes=3)


def _run(ago_s: int, status: str = "ok", finished: bool = True) -> EvaluationRun:
    t = NOW - timedelta(seconds=ago_s)
    return EvaluationRun(now=t, started_at=t - timedelta(seconds=1),
                         finished_at=t if finished else None, status=status)


def test_fresh_run_is_green_with_its_age() -> None:
    hb = describe_heartbeat(_run(40), NOW, stale_after=STALE)
    assert (hb.state, hb.text) == ("ok", "alerting ran 40 s ago")


def test_old_run_is_red() -> None:
    hb = describe_heartbeat(_run(300), NOW, stale_after=STALE)
    assert (hb.state, hb.text) == ("stale", "alerting has not run for 5 min")


def test_never_run_and_failed_run_are_red() -> None:
    assert describe_heartbeat(None, NOW, stale_after=STALE).text == "alerting has never run"
    failed = _run(30, status="error")
    failed.error = "lake unreadable\nmore"
    hb = describe_heartbeat(failed, NOW, stale_after=STALE)
    assert hb.state == "stale" and hb.text == "alerting failed 30 s ago"
    assert "lake unreadable" in hb.detail


def test_running_run_counts_from_its_start() -> None:
    hb = describe_heartbeat(_run(20, status="running", finished=False), NOW, stale_after=STALE)
    assert hb.state == "ok" and hb.text.startswith("alerting running since")


def test_heartbeat_widget_reads_the_catalog(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    hb = Heartbeat(PageContext(settings, clock))
    hb.refresh()
    assert "alerting ran 40 s ago" in hb.widget.value and "wb-hb-ok" in hb.widget.value
    later = Heartbeat(PageContext(settings, lambda: NOW + timedelta(minutes=5)))
    later.refresh()
    assert "wb-hb-stale" in later.widget.value and "has not run for 5 min" in later.widget.value


def test_nav_links_every_page_and_marks_the_current_one() -> None:
    html = nav_html("rules")
    for _key, title, file in PAGES:
        assert f'href="{file}"' in html and title in html
    assert 'class="wb-nav-rules wb-active"' in html
