"""Compaction: merge the many small files of a date partition into fewer, larger files.

Two selections share one commit scheme:

* a past partition (its day ended ``older_than`` ago): every visible file, merged
  into one (:func:`compact`, ``workbench compact``);
* the current ("hot") partition, which the ingestor still writes about one file a
  second: only the visible files smaller than a :class:`SmallFilePolicy`'s bounds
  and older than its ``min_age``, once there are ``min_files`` of them
  (:func:`compact_hot`). Big files are left alone, so each run rewrites at most a
  few small files' worth of rows, never the whole day; the newest files (still
  being followed by the mirror, maybe rewritten by a WAL replay) are not touched.

Scheme (commit by metadata, delete after):

1. Under a per-partition lock, list the partition's visible files (as readers do).
2. Read them, sort by ``(timestamp, id)``, write ``compact-<uuid>.parquet`` under a
   hidden temporary name with the key-value metadata ``workbench.replaces`` = the
   base names of every input file plus, transitively, the names those inputs
   replaced themselves.
3. Commit: rename the temporary file into place. From this instant readers hide
   every replaced file (``reader.partition_files``), so they see each event once:
   before the rename they read the sources, after it the compacted file.
4. Delete the replaced files still present (sources, older compacted files).

A crash before 3 leaves a hidden temporary file (invisible, swept by the next
run); a crash during 4 leaves replaced files that readers already hide (deleted
by the next run). A WAL replay that rewrites an already-compacted ``part-x`` is
hidden too (same name, same rows, already in the compacted file). Files that
arrive later (late events) are not named, so they stay visible and are merged
by the next run. Transitive names matter: if compacted file C1 is itself
compacted into C2 and the run crashes after deleting C1 but before deleting
C1's sources, C2 still hides them.

A reader that listed the partition just before step 4 may find a source gone
when it opens it; ``grace`` delays step 4 for files replaced less than that
long ago (the next run deletes them), so in-flight queries finish first.

Only the files selected are named, so files that are not selected (too big, too
new, committed after the listing) stay visible and are merged by a later run.

Only one compactor per partition at a time (a ``filelock`` in the partition
folder on local disks); two compactors racing on an object store would commit
overlapping compacted files (every row read twice), so there the cluster's
housekeeping lock (PostgreSQL) keeps them apart: the scheduler's passes and the
``compact``/``retention`` commands take it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from workbench import clock
from workbench.config import Settings
from workbench.lake import facts, reader
from workbench.lake import fs as lakefs
from workbench.lake.retention import RemovedPartition, apply_retention
from workbench.lake.schema import SCHEMA

log = logging.getLogger(__name__)

_TMP_PREFIX = ".tmp-compact-"
_LOCK_NAME = "_compact.lock"


@dataclass(frozen=True, slots=True)
class CompactionResult:
    """What one partition's compaction did: files merged, rows written, files deleted."""

    day: date
    merged: int
    rows: int
    deleted: int
    compacted_file: str | None


@dataclass(frozen=True, slots=True)
class SmallFilePolicy:
    """Which files of a hot partition to merge: small, settled ones, once there are enough.

    A file is small when under ``max_bytes`` and under ``max_rows``; settled when
    committed at least ``min_age`` ago, or when it is a compacted file (the age
    only spares the ingestor's newest files). Nothing is merged until
    ``min_files`` files are both. One merge takes the oldest such files up to
    ``max_merge_bytes`` in all (memory: the merge holds its inputs decoded); the
    rest wait for the next run.
    """

    max_bytes: int = 8 * 1024 * 1024
    max_rows: int = 1_000_000
    min_files: int = 10
    min_age: timedelta = timedelta(seconds=60)
    max_merge_bytes: int = 128 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> SmallFilePolicy:
        """Return the policy the ``WORKBENCH_COMPACT_*`` settings describe."""
        return cls(
            max_bytes=settings.compact_small_file_bytes,
            max_rows=settings.compact_small_file_rows,
            min_files=settings.compact_min_files,
            min_age=timedelta(seconds=settings.compact_min_age_s),
            max_merge_bytes=settings.compact_max_merge_bytes,
        )

    @classmethod
    def for_past_days(cls, settings: Settings) -> SmallFilePolicy:
        """Return the policy of ended days: every file under the merge bound, at any age."""
        cap = settings.compact_max_merge_bytes
        return cls(
            max_bytes=cap, max_rows=2**62, min_files=2, min_age=timedelta(0), max_merge_bytes=cap
        )


def select_small_files(
    visible: Sequence[reader.FileStat],
    entries: Mapping[str, lakefs.Entry],
    policy: SmallFilePolicy,
    now: datetime,
) -> list[reader.FileStat]:
    """Return the visible files ``policy`` merges at ``now``, or none when too few qualify.

    ``entries`` gives each path's size and commit time (mtime); a file missing
    from it (deleted since the listing) is not selected.
    """
    settled_ns = (now - policy.min_age).timestamp() * 1e9
    candidates = []
    for s in visible:
        e = entries.get(s.path)
        if e is None or e.size >= policy.max_bytes or s.num_rows >= policy.max_rows:
            continue
        name = s.path.rsplit("/", 1)[-1]
        if e.mtime_ns <= settled_ns or name.startswith(reader.COMPACT_PREFIX):
            candidates.append((e.mtime_ns, s.path, e.size, s))
    candidates.sort(key=lambda c: c[:2])
    chosen: list[reader.FileStat] = []
    total = 0
    for _, _, size, s in candidates:
        if total >= policy.max_merge_bytes:
            break
        chosen.append(s)
        total += size
    return chosen if len(chosen) >= max(policy.min_files, 2) else []


def _replaced_names(stats: list[reader.FileStat]) -> list[str]:
    names: set[str] = set()
    for s in stats:
        names.add(s.path.rsplit("/", 1)[-1])
        names |= s.replaces  # transitive: see the module docstring
    return sorted(names)


def commit_compacted(fs: pafs.FileSystem, folder: str, inputs: list[reader.FileStat]) -> str:
    """Write the merged rows of ``inputs`` as a committed ``compact-*.parquet``; return its path."""
    tables = []
    for s in inputs:
        with fs.open_input_file(s.path) as handle:
            # Verified: a damaged page must not be rewritten under a fresh, valid checksum.
            tables.append(pq.read_table(handle, schema=SCHEMA, page_checksum_verification=True))
    merged = pa.concat_tables(tables).sort_by([("timestamp", "ascending"), ("id", "ascending")])
    replaces = json.dumps(_replaced_names(inputs)).encode()
    merged = merged.replace_schema_metadata({reader.REPLACES_KEY: replaces})
    final = f"{folder}/{reader.COMPACT_PREFIX}{uuid.uuid4().hex}.parquet"

    def encode(sink: pa.NativeFile) -> None:
        pq.write_table(
            merged, sink, compression="zstd", row_group_size=128 * 1024, write_page_checksum=True
        )

    # The commit point: a rename on local disks, the one upload's completion on object storage.
    lakefs.write_atomically(fs, final, encode)
    reader.keep_committed(fs, final, inputs[0].day, merged)
    return final


def compact_partition(
    lake_url: str,
    day: date,
    *,
    min_files: int = 2,
    grace: timedelta = timedelta(0),
    policy: SmallFilePolicy | None = None,
    now: datetime | None = None,
    lock_timeout: float = -1,
) -> CompactionResult:
    """Merge visible files of one partition into one, then delete what compactions replaced.

    Without ``policy`` every visible file is merged (when there are ``min_files``);
    with it only the files :func:`select_small_files` picks at ``now`` (default:
    the wall clock). ``lock_timeout`` (seconds, -1: wait forever) bounds the wait
    for the partition lock; past it :class:`filelock.Timeout` is raised.
    """
    filesystem, root = lakefs.resolve(lake_url)
    folder = f"{root}/logs/date={day.isoformat()}"
    local = filesystem.type_name == "local"
    lock = FileLock(f"{folder}/{_LOCK_NAME}") if local else None
    if lock is not None:
        lock.acquire(timeout=lock_timeout)
    try:
        visible, hidden = reader.partition_files(filesystem, folder, day)
        inputs = visible if len(visible) >= min_files else []
        if policy is not None:
            entries = {e.path: e for e in lakefs.list_dir(filesystem, folder)}
            at = now if now is not None else clock.now()
            inputs = select_small_files(visible, entries, policy, at)
        compacted: str | None = None
        rows = 0
        if inputs:
            compacted = commit_compacted(filesystem, folder, inputs)
            rows = sum(s.num_rows for s in inputs)
            hidden = hidden + inputs
        deleted = _delete_replaced(filesystem, folder, day, hidden, grace)
        return CompactionResult(day, len(inputs), rows, deleted, compacted)
    finally:
        if lock is not None:
            lock.release()


def _delete_replaced(
    fs: pafs.FileSystem, folder: str, day: date, replaced: list[reader.FileStat], grace: timedelta
) -> int:
    """Delete replaced files whose replacement committed over ``grace`` ago; return how many.

    Also sweeps temporary files of crashed runs (older than an hour).
    """
    now_ns = time.time_ns()
    entries = lakefs.list_dir(fs, folder)
    # When was each name replaced? The commit time (mtime) of the oldest compacted file naming it.
    replaced_at: dict[str, int] = {}
    for e in entries:
        if e.size != -1 and e.base_name.startswith(reader.COMPACT_PREFIX):
            for name in reader.read_stat(fs, e, day).replaces:
                replaced_at[name] = min(replaced_at.get(name, e.mtime_ns), e.mtime_ns)
    grace_ns = grace // timedelta(microseconds=1) * 1000
    deleted = 0
    for s in replaced:
        name = s.path.rsplit("/", 1)[-1]
        at = replaced_at.get(name)
        if at is None or now_ns - at < grace_ns:
            continue
        try:
            fs.delete_file(s.path)
            deleted += 1
        except FileNotFoundError:
            pass
    for e in entries:
        if e.base_name.startswith(_TMP_PREFIX) and e.mtime_ns < now_ns - 3600 * 10**9:
            fs.delete_file(e.path)  # a crashed run's leftover, never visible
    # The facts kept on disk for files the partition no longer holds go too (a bounded folder).
    facts.prune(folder)
    return deleted


def compact(
    lake_url: str,
    *,
    now: datetime,
    older_than: timedelta = timedelta(hours=2),
    min_files: int = 2,
    grace: timedelta = timedelta(minutes=5),
) -> list[CompactionResult]:
    """Compact every partition whose day ended more than ``older_than`` before ``now``."""
    results = []
    for day, _ in reader.partitions(lake_url):
        if now - _day_end(day, now) < older_than:
            continue
        results.append(compact_partition(lake_url, day, min_files=min_files, grace=grace))
    return results


def _day_end(day: date, now: datetime) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=now.tzinfo) + timedelta(days=1)


def compact_hot(
    lake_url: str,
    *,
    now: datetime,
    policy: SmallFilePolicy,
    older_than: timedelta = timedelta(hours=2),
    grace: timedelta = timedelta(minutes=5),
    lock_timeout: float = -1,
) -> list[CompactionResult]:
    """Merge the small settled files of every partition :func:`compact` does not take yet."""
    return [
        compact_partition(
            lake_url, day, grace=grace, policy=policy, now=now, lock_timeout=lock_timeout
        )
        for day, _ in reader.partitions(lake_url)
        if now - _day_end(day, now) < older_than
    ]


@dataclass(slots=True)
class HousekeepingResult:
    """What one housekeeping pass did: partitions expired, compactions, partitions skipped."""

    expired: list[RemovedPartition] = field(default_factory=list)
    compacted: list[CompactionResult] = field(default_factory=list)
    busy: list[date] = field(default_factory=list)  # another compactor held the lock
    failed: list[date] = field(default_factory=list)  # error logged, retried next pass


def housekeep(
    lake_url: str,
    *,
    now: datetime,
    policy: SmallFilePolicy,
    past_policy: SmallFilePolicy | None = None,
    older_than: timedelta = timedelta(hours=2),
    grace: timedelta = timedelta(minutes=5),
    retention_days: int | None = None,
    lock_timeout: float = 0.0,
) -> HousekeepingResult:
    """Apply retention (when set), then compact every partition: hot ones by ``policy``.

    Past partitions (ended ``older_than`` ago) are merged whole, or by
    ``past_policy`` when given (bounding each merge for days too big to hold at once).

    Never raises for one partition's trouble: a partition whose lock is held
    (a manual ``workbench compact``) is skipped, one that fails is logged; both
    are listed in the result and retried by the next pass.
    """
    result = HousekeepingResult()
    if retention_days is not None:
        result.expired = apply_retention(lake_url, days=retention_days, now=now)
    for day, _ in reader.partitions(lake_url):
        hot = now - _day_end(day, now) < older_than
        try:
            result.compacted.append(
                compact_partition(
                    lake_url,
                    day,
                    grace=grace,
                    policy=policy if hot else past_policy,
                    now=now,
                    lock_timeout=lock_timeout,
                )
            )
        except Timeout:
            result.busy.append(day)
        except Exception:
            log.exception("compaction of %s failed", day.isoformat())
            result.failed.append(day)
    # The merges' buffers go back to arrow's pool, which otherwise keeps them resident
    # (about 100 MB in the long-running scheduler after merging a few hundred thousand rows).
    pa.default_memory_pool().release_unused()
    return result
