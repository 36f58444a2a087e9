"""Engines, sessions and schema migrations for the catalog (SQLite by default, PostgreSQL in production).

The schema is owned by Alembic: the migrations ship inside the package
(``workbench/catalog/migrations``) and :func:`init_db` runs ``alembic upgrade head``
programmatically; every entry point (API, scheduler, notebooks, CLI) opens the
catalog with :func:`catalog_engine`, which migrates it once per process and URL,
so the database is at the version its code expects. See ``docs/catalog.md``.
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

from workbench.errors import ConfigError, StorageError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The first revision; a database built by the pre-Alembic ``create_all`` equals it.
BASELINE_REVISION = "0001"
# Arbitrary but fixed: every process migrating one PostgreSQL database takes this lock.
_PG_MIGRATION_LOCK_KEY = 0x5742_4341_5441_4C47  # "WBCATALG"

# The one engine cache of the process: an engine per URL, and the URLs migrated so far.
_engines: dict[str, Engine] = {}
_migrated: set[str] = set()
_lock = threading.Lock()
_migrate_lock = threading.Lock()


# What a person should write instead of a URL the catalog cannot use.
_URL_FORMS = (
    "the catalog takes sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/NAME "
    "(postgres:// and postgresql:// are read as postgresql+psycopg://)"
)


def catalog_url(database_url: str) -> sa.URL:
    """Return ``database_url`` as the URL the catalog connects to, or raise ConfigError.

    ``postgres://`` and ``postgresql://`` (Heroku, docker-compose files, ``psql``)
    mean PostgreSQL through psycopg 3, the driver the project ships; any other
    dialect or driver is refused with the forms that work.
    """
    for scheme in ("postgres://", "postgresql://"):
        if database_url.startswith(scheme):
            database_url = "postgresql+psycopg://" + database_url[len(scheme) :]
    try:
        url = sa.make_url(database_url)
    except sa.exc.ArgumentError:
        raise ConfigError(f"DATABASE_URL: not a database URL; {_URL_FORMS}") from None
    if url.get_backend_name() == "sqlite" or url.drivername == "postgresql+psycopg":
        return url
    shown = url.render_as_string(hide_password=True)
    raise ConfigError(f"DATABASE_URL: cannot use {shown} ({url.drivername}); {_URL_FORMS}")


def get_engine(database_url: str) -> Engine:
    """Return the process-wide engine for ``database_url`` (SQLite: WAL mode, FKs, busy timeout).

    Raises ConfigError for a URL the catalog cannot use (see :func:`catalog_url`).
    """
    with _lock:
        engine = _engines.get(database_url)
        if engine is None:
            engine = _create(catalog_url(database_url))
            _engines[database_url] = engine
        return engine


def catalog_engine(database_url: str) -> Engine:
    """Return the engine for ``database_url`` with its schema migrated, once per process and URL.

    Every entry point (API, scheduler, dashboard, CLI, demo) opens the catalog
    here; the first call per URL runs :func:`init_db`, later calls only look it up
    (thread-safe). Raises ConfigError or StorageError with one line naming the fix
    (a missing database, an unreachable server, an unusable URL) instead of a traceback.
    """
    engine = get_engine(database_url)
    if database_url in _migrated:
        return engine
    with _migrate_lock:
        if database_url not in _migrated:
            init_db(engine)
            _migrated.add(database_url)
    return engine


def dispose_engine(database_url: str) -> None:
    """Close and forget the process-wide engine for ``database_url`` (tests, database drops)."""
    with _migrate_lock, _lock:
        engine = _engines.pop(database_url, None)
        _migrated.discard(database_url)
    if engine is not None:
        engine.dispose()


def _create(database_url: sa.URL) -> Engine:
    if database_url.get_backend_name() == "sqlite":
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


def alembic_config(
    connection: Connection | None = None,
    database_url: str | None = None,
    *,
    migrations_dir: Path = MIGRATIONS_DIR,
) -> Config:
    """Return an Alembic config for packaged migrations, bound to a connection or a URL.

    ``migrations_dir`` defaults to the catalog's; the mirror state passes its own
    (``workbench/mirror/migrations``).
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    # "os": several version locations are joined with os.pathsep (paths may hold spaces).
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(migrations_dir / "versions"))
    if database_url is not None:
        # ConfigParser interpolation: a literal "%" in a password must be doubled.
        url = catalog_url(database_url).render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def init_db(engine: Engine) -> None:
    """Bring the catalog schema to the latest migration (creates it on an empty database; keeps data).

    Callers open the catalog with :func:`catalog_engine`, which runs this once per
    process and URL. Safe to call from several processes at once (see
    :func:`migrate`). A database created before migrations existed (``create_all``)
    is stamped at the baseline revision first, then upgraded.
    """
    try:
        migrate(engine, MIGRATIONS_DIR, baseline=(BASELINE_REVISION, "alert_rules"))
    except sa.exc.OperationalError as exc:
        raise catalog_unavailable(engine, exc) from exc


def migrate(engine: Engine, migrations_dir: Path, *, baseline: tuple[str, str]) -> None:
    """Run ``alembic upgrade head`` of ``migrations_dir`` on ``engine``'s database.

    ``baseline`` is ``(revision, table)``: a database that has ``table`` but no
    ``alembic_version`` (made before migrations existed) is stamped at
    ``revision`` first, keeping its rows. Several processes at once are
    serialised: PostgreSQL on an advisory lock held for the migration
    transaction, a SQLite file on a lock file beside it.
    """
    with _migration_file_lock(engine), engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Transaction-scoped: released by the commit/rollback below, even on a crash.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK_KEY})
        cfg = alembic_config(connection=conn, migrations_dir=migrations_dir)
        revision, table = baseline
        if _is_unversioned(conn, table):
            command.stamp(cfg, revision)
        command.upgrade(cfg, "head")
        conn.commit()


def catalog_unavailable(engine: Engine, exc: sa.exc.OperationalError) -> StorageError:
    """Return a one-line StorageError for a failed catalog connection, naming the fix."""
    url = engine.url
    reason = str(exc.orig or exc).strip()
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "postgresql":
        where = f"{url.host or 'localhost'}:{url.port or 5432}"
        if f'database "{url.database}" does not exist' in reason:
            user = f" -U {url.username}" if url.username else ""
            return StorageError(
                f'catalog database "{url.database}" does not exist on {where}: create it with '
                f"`createdb -h {url.host or 'localhost'} -p {url.port or 5432}{user} "
                f"{url.database}` (or `createdb {url.database}`), or set DATABASE_URL to one "
                f"that exists (DATABASE_URL={shown})"
            )
        if "connection failed" in reason or "Connection refused" in reason:
            first = reason.splitlines()[0]
            if f'role "{url.username}" does not exist' in reason:
                hint = f"create the role (`createuser {url.username}`) or use another user"
            elif "authentication failed" in reason:
                hint = "check the user and password in DATABASE_URL"
            else:
                hint = "is PostgreSQL running and reachable there?"
            return StorageError(
                f"cannot connect to the catalog database at {where} (DATABASE_URL={shown}): "
                f"{first}; {hint}"
            )
    first = reason.splitlines()[0] if reason else type(exc).__name__
    return StorageError(f"catalog database (DATABASE_URL={shown}) failed: {first}")


def _is_unversioned(conn: Connection, table: str) -> bool:
    tables = set(sa.inspect(conn).get_table_names())
    return "alembic_version" not in tables and table in tables


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
