"""Fixtures of the lake tests: valid events, an ingestor, and real server subprocesses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.live_server import LiveServer
from workbench.config import Settings
from workbench.events import Limits, validate_event
from workbench.lake.ingestor import Ingestor
from workbench.lake.records import Event

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def make_events(count: int, *, service: str = "svc", now: datetime = NOW) -> list[Event]:
    """Return ``count`` valid events (message ``m{i}``) accepted at ``now``."""
    return [
        validate_event(
            {"service": service, "level": "error", "message": f"m{i}", "meta": {"i": i}},
            now=now,
            limits=Limits(),
        )
        for i in range(count)
    ]


@pytest.fixture
def ingestor(settings: Settings) -> Iterator[Ingestor]:
    """A started ingestor without its background flusher (tests call flush())."""
    ing = Ingestor(settings, clock=lambda: NOW)
    ing.start(background=False)
    try:
        yield ing
    finally:
        ing.stop()


@pytest.fixture
def servers(data_dir: Path) -> Iterator[Callable[[], LiveServer]]:
    """A factory of servers on ``data_dir``; every server it started is stopped afterwards."""
    started: list[LiveServer] = []

    def start() -> LiveServer:
        server = LiveServer(data_dir)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
