"""The cluster lock (issue 13 item 3): a PostgreSQL session advisory lock, a file lock on SQLite.

Two holders in one process: the second ``try_acquire`` fails while the first holds;
closing the first releases it; a holder whose connection dies (the server ends its
backend, as when its process is killed) releases it too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from workbench.catalog.locks import (
    AdvisoryLock,
    FileClusterLock,
    cluster_lock,
    lock_key,
    node_name,
)


@pytest.mark.postgres
def test_second_holder_fails_while_the_first_holds_and_gets_it_after_close(
    postgres_url: str, tmp_path: Path
) -> None:
    first = cluster_lock("evaluate", database_url=postgres_url, data_dir=tmp_path)
    second = cluster_lock("evaluate", database_url=postgres_url, data_dir=tmp_path)
    assert isinstance(first, AdvisoryLock)
    assert first.try_acquire()
    assert not second.try_acquire()
    # another name is another lock
    other = cluster_lock("housekeeping", database_url=postgres_url, data_dir=tmp_path)
    assert other.try_acquire()
    other.release()
    first.release()
    assert second.try_acquire()
    assert not first.try_acquire()
    second.release()


@pytest.mark.postgres
def test_a_dead_connection_releases_the_lock(postgres_url: str, tmp_path: Path) -> None:
    first = cluster_lock("evaluate", database_url=postgres_url, data_dir=tmp_path)
    second = cluster_lock("evaluate", database_url=postgres_url, data_dir=tmp_path)
    assert first.try_acquire()
    pid = first.backend_pid
    assert pid is not None
    admin = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        held = conn.execute(
            sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = :p"),
            {"p": pid},
        ).scalar_one()
        assert held == 1
        conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    admin.dispose()
    assert second.try_acquire()
    second.release()
    first.release()  # its connection is gone: releasing is quiet


@pytest.mark.postgres
def test_context_manager_holds_for_the_block(postgres_url: str, tmp_path: Path) -> None:
    other = cluster_lock("evaluate", database_url=postgres_url, data_dir=tmp_path)
    with cluster_lock("evaluate", database_url=postgres_url, data_dir=tmp_path) as got:
        assert got
        assert not other.try_acquire()
    assert other.try_acquire()
    other.release()


def test_sqlite_uses_the_file_lock_in_the_data_dir(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    first = cluster_lock("evaluate", database_url=url, data_dir=tmp_path)
    second = cluster_lock("evaluate", database_url=url, data_dir=tmp_path)
    assert isinstance(first, FileClusterLock)
    assert first.path == tmp_path / "evaluate.lock"
    assert first.try_acquire()
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire()
    second.release()


def test_keys_differ_by_name_and_fit_a_bigint() -> None:
    a, b = lock_key("evaluate"), lock_key("housekeeping")
    assert a != b
    assert -(2**63) <= a < 2**63
    assert lock_key("evaluate") == a


def test_node_name_from_the_environment_or_host_and_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import socket

    monkeypatch.setenv("WORKBENCH_NODE_NAME", "sched-a")
    assert node_name() == "sched-a"
    monkeypatch.delenv("WORKBENCH_NODE_NAME")
    assert node_name() == f"{socket.gethostname()}:{os.getpid()}"


@pytest.mark.postgres
def test_claim_minute_skips_a_done_minute_and_closes_a_dead_run(postgres_url: str) -> None:
    from datetime import UTC, datetime

    from sqlmodel import Session, select

    from workbench.alerting.run import claim_minute
    from workbench.catalog import models as m
    from workbench.catalog.db import get_engine, init_db, session_scope

    engine = get_engine(postgres_url)
    init_db(engine)
    t0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    t1 = datetime(2026, 11, 20, 12, 1, tzinfo=UTC)
    with session_scope(engine) as s:
        s.add(m.EvaluationRun(now=t0, started_at=t0, status="ok", node="node-a"))
        s.add(m.EvaluationRun(now=t1, started_at=t1, status="running", node="node-a"))
        s.add(m.EvaluationRun(now=t1, started_at=t1, status="ok", dry_run=True, node="x"))
    assert claim_minute(engine, t0) == "node-a"
    assert claim_minute(engine, t1) is None  # a dry run does not count; the running one is dead
    with Session(engine) as s:
        dead = s.exec(
            select(m.EvaluationRun).where(
                m.EvaluationRun.now == t1,
                m.EvaluationRun.dry_run == False,  # noqa: E712
            )
        ).one()
    assert dead.status == "error" and "abandoned" in (dead.error or "")
    engine.dispose()


def test_a_run_records_its_node(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from workbench.catalog import models as m

    monkeypatch.setenv("WORKBENCH_NODE_NAME", "sched-b")
    at = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert m.EvaluationRun(now=at, started_at=at).node == "sched-b"


@pytest.mark.postgres
def test_housekeeping_is_skipped_while_another_node_holds_its_lock(
    postgres_url: str, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from scheduled.scheduler import HOUSEKEEPING_LOCK, locked_housekeeping_pass
    from workbench.config import Settings

    (tmp_path / "lake").mkdir()
    settings = Settings(  # type: ignore[call-arg]
        WORKBENCH_DATA_DIR=tmp_path / "data",
        DATABASE_URL=postgres_url,
        WORKBENCH_LAKE_URL=str(tmp_path / "lake"),
    )
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    other = cluster_lock(HOUSEKEEPING_LOCK, database_url=postgres_url, data_dir=tmp_path)
    assert other.try_acquire()
    assert locked_housekeeping_pass(settings, now) is None
    other.release()
    assert locked_housekeeping_pass(settings, now) is not None
    # the pass released its lock
    assert other.try_acquire()
    other.release()
