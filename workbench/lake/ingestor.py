"""The process-level ingestor: accepted events -> WAL (fsync) -> Parquet lake, exactly once.

Flow: :meth:`Ingestor.accept` assigns ids, frames the events as one WAL record
and returns once that record is fsynced (concurrent callers share one fsync:
group commit). A background flusher thread seals the active segment about
every ``flush_interval_s`` (or at ``flush_max_events``), turns it into Arrow,
writes it with :func:`workbench.lake.writer.write_batch` under the name
``{writer_id}-{segment:010d}``, then deletes the segment. A crash between the
Parquet rename and the deletion replays into the same file names, so replay
overwrites instead of duplicating.

On start, and every few seconds after, the flusher adopts unlocked WAL folders
of dead processes and replays them the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.fs as pafs

from workbench import clock as wall_clock
from workbench.config import Settings
from workbench.errors import Overloaded, StorageError
from workbench.ids import IdGenerator
from workbench.lake import fs as lakefs
from workbench.lake.integrity import quarantined_files
from workbench.lake.records import (
    Event,
    columns_to_ipc,
    events_to_ipc,
    records_to_table,
    rows_payload,
    to_us,
)
from workbench.lake.schema import LOGS_TABLE
from workbench.lake.wal import (
    Segment,
    WalFolder,
    WriteAheadLog,
    orphan_folders,
    read_records,
)
from workbench.lake.writer import write_batch

log = logging.getLogger(__name__)

_ORPHAN_SCAN_S = 5.0
_LAKE_STATS_S = 5.0
# A backlog of at least this many events that no request has added to for
# _IDLE_S is flushed at once instead of at the next interval: the end of a burst
# becomes queryable within about a tenth of a second. Smaller backlogs (a trickle
# of events) wait for the interval, so they do not turn into one file each.
_IDLE_FLUSH_EVENTS = 10_000
_IDLE_S = 0.05
# Requests with at least this many events go to the WAL as Arrow IPC, smaller ones as JSON.
_IPC_MIN_EVENTS = 16


def flush_segment(segment: Segment, *, lake_url: str) -> int:
    """Write a segment's complete records to the lake under its deterministic name; return events."""
    records = list(read_records(segment.path))
    if not records:
        return 0
    table = records_to_table(records)
    written = write_batch(table, lake_url=lake_url, name=segment.batch_name)
    _sync_local_files(lake_url, written)
    return table.num_rows


def _sync_local_files(lake_url: str, paths: list[str]) -> None:
    """fsync written lake files and their folders before the WAL segment is deleted.

    The rename makes a file visible, not durable: after a power cut (unlike a
    ``kill -9``) the file could be empty while the segment is already gone.
    Object stores make a PUT durable themselves, so only local paths are synced.
    """
    if "://" in lake_url and not lake_url.startswith("file://"):
        return
    folders: set[str] = set()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        folders.add(os.path.dirname(path))
    for folder in folders:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Ingestor:
    """Accepts validated events durably and moves them into the lake in the background."""

    def __init__(
        self, settings: Settings, *, clock: Callable[[], datetime] = wall_clock.now
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.ids = IdGenerator()
        self._wal: WriteAheadLog | None = None
        self._folder: WalFolder | None = None
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # One thread does every WAL write, so groups reach the disk in order.
        self._wal_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal")
        self._pending: list[tuple[bytes, int, asyncio.Future[None]]] = []
        self._pending_bytes = 0
        self._commit_task: asyncio.Task[None] | None = None
        self._last_append = 0.0  # time.monotonic() of the last WAL group written
        self.last_flush_at: datetime | None = None
        self.flushed_events = 0
        self.replayed_events = 0
        self._lake_stats: dict[str, int] = {"bytes": 0, "files": 0}
        self._lake_stats_at = 0.0
        self._quarantined = 0  # damaged lake files moved aside by readers (any process)
        self._next_orphan_scan = 0.0
        # The last flush round's failure, for /health; None once a round succeeds.
        self.flush_problem: str | None = None

    # -- life cycle ---------------------------------------------------------

    @property
    def writer_id(self) -> str:
        """Return this process's writer id (the name of its WAL folder)."""
        return self._require_folder().writer_id

    def start(self, *, background: bool = True) -> None:
        """Claim a WAL folder and (with ``background``) start the flusher thread.

        Orphan WAL folders are replayed by the flusher's first round, so a large
        backlog does not delay the server's start.
        """
        self._folder = WalFolder.create(self.settings.wal_dir)
        self._wal = WriteAheadLog(self._folder, rotate_events=self.settings.flush_max_events)
        if background:
            self._thread = threading.Thread(target=self._run, name="lake-flusher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Flush everything to the lake, then release and remove this process's WAL folder."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self._wal_executor.shutdown(wait=True)
        if self._wal is not None and self._folder is not None:
            try:
                self.flush()
            except Exception:
                # The segments stay on disk: the next start (or a live peer) replays them.
                log.exception("final lake flush failed; the WAL is kept for replay")
            self._wal.close()
            self._folder.release(remove=True)  # removed only when no segment is left
            self._wal = None

    # -- accepting ----------------------------------------------------------

    def _record(self, events: Sequence[Event], now: datetime) -> tuple[bytes, list[str]]:
        now_us = to_us(now)
        ids = self.ids.new_ids(len(events), now_us // 1000)
        if len(events) >= _IPC_MIN_EVENTS:
            return events_to_ipc(events, ids, now_us), ids
        return orjson.dumps(rows_payload(events, ids, now_us)), ids

    def _check_backlog(self, extra: int) -> None:
        _, size = self._require_wal().backlog()
        limit = self.settings.max_wal_backlog_bytes
        if size + self._pending_bytes + extra > limit:
            raise Overloaded(
                f"ingest backlog over {limit} bytes (max_wal_backlog_bytes); retry later",
                retry_after=max(1, round(self.settings.flush_interval_s)),
            )

    async def accept(self, events: Sequence[Event], now: datetime) -> list[str]:
        """Return the ids of ``events`` once they are fsynced in the WAL (group commit)."""
        if not events:
            return []
        record, ids = self._record(events, now)
        await self._commit(record, len(events))
        return ids

    async def accept_columns(self, columns: pa.RecordBatch, now: datetime) -> int:
        """Return how many events of ``columns`` were fsynced in the WAL (group commit).

        ``columns`` are accepted events as Arrow columns (``timestamp``, ``service``,
        ``level``, ``message``, ``meta``; the ingest fast lane makes them); ids are
        issued here, as for :meth:`accept`.
        """
        n = columns.num_rows
        if not n:
            return 0
        now_us = to_us(now)
        ids = self.ids.new_id_array(n, now_us // 1000)
        await self._commit(columns_to_ipc(columns, ids, now_us), n)
        return n

    async def _commit(self, record: bytes, events: int) -> None:
        """Return once ``record`` (holding ``events`` events) is fsynced in the WAL."""
        self._check_backlog(len(record))
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((record, events, done))
        self._pending_bytes += len(record)
        if self._commit_task is None:
            self._commit_task = loop.create_task(self._commit_pending())
        # If the client goes away, cancelling ``done`` only drops the answer: the
        # record is already in the group and is written all the same.
        await done

    async def _commit_pending(self) -> None:
        loop = asyncio.get_running_loop()
        wal = self._require_wal()
        try:
            while self._pending:
                group, self._pending = self._pending, []
                self._pending_bytes = 0
                try:
                    rotated = await loop.run_in_executor(
                        self._wal_executor,
                        wal.append_group,
                        [g[0] for g in group],
                        sum(g[1] for g in group),
                    )
                except Exception as exc:
                    error = exc if isinstance(exc, StorageError) else StorageError(str(exc))
                    for _, _, fut in group:
                        if not fut.done():
                            fut.set_exception(error)
                    continue
                self._last_append = time.monotonic()
                for _, _, fut in group:
                    if not fut.done():
                        fut.set_result(None)
                if rotated:
                    self._wake.set()
        finally:
            self._commit_task = None

    def accept_sync(self, events: Sequence[Event], now: datetime) -> list[str]:
        """Return the ids of ``events`` once fsynced in the WAL (blocking; for scripts and tests)."""
        if not events:
            return []
        record, ids = self._record(events, now)
        self._check_backlog(len(record))
        rotated = self._require_wal().append_group([record], len(events))
        self._last_append = time.monotonic()
        if rotated:
            self._wake.set()
        return ids

    # -- flushing -----------------------------------------------------------

    def flush(self) -> int:
        """Seal the active segment and write every sealed segment to the lake; return events."""
        wal = self._require_wal()
        total = 0
        with self._flush_lock:
            rotate_error: StorageError | None = None
            try:
                wal.rotate()
            except StorageError as exc:
                rotate_error = exc  # the segments sealed before are flushed all the same
            for segment in wal.sealed():
                total += flush_segment(segment, lake_url=self.settings.lake_url)
                wal.drop(segment)
            self.flushed_events += total
            if rotate_error is not None:
                raise rotate_error
            self.last_flush_at = self.clock()
        if total:
            self._lake_stats_at = 0.0  # refresh the lake size on the next round
        return total

    def adopt_orphans(self) -> int:
        """Replay the WAL folders of dead processes into the lake, then delete them; return events."""
        total = 0
        own = self._folder.writer_id if self._folder else None
        for path in orphan_folders(self.settings.wal_dir, own=own):
            folder = WalFolder.try_adopt(path)
            if folder is None:
                continue
            try:
                for segment in folder.segments():
                    total += flush_segment(segment, lake_url=self.settings.lake_url)
                    segment.path.unlink(missing_ok=True)
                log.info("replayed orphan WAL %s", path.name)
            finally:
                folder.release(remove=True)
        self.replayed_events += total
        return total

    def _run(self) -> None:
        interval = self.settings.flush_interval_s
        while True:
            stopping = self._stopping.is_set()
            failed = False
            try:
                if time.monotonic() >= self._next_orphan_scan:
                    self.adopt_orphans()
                    self._next_orphan_scan = time.monotonic() + _ORPHAN_SCAN_S
                if stopping:
                    return  # stop() does the final flush itself
                self.flush()
                if time.monotonic() - self._lake_stats_at >= _LAKE_STATS_S:
                    self._lake_stats = lake_size(self.settings.lake_url)
                    self._quarantined = len(quarantined_files(self.settings.lake_url))
                    self._lake_stats_at = time.monotonic()
            except Exception as exc:
                # Keep the segments: the next round (or a restart) retries them.
                if self.flush_problem is None:
                    log.exception("lake flush failed; will retry")
                else:  # the same failure every round: one traceback is enough
                    log.warning("lake flush failed again; will retry: %s", exc)
                self.flush_problem = f"{type(exc).__name__}: {exc}"
                failed = True
            else:
                if self.flush_problem is not None:
                    log.info("lake flush works again")
                self.flush_problem = None
            self._wait_for_work(interval, idle_flush=not failed)
            self._wake.clear()

    def _wait_for_work(self, interval: float, *, idle_flush: bool) -> None:
        """Return after ``interval``, when woken (rotation, stop), or (with ``idle_flush``)
        once a backlog of ``_IDLE_FLUSH_EVENTS`` has had no new events for ``_IDLE_S``."""
        deadline = time.monotonic() + interval
        while (remaining := deadline - time.monotonic()) > 0:
            if self._wake.wait(timeout=min(remaining, _IDLE_S)):
                return
            wal = self._wal
            if (
                idle_flush
                and wal is not None
                and wal.backlog()[0] >= _IDLE_FLUSH_EVENTS
                and time.monotonic() - self._last_append >= _IDLE_S
            ):
                return

    # -- health -------------------------------------------------------------

    def problems(self) -> list[str]:
        """Return what is failing now (``"wal: ..."``, ``"lake flush: ..."``); empty when healthy."""
        found: list[str] = []
        wal = self._wal
        if wal is not None and wal.problem is not None:
            found.append(f"wal: {wal.problem}")
        if self.flush_problem is not None:
            found.append(f"lake flush: {self.flush_problem}")
        return found

    def stats(self) -> dict[str, Any]:
        """Return the health figures: problems, WAL backlog, last flush time, lake size."""
        events, size = self._wal.backlog() if self._wal else (0, 0)
        return {
            "problems": self.problems(),
            "wal": {
                "writerId": self._folder.writer_id if self._folder else None,
                "events": events,
                "bytes": size + self._pending_bytes,
                "maxBytes": self.settings.max_wal_backlog_bytes,
                "replayedEvents": self.replayed_events,
                # Every writer on this data directory (other workers, orphans):
                "allWriters": wal_dir_size(self.settings.wal_dir),
            },
            "lastFlushAt": self.last_flush_at.isoformat().replace("+00:00", "Z")
            if self.last_flush_at
            else None,
            "lake": dict(self._lake_stats),
            # Damaged files readers moved to <lake>/_quarantine (see `workbench verify`).
            "quarantine": {"files": self._quarantined},
        }

    def _require_wal(self) -> WriteAheadLog:
        if self._wal is None:
            raise StorageError("ingestor is not running")
        return self._wal

    def _require_folder(self) -> WalFolder:
        if self._folder is None:
            raise StorageError("ingestor is not running")
        return self._folder


def wal_dir_size(wal_dir: Path) -> dict[str, int]:
    """Return ``{"writers", "bytes"}``: WAL folders under ``wal_dir`` and their segments' size."""
    writers = size = 0
    for folder in orphan_folders(wal_dir):
        writers += 1
        try:
            with os.scandir(folder) as entries:
                size += sum(e.stat().st_size for e in entries if e.name.endswith(".wal"))
        except FileNotFoundError:
            continue  # flushed and removed while we looked
    return {"writers": writers, "bytes": size}


def lake_size(lake_url: str) -> dict[str, int]:
    """Return ``{"bytes", "files"}`` of the committed Parquet files of the lake."""
    filesystem, root = lakefs.resolve(lake_url)
    selector = pafs.FileSelector(f"{root}/{LOGS_TABLE}", recursive=True, allow_not_found=True)
    size = files = 0
    for info in filesystem.get_file_info(selector):
        name = Path(info.path).name
        if info.type == pafs.FileType.File and name.endswith(".parquet") and name[0] not in "._":
            files += 1
            size += info.size or 0
    return {"bytes": size, "files": files}
