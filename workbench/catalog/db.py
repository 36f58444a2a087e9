"""Engines, sessions and schema migrations for the catalog (SQLite by default, PostgreSQL in production).

The schema is owned by Alembic: the migrations ship inside the package
(``workbench/catalog/migrations``) and :func:`init_db` runs ``alembic upgrade head``
programmatically, so every entry point (API, scheduler, notebooks, CLI) brings
the database to the version its code expects. See ``docs/catalog.md``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The first revision; a database built by the pre-Alembic ``create_all`` equals it.
BASELINE_REVISION = "0001"
# Arbitrary but fixed: every process migrating one PostgreSQL database takes this lock.
_PG_MIGRATION_LOCK_KEY = 0x5742_4341_5441_4C47  # "WBCATALG"

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


def dispose_engine(database_url: str) -> None:
    """Close and forget the process-wide engine for ``database_url`` (tests, database drops)."""
    with _lock:
        engine = _engines.pop(database_url, None)
    if engine is not None:
        engine.dispose()


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


def alembic_config(connection: Connection | None = None, database_url: str | None = None) -> Config:
    """Return an Alembic config for the packaged migrations, bound to a connection or a URL."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # "os": several version locations are joined with os.pathsep (paths may hold spaces).
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    if database_url is not None:
        # ConfigParser interpolation: a literal "%" in a password must be doubled.
        cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def init_db(engine: Engine) -> None:
    """Bring the schema to the latest migration (creates it on an empty database; keeps data).

    Safe to call from several processes at once: PostgreSQL serialises on an
    advisory lock held for the migration transaction, a SQLite file on a lock file
    beside it. A database created before migrations existed (``create_all``) is
    stamped at the baseline revision first, then upgraded.
    """
    with _migration_file_lock(engine), engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Transaction-scoped: released by the commit/rollback below, even on a crash.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK_KEY})
        cfg = alembic_config(connection=conn)
        if _is_unversioned_baseline(conn):
            command.stamp(cfg, BASELINE_REVISION)
        command.upgrade(cfg, "head")
        conn.commit()


def _is_unversioned_baseline(conn: Connection) -> bool:
    tables = set(sa.inspect(conn).get_table_names())
    return "alembic_version" not in tables and "alert_rules" in tables


def _migration_file_lock(engine: Engine) -> AbstractContextManager[object]:
    # SQLite runs DDL outside transactions, so two processes creating the schema at
    # once would collide; an OS file lock beside the database file serialises them.
    if engine.dialect.name != "sqlite":
        return nullcontext()
    path = engine.url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return nullcontext()
    from filelock import FileLock

    return FileLock(f"{path}.migrate.lock", timeout=120)


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
