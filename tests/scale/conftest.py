"""Fixtures of the scale-out tests: a small lake written by the project's own writer.

The expected figures come from the workbench itself (``workbench.error_counts`` and
``GET /api/logs``), so an outside engine that reads the same files must agree with them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ingest_api.app import create_app
from workbench import error_counts
from workbench.config import Settings
from workbench.demo import generate

#: The lake's "now": events are spread over the DAYS before it.
NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
EVENTS = 3_000
DAYS = 4
SERVICES = 6


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, int]:
    """Settings over a lake of EVENTS demo events (DAYS days, SERVICES services); the count."""
    data_dir: Path = tmp_path_factory.mktemp("scale") / "data"
    data_dir.mkdir()
    settings = Settings(WORKBENCH_DATA_DIR=data_dir)  # type: ignore[call-arg]
    written = generate(settings.lake_url, events=EVENTS, days=DAYS, services=SERVICES, now=NOW)
    return settings, written


@pytest.fixture(scope="module")
def workbench_error_counts(lake: tuple[Settings, int]) -> dict[str, int]:
    """Error+fatal events per service, as ``workbench.error_counts`` counts them."""
    settings, _ = lake
    frame = error_counts(None, None, every="1d", settings=settings)
    totals: dict[str, int] = {}
    for service, count in frame.select("service", "count").iter_rows():
        totals[service] = totals.get(service, 0) + count
    return totals


@pytest.fixture(scope="module")
def api_client(lake: tuple[Settings, int]) -> Iterator[TestClient]:
    """The HTTP API over the lake, in process."""
    settings, _ = lake
    with TestClient(create_app(settings)) as client:
        yield client


def api_error_count(client: TestClient, service: str) -> int:
    """Return ``GET /api/logs``'s total of error+fatal events of ``service`` over the lake."""
    response = client.get(
        "/api/logs",
        params={
            "service": service,
            "level": "error,fatal",
            "from": "2026-11-01T00:00:00Z",
            "to": "2026-11-27T00:00:00Z",
            "limit": 1,
        },
    )
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


def lake_in_compaction_grace(tmp_path: Path, events: int) -> tuple[str, int]:
    """Return ``(lake URL, events written)`` of a 2-day demo lake whose every day was just
    compacted with a 5-minute grace: compacted files and their sources are both on disk."""
    from datetime import timedelta

    from workbench.lake import compaction
    from workbench.lake.schema import parse_partition_dir

    lake_url = str(tmp_path / "lake")
    written = generate(lake_url, events=events, days=2, services=3, now=NOW)
    for path in sorted((tmp_path / "lake/logs").iterdir()):
        day = parse_partition_dir(path.name)
        assert day is not None
        compaction.compact_partition(lake_url, day, min_files=2, grace=timedelta(minutes=5))
    return lake_url, written
