"""The alerting CLI commands: help, backtest, and a real `workbench evaluate` papermill run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.alerting.conftest import add_errors, add_rule
from workbench.catalog.db import get_engine, init_db
from workbench.cli import main
from workbench.cli.alerting import parse_duration
from workbench.config import get_settings


@pytest.fixture
def env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(data_dir))
    for var in ("DATABASE_URL", "WORKBENCH_LAKE_URL"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()


@pytest.mark.parametrize("command", ["evaluate", "scheduler", "backtest"])
def test_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_parse_duration() -> None:
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("30m") == timedelta(minutes=30)


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
    assert bad.exit_code == 2 and "not a rule id" in bad.output
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
