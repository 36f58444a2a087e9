"""Fixtures of the query tests: a small lake in ``tmp_path`` spread over three days and two files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.factories import T0, make_events, write_events


@pytest.fixture
def lake_url(tmp_path: Path) -> str:
    """An empty lake directory."""
    return str(tmp_path / "lake")


@pytest.fixture
def small_lake(lake_url: str) -> str:
    """A lake of 3 days: api info every 10 min, db errors hourly, one fatal, meta on some events.

    T0 = 2026-11-20 12:00 UTC. api: 432 info events from T0 - 1 day, every 10 minutes
    (3 days). db: 72 error events from T0 - 1 day, hourly. One fatal at T0 with meta.
    """
    start = T0 - timedelta(days=1)
    write_events(
        lake_url,
        make_events(
            n=432,
            start=start,
            step=timedelta(minutes=10),
            service="api",
            message="GET /users/42 took 12ms",
            meta={"userId": "u1", "latencyMs": 12},
        ),
        name="api",
    )
    write_events(
        lake_url,
        make_events(
            n=72,
            start=start,
            step=timedelta(hours=1),
            service="db",
            level="error",
            message="Connection TIMEOUT after 30s",
        ),
        name="db",
    )
    write_events(
        lake_url,
        [
            {
                "timestamp": T0,
                "service": "db",
                "level": "fatal",
                "message": "disk full",
                "meta": {"host": {"name": "db-1"}, "requestId": "r-9"},
            }
        ],
        name="fatal",
    )
    return lake_url
