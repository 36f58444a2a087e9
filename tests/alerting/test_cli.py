"""The alerting CLI commands: help, backtest, and a real `workbench evaluate` papermill run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import scheduled.scheduler
from scheduled.scheduler import run_scheduler
from tests.alerting.conftest import add_errors, add_rule
from tests.factories import make_events, write_events
from workbench.catalog.db import get_engine, init_db
from workbench.cli import main
from workbench.config import Settings, get_settings
from workbench.lake import reader
from workbench.times import parse_duration


@pytest.fixture
def env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(data_dir))
    for var in ("DATABASE_URL", "WORKBENCH_LAKE_URL"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()


@pytest.mark.parametrize("command", ["evaluate", "scheduler", "backtest", "rules", "rules list"])
def test_help(command: str) -> None:
    result = CliRunner().invoke(main, [*command.split(), "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_parse_duration() -> None:
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("30m") == timedelta(minutes=30)


def test_bad_times_name_the_option(env: Path) -> None:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    init_db(engine)
    rule = add_rule(engine)
    now = CliRunner().invoke(main, ["evaluate", "--now", "soon"])
    assert now.exit_code == 2 and "error: --now: not an ISO 8601 timestamp: 'soon'" in now.output
    since = CliRunner().invoke(main, ["backtest", "--rule", str(rule.id), "--since", "5x"])
    assert since.exit_code == 2 and "error: --since: not a duration: '5x'" in since.output
    step = CliRunner().invoke(main, ["backtest", "--rule", str(rule.id), "--step", "0.5m"])
    assert step.exit_code == 2 and "error: --step: not a duration: '0.5m'" in step.output
    engine.dispose()


def test_backtest_command(env: Path) -> None:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    init_db(engine)
    rule = add_rule(engine)
    add_errors(settings.lake_url, datetime.now(UTC) - timedelta(hours=1), 9)
    result = CliRunner().invoke(main, ["backtest", "--rule", str(rule.id), "--since", "3h"])
    assert result.exit_code == 0, result.output
    assert "1 incident episodes" in result.output and "error_alert" in result.output
    bad = CliRunner().invoke(main, ["backtest", "--rule", "nope"])
    assert bad.exit_code == 2 and "no rule with id or name 'nope'" in bad.output
    assert "workbench rules list" in bad.output
    engine.dispose()


def test_backtest_takes_a_rule_name_and_counts_separate_bursts(env: Path) -> None:
    """Issue 17: ``--rule`` took only an id, and a week of bursts reported 1 incident."""
    settings = get_settings()
    engine = get_engine(settings.database_url)
    init_db(engine)
    add_rule(engine, name="auth errors", cooldown_minutes=0)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    for hours in (30, 6):  # two bursts far apart, each ending an incident
        add_errors(settings.lake_url, end - timedelta(hours=hours), 9)
    result = CliRunner().invoke(main, ["backtest", "--rule", "auth errors", "--since", "2d"])
    assert result.exit_code == 0, result.output
    assert "2 incident episodes" in result.output, result.output
    assert "error_alert_reopened" in result.output
    assert "assumed resolved by on-call 20 min after the last breach" in result.output
    add_rule(engine, name="auth errors", service="other")
    twice = CliRunner().invoke(main, ["backtest", "--rule", "auth errors"])
    assert twice.exit_code == 2 and "2 rules are named 'auth errors'; pass the id" in twice.output
    engine.dispose()


def test_rules_list(env: Path) -> None:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    init_db(engine)
    empty = CliRunner().invoke(main, ["rules", "list"])
    assert empty.exit_code == 0 and "no alert rules" in empty.output
    a = add_rule(engine, name="auth errors", threshold=5, window_minutes=10)
    b = add_rule(engine, name="billing burst", service="billing", threshold=20,
                 window_minutes=5, enabled=False)
    result = CliRunner().invoke(main, ["rules", "list"])
    assert result.exit_code == 0, result.output
    header, *lines = result.output.splitlines()
    assert header.split() == ["id", "name", "service", "threshold/window", "enabled"]
    assert len(lines) == 2
    assert lines[0].split() == [str(a.id), "auth", "errors", "auth", "5/10m", "yes"]
    assert lines[1].split() == [str(b.id), "billing", "burst", "billing", "20/5m", "no"]
    only = CliRunner().invoke(main, ["rules", "list", "--service", "billing"])
    assert [line.split()[0] for line in only.output.splitlines()[1:]] == [str(b.id)]
    engine.dispose()


@pytest.mark.slow
def test_evaluate_command(env: Path) -> None:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    init_db(engine)
    add_rule(engine, name="auth errors")
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    add_errors(settings.lake_url, now, 6)
    result = CliRunner().invoke(main, ["evaluate", "--now", "2026-11-20T12:00:00Z", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "(dry run): ok; created=1" in result.output
    assert "auth errors" in result.output
    assert "executed notebook: " in result.output
    path = Path(result.output.strip().splitlines()[-1].split(": ", 1)[1])
    assert path.exists() and path.parent.name == "2026-11-20"
    engine.dispose()


# --- The scheduler's housekeeping thread -------------------------------------------------


def _run_until(
    settings: Settings, done: Callable[[list[datetime]], bool], timeout: float = 15
) -> list[datetime]:
    """Run the scheduler (no-op ticks) in a thread until ``done(ticks)``; return the ticks."""
    stop = threading.Event()
    ticks: list[datetime] = []

    def runner(*, settings: Settings, now: datetime, dry_run: bool) -> Path:
        ticks.append(now)
        return Path("x")

    t = threading.Thread(
        target=run_scheduler, args=(settings,), kwargs={"stop_event": stop, "runner": runner}
    )
    t.start()
    deadline = time.monotonic() + timeout
    try:
        while not done(ticks) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        t.join(40)
    assert not t.is_alive()
    return ticks


def test_scheduler_housekeeping_compacts_and_applies_retention(settings: Settings) -> None:
    settings = settings.model_copy(
        update={
            "evaluate_interval_s": 1,
            "housekeeping_interval_s": 0.05,
            "retention_days": 3,
            "compact_min_files": 2,
            "compact_min_age_s": 0.0,
            "compact_grace_s": 0.0,
        }
    )
    url = settings.lake_url
    now = datetime.now(UTC)
    for i in range(8):
        write_events(url, make_events(n=5, start=now - timedelta(seconds=60 - i)))
    write_events(url, make_events(n=5, start=now - timedelta(days=10)))
    expired = (now - timedelta(days=10)).date()
    assert len(reader.visible_files(url)) == 9

    def housekept(ticks: list[datetime]) -> bool:
        days = [d for d, _ in reader.partitions(url)]
        return expired not in days and len(reader.visible_files(url)) == len(days)

    _run_until(settings, housekept)

    assert housekept([])
    assert reader.scan(url).select("id").collect().height == 40


def test_scheduler_ticks_go_on_while_housekeeping_fails_or_hangs(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings.model_copy(
        update={"evaluate_interval_s": 1, "housekeeping_interval_s": 0.01}
    )
    calls: list[int] = []
    release = threading.Event()

    def housekeep(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("lake trouble")  # logged; the thread goes on
        release.wait(20)  # a very long pass: ticks must not wait for it

    def two_ticks(ticks: list[datetime]) -> bool:
        if len(ticks) < 2:
            return False
        assert len(calls) == 3  # the pass still hangs: ticks went on without it
        release.set()
        return True

    monkeypatch.setattr(scheduled.scheduler, "housekeep", housekeep)
    try:
        ticks = _run_until(settings, two_ticks)
    finally:
        release.set()
    assert len(ticks) >= 2 and len(calls) == 3
