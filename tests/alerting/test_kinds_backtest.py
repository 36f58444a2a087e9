"""Backtests of every rule kind (issue 14): when each would have fired and resolved, with values."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.alerting.conftest import add_rule
from tests.alerting.kinds_lake import EXPECTED, FIRING, NOW, write_kinds_lake
from workbench import clock
from workbench.alerting.backtest import backtest
from workbench.catalog.db import get_engine, init_db
from workbench.catalog.models import AlertRule
from workbench.cli import main
from workbench.config import get_settings
from workbench.plots import backtest_figure


def _rule(name: str, **extra: Any) -> AlertRule:
    return AlertRule(name=name, window_minutes=10, cooldown_minutes=0, **{**FIRING[name], **extra})


@pytest.fixture
def lake(lake_url: str) -> str:
    write_kinds_lake(lake_url)
    return lake_url


@pytest.mark.parametrize("name", list(FIRING))
def test_each_kind_would_have_fired_at_its_case_with_its_values(lake: str, name: str) -> None:
    result = backtest(_rule(name), NOW - timedelta(minutes=30), NOW, lake_url=lake)
    assert result.series is not None
    last = result.series.row(-1, named=True)
    count, value, baseline = EXPECTED[name]
    assert (last["value"], last["baseline"]) == (value, baseline), last
    assert last["action"] in ("create", "update"), last
    assert result.incidents and result.incidents[0].opened_at <= NOW
    assert result.notifications[0].type == "error_alert"


def test_the_replay_resolves_when_the_case_is_over(lake: str) -> None:
    # The ratio case lasts 5 minutes before NOW: a window of 10 min sees it until NOW + 5 min.
    result = backtest(
        _rule("ratio", auto_resolve_minutes=5),
        NOW - timedelta(minutes=30),
        NOW + timedelta(hours=1),
        lake_url=lake,
    )
    [episode] = result.incidents
    assert episode.resolved_at is not None and episode.resolved_at > NOW
    assert [n.type for n in result.notifications] == ["error_alert", "error_alert_resolved"]
    assert result.series is not None
    quiet = result.series.filter(result.series["at"] > NOW + timedelta(minutes=10))
    assert set(quiet["reason"].to_list()) <= {"too_few_events", "auto_resolved"}


def test_absence_backtest_knows_a_never_seen_service(lake: str) -> None:
    result = backtest(
        _rule("absence", service="ghost"), NOW - timedelta(minutes=30), NOW, lake_url=lake
    )
    assert result.incidents == []
    assert result.series is not None and set(result.series["reason"]) == {"never_seen"}


def test_the_figure_plots_the_value_and_the_baseline(lake: str) -> None:
    result = backtest(_rule("anomaly"), NOW - timedelta(minutes=30), NOW, lake_url=lake)
    fig = backtest_figure(result, title="anomaly")
    names = [trace.name for trace in fig.data]
    assert names == ["observed", "baseline"]


def test_workbench_backtest_prints_each_kinds_values(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(data_dir))
    for var in ("DATABASE_URL", "WORKBENCH_LAKE_URL"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    try:
        settings = get_settings()
        engine = get_engine(settings.database_url)
        init_db(engine)
        write_kinds_lake(settings.lake_url)
        add_rule(engine, name="error ratio", window_minutes=10, **FIRING["ratio"])
        since = f"{(clock.now() - NOW).days + 2}d"
        result = CliRunner().invoke(main, ["backtest", "--rule", "error ratio", "--since", since])
        assert result.exit_code == 0, result.output
        assert "1 incident episodes" in result.output, result.output
        assert "kind ratio" in result.output
        assert "error_alert" in result.output and "value=30 baseline=20" in result.output
        engine.dispose()
    finally:
        get_settings.cache_clear()
