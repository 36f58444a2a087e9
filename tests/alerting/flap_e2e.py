"""Helpers of the end-to-end flap-control and repeat tests: a data dir with a catalog and a
lake, and ``workbench evaluate --now`` (the real command: a papermill run of the alert
notebook, which evaluates and then sends the due deliveries) at successive minutes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from workbench.catalog import models as m
from workbench.catalog.db import get_engine, init_db
from workbench.cli import main
from workbench.config import get_settings


@dataclass
class Env:
    """The catalog engine and the lake of a test's data dir."""

    engine: Engine
    lake_url: str


@pytest.fixture
def env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(data_dir))
    for var in ("DATABASE_URL", "WORKBENCH_LAKE_URL"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    settings = get_settings()
    engine = get_engine(settings.database_url)
    init_db(engine)
    yield Env(engine, settings.lake_url)
    engine.dispose()
    get_settings.cache_clear()


def evaluate_at(at: datetime) -> str:
    """Run ``workbench evaluate --now <at>``; return its output (it must succeed)."""
    result = CliRunner().invoke(main, ["evaluate", "--now", at.isoformat()])
    assert result.exit_code == 0, result.output
    assert ": ok;" in result.output, result.output
    return result.output


def reasons(engine: Engine) -> list[str]:
    """Return the decision reasons of every tick so far, oldest first (one rule)."""
    with Session(engine) as s:
        rows = s.exec(select(m.Decision).order_by(col(m.Decision.at))).all()
    return [d.reason for d in rows]


def timeline(engine: Engine) -> list[tuple[datetime, str, dict]]:  # type: ignore[type-arg]
    """Return every incident event as ``(at, kind, data)``, oldest first."""
    with Session(engine) as s:
        rows = s.exec(select(m.IncidentEvent).order_by(col(m.IncidentEvent.at))).all()
    return [(e.at, e.kind, e.data) for e in rows]
