"""Cluster locks: one holder at a time for the evaluation tick and lake housekeeping.

The backend follows the catalog URL:

* **PostgreSQL** (several schedulers on one ``DATABASE_URL``): a session-level
  advisory lock, ``pg_try_advisory_lock(key)``, taken on a dedicated connection
  (no pool) that stays open while the lock is held. When the holder's process
  dies, its connection closes and the server releases the lock at once; a host
  that vanishes without closing its socket is detected by TCP keepalives (about
  one minute, below), so another node takes over well within two minutes. An
  advisory lock was chosen over a lease row with an expiry: it needs no clock
  agreement between nodes, no renewal thread and no expiry to tune, and it is
  released by the server itself, not by whoever notices the lease ran out.
* **SQLite** (the embedded default, one machine): a file lock
  (``$WORKBENCH_DATA_DIR/<name>.lock``), as before.

:func:`node_name` names this process in the evaluation-run record
(``WORKBENCH_NODE_NAME``, default ``hostname:pid``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import Protocol

import sqlalchemy as sa

log = logging.getLogger(__name__)

NODE_NAME_SETTING = "WORKBENCH_NODE_NAME"

#: libpq keepalives on the lock's connection: a silent peer is dropped in about
#: idle + interval * count = 60 s, so its lock is free long before two minutes.
_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def node_name() -> str:
    """Return this process's node name: ``WORKBENCH_NODE_NAME``, else ``hostname:pid``."""
    name = os.environ.get(NODE_NAME_SETTING, "").strip()
    return name or f"{socket.gethostname()}:{os.getpid()}"


def lock_key(name: str) -> int:
    """Return the advisory-lock key of ``name``: a stable signed 64-bit integer."""
    digest = hashlib.sha256(f"workbench:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class ClusterLock(Protocol):
    """A non-blocking lock: ``try_acquire`` returns False when another holder has it."""

    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...

    def __enter__(self) -> bool: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class _Base:
    def try_acquire(self) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> bool:
        return self.try_acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class AdvisoryLock(_Base):
    """A PostgreSQL session advisory lock on its own connection, held until :meth:`release`."""

    def __init__(self, database_url: str, name: str) -> None:
        self.name = name
        self.key = lock_key(name)
        from workbench.catalog.db import catalog_url

        self._url = catalog_url(database_url)
        self._engine: sa.Engine | None = None
        self._conn: sa.Connection | None = None
        self.backend_pid: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; return whether this holder now has it."""
        if self._conn is not None:
            return True
        engine = sa.create_engine(
            self._url,
            poolclass=sa.pool.NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args=dict(_KEEPALIVES),
        )
        conn = engine.connect()
        try:
            got = bool(
                conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
            )
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        except BaseException:
            conn.close()
            engine.dispose()
            raise
        if not got:
            conn.close()
            engine.dispose()
            return False
        self._engine, self._conn = engine, conn
        self.backend_pid = int(pid) if pid is not None else None
        return True

    def release(self) -> None:
        """Release the lock (closing the connection releases it even if unlock fails)."""
        conn, engine = self._conn, self._engine
        self._conn = self._engine = None
        self.backend_pid = None
        if conn is None:
            return
        try:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        except Exception:  # the connection is gone: so is the lock
            log.debug("advisory unlock of %s failed; the connection is closed", self.name)
        finally:
            try:
                conn.close()
            finally:
                if engine is not None:
                    engine.dispose()


class FileClusterLock(_Base):
    """A non-blocking OS file lock (one machine: the SQLite catalog's case)."""

    def __init__(self, path: Path) -> None:
        from filelock import FileLock

        self.path = path
        self._lock = FileLock(str(path))
        self._held = False

    def try_acquire(self) -> bool:
        """Take the lock if it is free; return whether this holder now has it."""
        from filelock import Timeout

        if self._held:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        self._held = True
        return True

    def release(self) -> None:
        """Release the lock if held."""
        if self._held:
            self._held = False
            self._lock.release()


def is_cluster_catalog(database_url: str) -> bool:
    """Return whether ``database_url`` is a shared (PostgreSQL) catalog."""
    from workbench.catalog.db import catalog_url

    return catalog_url(database_url).get_backend_name() == "postgresql"


def cluster_lock(name: str, *, database_url: str, data_dir: Path) -> AdvisoryLock | FileClusterLock:
    """Return the lock ``name`` for the catalog at ``database_url`` (not yet taken).

    PostgreSQL: an advisory lock every node on that database shares. Otherwise a
    file lock ``data_dir/<name>.lock`` on this machine.
    """
    if is_cluster_catalog(database_url):
        return AdvisoryLock(database_url, name)
    return FileClusterLock(data_dir / f"{name}.lock")
