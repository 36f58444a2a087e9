"""Fixtures for alerting tests: a real catalog (SQLite, or PostgreSQL when marked), a tmp lake,
a moving fake clock, factories for rules/channels/errors, and loopback webhook receivers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests.factories import write_events
from workbench.catalog import models as m
from workbench.catalog.db import get_engine, init_db, session_scope

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    """A fake clock the test moves by hand."""

    now: datetime = T0

    def advance(self, minutes: float = 1) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty catalog: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'catalog.db'}"


@pytest.fixture
def engine(catalog_url: str) -> Iterator[Engine]:
    eng = get_engine(catalog_url)
    init_db(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    eng = get_engine(f"sqlite:///{tmp_path / 'catalog-sqlite.db'}")
    init_db(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def lake_url(tmp_path: Path) -> str:
    d = tmp_path / "lake"
    d.mkdir()
    return str(d)


def add_rule(engine: Engine, **kw: Any) -> m.AlertRule:
    """Insert a rule (defaults: service auth, 5 errors in 10 min, cooldown 15) and return it."""
    values: dict[str, Any] = {
        "service": "auth",
        "threshold": 5,
        "window_minutes": 10,
        "cooldown_minutes": 15,
        "name": "auth errors",
        "created_at": T0 - timedelta(days=1),
    }
    values.update(kw)
    rule = m.AlertRule(**values)
    with session_scope(engine) as s:
        s.add(rule)
    return rule


def add_channel(
    engine: Engine, target: str, *, enabled: bool = True, secret: str | None = None
) -> m.NotificationChannel:
    """Insert a webhook channel and return it."""
    ch = m.NotificationChannel(target=target, enabled=enabled, secret=secret, name="hook")
    with session_scope(engine) as s:
        s.add(ch)
    return ch


def add_errors(
    lake_url: str,
    at: datetime,
    n: int,
    *,
    service: str = "auth",
    level: str = "error",
    message: str = "boom",
) -> None:
    """Write ``n`` events of ``service`` spread over the 30 seconds before ``at``."""
    rows = [
        {
            "timestamp": at - timedelta(seconds=30) + timedelta(seconds=30 * (i + 1) / n),
            "service": service,
            "level": level,
            "message": message,
        }
        for i in range(n)
    ]
    write_events(lake_url, rows)


def incidents(engine: Engine) -> list[m.AlertIncident]:
    with Session(engine) as s:
        return list(s.exec(select(m.AlertIncident)).all())


def deliveries(engine: Engine) -> list[m.Delivery]:
    with Session(engine) as s:
        return list(s.exec(select(m.Delivery)).all())


def events(engine: Engine) -> list[m.IncidentEvent]:
    with Session(engine) as s:
        return list(s.exec(select(m.IncidentEvent).order_by(m.IncidentEvent.at)).all())  # type: ignore[arg-type]


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 in a thread; ``status`` is what it answers."""

    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]


def _start(receiver: Receiver, port: int = 0) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.requests.append(
                {"path": self.path, "headers": dict(self.headers.items()), "body": body}
            )
            self.send_response(receiver.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    receiver.server = server
    return server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running loopback webhook receiver; stopped after the test."""
    r = Receiver()
    _start(r)
    yield r
    if r.server is not None:
        r.server.shutdown()
        r.server.server_close()


def restart(receiver: Receiver) -> None:
    """Start a stopped receiver again on its old port."""
    assert receiver.server is not None
    port = receiver.server.server_address[1]
    _start(receiver, port)


def stop(receiver: Receiver) -> None:
    """Stop the receiver (connections are then refused)."""
    assert receiver.server is not None
    receiver.server.shutdown()
    receiver.server.server_close()
