"""Engines and sessions for the catalog database (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def get_engine(database_url: str) -> Engine:
    """Return the process-wide engine for ``database_url`` (SQLite: WAL mode, FKs, busy timeout)."""
    with _lock:
        engine = _engines.get(database_url)
        if engine is None:
            engine = _create(database_url)
            _engines[database_url] = engine
        return engine


def _create(database_url: str) -> Engine:
    if database_url.startswith("sqlite"):
        engine = sa.create_engine(
            database_url, connect_args={"check_same_thread": False, "timeout": 30}
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return sa.create_engine(database_url, pool_pre_ping=True)


def init_db(engine: Engine) -> None:
    """Bring the schema to the latest version (creates it on an empty database)."""
    from workbench.catalog import models  # noqa: F401  (registers the tables)

    SQLModel.metadata.create_all(engine)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
