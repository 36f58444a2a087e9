"""Follow the lake into Elasticsearch: find committed files not yet mirrored, bulk-index them.

The follower runs as its own loop (``workbench mirror run``), never in the
ingest request path: ingestion only writes Parquet; the follower lists the lake,
compares with its durable cursor (:mod:`workbench.mirror.state`) and sends what
is new. Elasticsearch being slow or down therefore never slows ingestion; the
follower backs off and catches up from the cursor later.

Guarantees:

* every event of a committed lake file ends up in Elasticsearch, or in the
  failure table with Elasticsearch's reason;
* documents are keyed by event id in the daily index of their UTC timestamp, so
  re-sending (restart between send and commit, compaction, backfill) overwrites
  and never duplicates;
* compaction does not re-send: a compacted file whose sources are all mirrored is
  recorded without sending; one whose sources are partly mirrored (the follower
  lagged behind the compactor) sends just the other sources while they are still
  on disk (the compactor's grace period), and the whole file only once they are gone;
* item errors that retrying can fix (429, 5xx) are retried with backoff; if they
  persist the batch is not recorded and is sent again after the follower's own
  backoff; other item errors (mapping conflicts…) are recorded as failures and do
  not hold back the rest.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyarrow.fs as pafs
from elasticsearch import ApiError, Elasticsearch, TransportError
from filelock import FileLock, Timeout

from workbench.config import Settings
from workbench.errors import ConfigError, WorkbenchError
from workbench.lake import fs as lakefs
from workbench.lake.reader import COMPACT_PREFIX, FileStat, partition_files, partitions
from workbench.mirror.bulk import (
    MirrorUnavailable,
    Retry,
    file_batches,
    folder_of,
    read_file,
    relative_path,
    send_tables,
)
from workbench.mirror.elastic import MirrorSettings, install_template
from workbench.mirror.state import FileRecord, MirrorState, state_path

log = logging.getLogger(__name__)

# A folder's mtime must be at least this old before "unchanged" is trusted.
_SETTLE_S = 2.0


class MirrorBusy(WorkbenchError):
    """Another follower already holds the mirror lock for this data directory."""


@dataclass(frozen=True, slots=True)
class PassResult:
    """What one follower pass did and what is still pending."""

    files_sent: int
    files_skipped: int
    indexed: int
    failed: int
    pending_files: int
    pending_events: int
    lag_seconds: float


class Follower:
    """Mirrors committed lake files into Elasticsearch, resuming from a durable cursor."""

    def __init__(
        self,
        settings: Settings,
        ms: MirrorSettings,
        es: Elasticsearch | None,
        *,
        state: MirrorState | None = None,
        retry: Retry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Prepare a follower; ``es`` may be None for read-only use (:meth:`pending`, status)."""
        self.settings = settings
        self.ms = ms
        self.es = es
        self.state = state or MirrorState(state_path(settings))
        self.retry = retry or Retry(max_backoff_s=ms.max_backoff_s)
        self.clock = clock
        self.filesystem, self.root = lakefs.resolve(settings.lake_url)
        self._mirrored = self.state.mirrored()
        self._covers = self.state.covers()
        self._by_folder: dict[str, set[str]] = {}
        for rel in self._mirrored:
            self._by_folder.setdefault(folder_of(rel), set()).add(rel)
        self._template_ok = False
        # Local partitions whose folder did not change since a pass that left
        # nothing pending there are skipped: listing stays cheap on a big lake.
        self._clean_folders: dict[str, int] = {}

    # -- one pass -------------------------------------------------------------

    def pending(self, *, record: bool = True) -> tuple[list[FileStat], int]:
        """Return the visible lake files not yet mirrored (oldest first) and record skips.

        A compacted file whose sources are all mirrored is recorded as mirrored
        without sending; the number of such files is returned second. With
        ``record=False`` (status readers) the cursor is left untouched.
        """
        pending: list[FileStat] = []
        skipped: list[FileRecord] = []
        gone: list[str] = []
        local = isinstance(self.filesystem, pafs.LocalFileSystem)
        folders_present: set[str] = set()
        for day, folder in partitions(self.settings.lake_url):
            folders_present.add(relative_path(folder, self.root))
            mtime = _folder_mtime(folder) if local else None
            if mtime is not None and self._clean_folders.get(folder) == mtime:
                continue
            visible, hidden = partition_files(self.filesystem, folder, day)
            present: set[str] = set()
            before = len(pending)
            for s in visible + hidden:
                present.add(relative_path(s.path, self.root))
            hidden_by_name = {s.path.rsplit("/", 1)[-1]: s for s in hidden}
            queued: set[str] = set()  # hidden sources already pending in this folder
            for s in visible:
                rel = relative_path(s.path, self.root)
                if rel in self._mirrored:
                    continue
                base = rel.rsplit("/", 1)[-1]
                if base.startswith(COMPACT_PREFIX) and s.replaces:
                    prefix = rel[: -len(base)]
                    missing = self._uncovered(prefix, s.replaces)
                    if not missing:
                        skipped.append(
                            FileRecord(rel, day.isoformat(), s.num_rows, False, s.replaces)
                        )
                        continue
                    if missing <= hidden_by_name.keys():
                        # Part mirrored already (the follower lagged behind compaction): send
                        # the sources not mirrored yet, still on disk during the compactor's
                        # grace period, rather than every event again; the compacted file is
                        # then covered and skipped by the next pass.
                        pending += [hidden_by_name[n] for n in sorted(missing - queued)]
                        queued |= missing
                        continue
                pending.append(s)
            gone += [
                p
                for p in self._by_folder.get(relative_path(folder, self.root), ())
                if p not in present
            ]
            # A folder's mtime has coarse (timer tick) granularity: trust it only
            # once it is old enough that a later change must show a new value.
            settled = mtime is not None and time.time() - mtime / 1e9 > _SETTLE_S
            if settled and mtime is not None and len(pending) == before:
                self._clean_folders[folder] = mtime
            else:
                self._clean_folders.pop(folder, None)
        for rel_folder, paths in self._by_folder.items():
            if rel_folder not in folders_present:  # partition deleted (retention)
                gone += paths
        if not record:
            return sorted(pending, key=lambda s: (s.day, s.path)), len(skipped)
        if skipped:
            self.state.commit_batch(skipped, [], now=self.clock())
            for rec in skipped:
                self._remember(rec)
        if gone:
            # Only after the compacted file that replaced them was handled above:
            # the sources' rows were what let us skip re-sending it.
            self.state.forget_files(gone)
            for p in gone:
                self._mirrored.pop(p, None)
                self._covers.pop(p, None)
                self._by_folder.get(folder_of(p), set()).discard(p)
        pending.sort(key=lambda s: (s.day, s.path))
        return pending, len(skipped)

    def _client(self) -> Elasticsearch:
        if self.es is None:
            raise ConfigError("this follower was built without an Elasticsearch client")
        return self.es

    def _remember(self, rec: FileRecord) -> None:
        self._mirrored[rec.path] = rec.rows
        self._by_folder.setdefault(folder_of(rec.path), set()).add(rec.path)
        if rec.covers:
            self._covers[rec.path] = rec.covers

    def _uncovered(self, folder_prefix: str, names: frozenset[str]) -> set[str]:
        """Return the named files whose events are not mirrored (directly or via a compaction).

        ``names`` is a compacted file's transitive replaced list: its events are
        those of the non-compacted names (the compacted ones are merges of them),
        so only those must be covered; an intermediate compacted file the
        follower never saw does not force a re-send.
        """
        covered: set[str] = set()
        for name in names:
            rel = folder_prefix + name
            if rel in self._mirrored:
                covered.add(name)
                covered |= self._covers.get(rel, frozenset())
        sources = {n for n in names if not n.startswith(COMPACT_PREFIX)} or set(names)
        return sources - covered

    def ensure_template(self) -> None:
        """Install the index template once per connection (again after every outage)."""
        if self._template_ok:
            return
        try:
            install_template(self._client(), self.ms)
        except ApiError as exc:
            raise MirrorUnavailable(
                f"index template install failed: {exc.meta.status} {exc.message}"
            ) from exc
        except TransportError as exc:
            raise MirrorUnavailable(f"Elasticsearch unreachable: {exc}") from exc
        self._template_ok = True

    def run_once(self) -> PassResult:
        """Mirror every pending lake file once; raise :class:`MirrorUnavailable` on ES trouble."""
        self.ensure_template()
        pending, skipped = self.pending()
        sent = indexed = failed = vanished = 0
        try:
            for batch in file_batches(pending, self.ms.batch_events):
                tables = []
                for s in list(batch):
                    try:
                        tables.append(
                            (relative_path(s.path, self.root), read_file(self.filesystem, s.path))
                        )
                    except FileNotFoundError:
                        # Compacted away or deleted by retention since the listing:
                        # the compacted file (if any) shows up in the next pass.
                        batch.remove(s)
                        vanished += 1
                result = send_tables(
                    self._client(), tables, index_prefix=self.ms.index_prefix, retry=self.retry
                )
                records = [
                    FileRecord(
                        relative_path(s.path, self.root),
                        s.day.isoformat(),
                        s.num_rows,
                        True,
                        s.replaces or None,
                    )
                    for s in batch
                ]
                self.state.commit_batch(
                    records, result.failures, result.succeeded_ids, now=self.clock()
                )
                for rec in records:
                    self._remember(rec)
                sent += len(batch)
                indexed += result.indexed
                failed += len(result.failures)
                self._heartbeat(pending[sent + vanished :])
                if result.failures:
                    log.warning(
                        "mirror: %d event(s) rejected permanently, first: %s %s",
                        len(result.failures),
                        result.failures[0].event_id,
                        result.failures[0].reason,
                    )
        except MirrorUnavailable:
            self._template_ok = False  # a replaced cluster needs the template again
            raise
        rest = pending[sent + vanished :]
        lag = self._lag_seconds(rest)
        return PassResult(
            files_sent=sent,
            files_skipped=skipped,
            indexed=indexed,
            failed=failed,
            pending_files=len(rest),
            pending_events=sum(s.num_rows for s in rest),
            lag_seconds=lag,
        )

    def _heartbeat(self, rest: Sequence[FileStat]) -> None:
        """Record progress during a long catch-up pass, so status and health stay current."""
        # Lag from the next file only: stat-ing every remaining file per batch
        # would cost more than the batch when far behind.
        now = self.clock()
        self.state.set_meta(
            last_pass_at=now,
            last_success_at=now,
            healthy=1,
            pending_events=sum(s.num_rows for s in rest),
            pending_files=len(rest),
            lag_seconds=self._lag_seconds(rest[:1]),
        )

    def _lag_seconds(self, rest: Sequence[FileStat]) -> float:
        if not rest:
            return 0.0
        infos = self.filesystem.get_file_info([s.path for s in rest])
        oldest = min((i.mtime_ns or 0) for i in infos)
        return max(0.0, self.clock() - oldest / 1e9) if oldest else 0.0

    # -- the loop -------------------------------------------------------------

    def run(self, stop: threading.Event | None = None, *, max_passes: int | None = None) -> None:
        """Run passes until ``stop`` is set: poll when idle, back off exponentially on errors."""
        stop = stop or threading.Event()
        backoff = self.retry.initial_backoff_s
        passes = 0
        while not stop.is_set() and (max_passes is None or passes < max_passes):
            passes += 1
            now = self.clock()
            try:
                result = self.run_once()
            except Exception as exc:
                # Elasticsearch away (MirrorUnavailable) or the lake failing: the
                # cursor is unchanged, so waiting and retrying loses nothing.
                if not isinstance(exc, MirrorUnavailable):
                    log.exception("mirror: pass failed")
                    exc = MirrorUnavailable(f"{type(exc).__name__}: {exc}")
                log.warning("mirror: %s; retrying in %.1fs", exc, backoff)
                self.state.set_meta(
                    last_pass_at=now,
                    last_error=str(exc),
                    last_error_at=now,
                    healthy=0,
                    **self._live_lag(),
                )
                stop.wait(backoff)
                backoff = min(self.retry.max_backoff_s, backoff * 2)
                continue
            backoff = self.retry.initial_backoff_s
            self.state.set_meta(
                last_pass_at=self.clock(),
                last_success_at=self.clock(),
                healthy=1,
                pending_events=result.pending_events,
                pending_files=result.pending_files,
                lag_seconds=result.lag_seconds,
            )
            if result.files_sent == 0:
                stop.wait(self.ms.poll_interval_s)

    def _live_lag(self) -> dict[str, float | int]:
        try:
            pending, _ = self.pending()
        except Exception:  # the lake itself failing: status shows the ES error anyway
            return {}
        return {
            "pending_events": sum(s.num_rows for s in pending),
            "pending_files": len(pending),
            "lag_seconds": self._lag_seconds(pending),
        }


def _folder_mtime(folder: str) -> int | None:
    try:
        return os.stat(folder).st_mtime_ns
    except FileNotFoundError:
        return None


def follower_lock(settings: Settings) -> FileLock:
    """Return the lock that keeps one follower per data directory (the cursor has one writer)."""
    path = state_path(settings).with_name("follower.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path))


def run_follower(
    settings: Settings,
    ms: MirrorSettings,
    es: Elasticsearch,
    stop: threading.Event | None = None,
    *,
    retry: Retry | None = None,
) -> None:
    """Run the follower loop under the single-follower lock until ``stop`` is set."""
    lock = follower_lock(settings)
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise MirrorBusy(f"another mirror follower is running ({lock.lock_file})") from exc
    try:
        Follower(settings, ms, es, retry=retry).run(stop)
    finally:
        lock.release()
