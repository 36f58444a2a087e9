"""Fault: the catalog's PostgreSQL server stops (``pg_ctl stop -m immediate``) and restarts
around an evaluation; the next tick must complete correctly with no duplicate.

The server is a private PostgreSQL 15 started for this module (``initdb`` in a tmp
directory owned by ``postgres``, trust auth, a free port on 127.0.0.1, its unix
socket in that directory), never the machine's shared server. Each case runs the
real :func:`workbench.alerting.run.tick` (what the alert notebook calls) on the
process-wide engine, so pooled connections that died with the server are in play,
and notifications go to a real HTTP receiver on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.alerting.conftest import (
    Clock,
    Receiver,
    add_channel,
    add_errors,
    add_rule,
    deliveries,
    incidents,
)
from tests.live_server import free_port
from workbench.alerting import notify
from workbench.alerting.run import tick
from workbench.catalog.db import dispose_engine, get_engine, init_db

pytestmark = pytest.mark.slow

PG_BIN = Path(os.environ.get("WORKBENCH_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
DASH = "http://127.0.0.1:8866"


class PrivatePostgres:
    """A throw-away PostgreSQL cluster: ``start``, ``stop`` (immediate: a crash), ``start`` again."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="wb-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.admin_url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            pg = pwd.getpwnam("postgres")
            os.chown(self.root, pg.pw_uid, pg.pw_gid)
            self._as_postgres = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_postgres, *args], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart_after_crash(self) -> None:
        """Stop the server as a crash would (no checkpoint), then start it (WAL recovery)."""
        self.stop("immediate")
        self.start()

    def create_database(self) -> str:
        name = f"wb_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL 15 on a free loopback port (skipped when the binaries are missing)."""
    if not (PG_BIN / "initdb").is_file():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN} (set WORKBENCH_TEST_PG_BIN)")
    if os.geteuid() == 0 and (shutil.which("runuser") is None or not _has_user("postgres")):
        pytest.skip("running as root needs `runuser` and a `postgres` user to start PostgreSQL")
    pg = PrivatePostgres()
    try:
        pg.init()
        pg.start()
    except subprocess.CalledProcessError as exc:
        pg.destroy()
        pytest.skip(f"could not start a private PostgreSQL: {exc.stderr.decode()[-500:]}")
    yield pg
    pg.destroy()


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture
def pg_engine(private_postgres: PrivatePostgres) -> Iterator[Engine]:
    """The process-wide engine of a fresh, migrated database on the private server."""
    url = private_postgres.create_database()
    engine = get_engine(url)
    init_db(engine)
    yield engine
    dispose_engine(url)


def _tick(engine: Engine, lake_url: str, now: datetime) -> None:
    tick(
        now=now,
        database_url=engine.url.render_as_string(hide_password=False),
        lake_url=lake_url,
        dashboard_url=DASH,
    )


def _run_statuses(engine: Engine) -> list[str]:
    with engine.connect() as c:
        return list(c.execute(sa.text("SELECT status FROM evaluation_runs")).scalars())


@pytest.mark.parametrize("moment", ["mid_evaluation", "before_send", "between_ticks"])
def test_postgres_restart_next_tick_one_incident_one_notification(
    private_postgres: PrivatePostgres,
    pg_engine: Engine,
    lake_url: str,
    clock: Clock,
    receiver: Receiver,
    moment: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Injects: an immediate stop of the catalog's PostgreSQL, then a start (crash recovery),

    * ``mid_evaluation``: as the evaluation is about to insert the incident;
    * ``before_send``: after the evaluation committed the incident and its outbox row,
      before the notifier claims it (the tick fails in ``deliver_due``);
    * ``between_ticks``: after a complete tick, with the engine's pooled connections
      left dead (the next tick must not fail on a stale connection).

    Proves: the next tick completes on the same process-wide engine, and the end
    state is one incident, one delivery ``sent``, and exactly one POST at the receiver.
    """
    engine = pg_engine
    add_rule(engine)
    add_channel(engine, receiver.url)
    add_errors(lake_url, clock.now, 7)

    if moment == "mid_evaluation":
        fired = []

        def crash(conn: sa.Connection, cursor: object, sql: str, *args: object) -> None:
            if not fired and sql.startswith("INSERT INTO alert_incidents"):
                fired.append(sql)
                private_postgres.stop("immediate")

        event.listen(engine, "before_cursor_execute", crash)
        try:
            with pytest.raises(sa.exc.OperationalError):
                _tick(engine, lake_url, clock.now)
        finally:
            event.remove(engine, "before_cursor_execute", crash)
        assert fired, "the fault was not injected"
        private_postgres.start()
        assert incidents(engine) == [] and deliveries(engine) == []
    elif moment == "before_send":
        real_claim = notify._claim

        def crash_then_claim(*args: object, **kwargs: object) -> object:
            private_postgres.stop("immediate")
            return real_claim(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(notify, "_claim", crash_then_claim)
        with pytest.raises(sa.exc.OperationalError):
            _tick(engine, lake_url, clock.now)
        monkeypatch.setattr(notify, "_claim", real_claim)
        private_postgres.start()
        assert len(incidents(engine)) == 1 and len(deliveries(engine)) == 1
        assert receiver.requests == []
    else:
        _tick(engine, lake_url, clock.now)
        assert len(receiver.requests) == 1
        private_postgres.restart_after_crash()

    _tick(engine, lake_url, clock.advance(1))  # the next tick: must simply work
    _tick(engine, lake_url, clock.advance(1))  # and one more changes nothing

    assert len(incidents(engine)) == 1
    rows = deliveries(engine)
    assert [d.status for d in rows] == ["sent"]
    assert len(receiver.requests) == 1, "one notification at the receiver, no duplicate"
    statuses = _run_statuses(engine)
    assert statuses.count("ok") >= 2


def test_postgres_lost_after_the_post_resends_once_with_the_same_delivery_id(
    private_postgres: PrivatePostgres,
    pg_engine: Engine,
    lake_url: str,
    clock: Clock,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Injects: an immediate stop of PostgreSQL after the webhook was POSTed and answered
    200, before the notifier records the outcome; then a start.

    Proves (and pins the limit of the outbox): nothing is lost and no incident is
    doubled; the unrecorded delivery stays leased, is sent again once when its lease
    (2 min) expires, and both POSTs carry the same ``X-Workbench-Delivery`` id, so a
    receiver can drop the repeat. Delivery is at least once, not exactly once.
    """
    engine = pg_engine
    add_rule(engine)
    add_channel(engine, receiver.url)
    add_errors(lake_url, clock.now, 7)
    real_record = notify._record
    fired: list[bool] = []

    def crash_then_record(*args: object, **kwargs: object) -> str:
        if not fired:
            fired.append(True)
            private_postgres.stop("immediate")
        return real_record(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(notify, "_record", crash_then_record)
    with pytest.raises(sa.exc.OperationalError):
        _tick(engine, lake_url, clock.now)
    monkeypatch.setattr(notify, "_record", real_record)
    assert fired and len(receiver.requests) == 1
    private_postgres.start()

    _tick(engine, lake_url, clock.advance(1))  # lease not expired: nothing re-sent
    assert len(receiver.requests) == 1
    _tick(engine, lake_url, clock.advance(1))  # lease expired: sent again, then recorded
    _tick(engine, lake_url, clock.advance(1))

    assert len(incidents(engine)) == 1
    assert [d.status for d in deliveries(engine)] == ["sent"]
    ids = {r["headers"].get("X-Workbench-Delivery") for r in receiver.requests}
    assert len(receiver.requests) == 2 and len(ids) == 1 and None not in ids
