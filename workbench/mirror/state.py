"""The mirror's durable state: which lake files are mirrored (the cursor), failures, heartbeat.

One SQLite file, ``$WORKBENCH_DATA_DIR/mirror/state.db``, in WAL mode so that
``workbench mirror status`` and ``/health`` read it while the follower writes.
Every change is one transaction, so a crash leaves the cursor either before or
after a batch, never half-way: a batch that was sent but not recorded is sent
again after a restart, which is harmless because documents are keyed by event id.

Tables:

* ``files``: lake files (path relative to the lake root) whose events are all in
  Elasticsearch or recorded as failures; ``sent`` is 0 for a compacted file whose
  sources were already mirrored (its events were never re-sent); ``covers`` lists
  (JSON) the file names a compacted file replaces, so that a later re-compaction
  is recognised as mirrored even after those sources are gone.
* ``failures``: events Elasticsearch rejected permanently (mapping conflicts…),
  with the reason; cleared for an event when a later send (backfill) succeeds.
* ``meta``: heartbeat and last error, for status and health.

The schema is under Alembic migrations (``workbench/mirror/migrations``), run
when the state is opened (:func:`migrate_state`); a file made before them is
adopted as it is.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from workbench.config import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# A state file made before migrations existed holds these tables at this revision.
_BASELINE = ("0001", "files")


@functools.cache
def head_revision() -> str | None:
    """Return the latest revision of the mirror state migrations."""
    from alembic.script import ScriptDirectory

    from workbench.catalog.db import alembic_config

    return ScriptDirectory.from_config(
        alembic_config(migrations_dir=MIGRATIONS_DIR)
    ).get_current_head()


def _at_head(conn: sqlite3.Connection) -> bool:
    try:
        versions = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
    except sqlite3.OperationalError:  # no alembic_version table: new, or made before migrations
        return False
    return versions == [head_revision()]


def migrate_state(path: Path) -> None:
    """Bring the state database at ``path`` to the latest migration (creating it if new).

    The schema lives in ``workbench/mirror/migrations`` (Alembic, like the
    catalog's); a file made before them (no ``alembic_version``) is stamped at the
    first revision, keeping its rows. Concurrent openers are serialised by a lock
    file beside the database (``workbench.catalog.db.migrate``).
    """
    import sqlalchemy as sa

    from workbench.catalog.db import migrate

    engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.NullPool)
    try:
        migrate(engine, MIGRATIONS_DIR, baseline=_BASELINE)
    finally:
        engine.dispose()


@dataclass(frozen=True, slots=True)
class Failure:
    """One event Elasticsearch refused for good, with its reason."""

    event_id: str
    index_name: str
    file: str
    status: int
    error_type: str
    reason: str
    first_at: float = 0.0
    last_at: float = 0.0
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A lake file recorded as mirrored: relative path, UTC day, rows, whether its rows were sent."""

    path: str
    day: str
    rows: int
    sent: bool
    covers: frozenset[str] | None = None


def state_path(settings: Settings) -> Path:
    """Return the path of the mirror state database under the data directory."""
    return settings.data_dir / "mirror" / "state.db"


class MirrorState:
    """The cursor, failure table and heartbeat of the mirror, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a batch recorded as mirrored must stay recorded after power loss,
        # otherwise status would under-report; NORMAL could lose the last commit.
        self._conn.execute("PRAGMA synchronous=FULL")
        # Status and /health open the state often: at head, only the version is read.
        if not _at_head(self._conn):
            migrate_state(path)

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
                self._conn.commit()
            except BaseException:
                self._conn.rollback()
                raise

    def mirrored(self) -> dict[str, int]:
        """Return ``{relative path: rows}`` of every file recorded as mirrored."""
        with self._lock:
            return dict(self._conn.execute("SELECT path, rows FROM files").fetchall())

    def covers(self) -> dict[str, frozenset[str]]:
        """Return ``{relative path: replaced file names}`` of the mirrored compacted files."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT path, covers FROM files WHERE covers IS NOT NULL"
            ).fetchall()
        return {p: frozenset(json.loads(c)) for p, c in rows}

    def commit_batch(
        self,
        files: Iterable[FileRecord],
        failures: Iterable[Failure],
        succeeded_ids: Iterable[str] = (),
        now: float | None = None,
    ) -> None:
        """Record files as mirrored, and failures, in one transaction."""
        at = time.time() if now is None else now
        with self._tx() as c:
            c.executemany(
                """INSERT OR REPLACE INTO files(path, day, rows, sent, mirrored_at, covers)
                   VALUES (?,?,?,?,?,?)""",
                [
                    (
                        f.path,
                        f.day,
                        f.rows,
                        int(f.sent),
                        at,
                        None if f.covers is None else json.dumps(sorted(f.covers)),
                    )
                    for f in files
                ],
            )
            self._record_failures(c, failures, at)
            self._clear_failures(c, succeeded_ids)

    def record_failures(
        self,
        failures: Iterable[Failure],
        succeeded_ids: Iterable[str] = (),
        now: float | None = None,
    ) -> None:
        """Record permanent failures and clear those of events that have now succeeded."""
        at = time.time() if now is None else now
        with self._tx() as c:
            self._record_failures(c, failures, at)
            self._clear_failures(c, succeeded_ids)

    @staticmethod
    def _record_failures(c: sqlite3.Connection, failures: Iterable[Failure], at: float) -> None:
        c.executemany(
            """INSERT INTO failures(event_id, index_name, file, status, error_type, reason,
                                    first_at, last_at, attempts)
               VALUES (?,?,?,?,?,?,?,?,1)
               ON CONFLICT(event_id) DO UPDATE SET
                 index_name=excluded.index_name, file=excluded.file, status=excluded.status,
                 error_type=excluded.error_type, reason=excluded.reason,
                 last_at=excluded.last_at, attempts=failures.attempts+1""",
            [
                (f.event_id, f.index_name, f.file, f.status, f.error_type, f.reason, at, at)
                for f in failures
            ],
        )

    @staticmethod
    def _clear_failures(c: sqlite3.Connection, ids: Iterable[str]) -> None:
        ids = list(ids)
        if not ids:
            return
        # Cheap guard: the common case is an empty failure table.
        if c.execute("SELECT 1 FROM failures LIMIT 1").fetchone() is None:
            return
        c.executemany("DELETE FROM failures WHERE event_id = ?", [(i,) for i in ids])

    def forget_files(self, paths: Iterable[str]) -> None:
        """Drop cursor rows of files that no longer exist (compacted away, retention)."""
        with self._tx() as c:
            c.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])

    def failures(self, limit: int = 100) -> list[Failure]:
        """Return the most recent permanent failures, newest first."""
        with self._lock:
            rows = self._conn.execute(
                """SELECT event_id, index_name, file, status, error_type, reason,
                          first_at, last_at, attempts
                   FROM failures ORDER BY last_at DESC, event_id LIMIT ?""",
                (limit,),
            ).fetchall()
        return [Failure(*r) for r in rows]

    def failure_count(self) -> int:
        """Return how many events are recorded as permanently failed."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM failures").fetchone()[0])

    def set_meta(self, **values: str | float | int | None) -> None:
        """Store heartbeat/status values (``None`` stores NULL)."""
        with self._tx() as c:
            c.executemany(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                [(k, None if v is None else str(v)) for k, v in values.items()],
            )

    def meta(self) -> dict[str, str | None]:
        """Return every stored heartbeat/status value."""
        with self._lock:
            return dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
