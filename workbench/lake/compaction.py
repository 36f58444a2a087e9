"""Compaction: merge the many small files of a past date partition into one large file.

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

Only one compactor per partition at a time (a ``filelock`` in the partition
folder on local disks); two compactors racing on an object store could commit
overlapping compacted files, so there run it from one scheduled job.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from filelock import FileLock

from workbench.lake import fs as lakefs
from workbench.lake import reader
from workbench.lake.schema import SCHEMA

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
            tables.append(pq.read_table(handle, schema=SCHEMA))
    merged = pa.concat_tables(tables).sort_by([("timestamp", "ascending"), ("id", "ascending")])
    replaces = json.dumps(_replaced_names(inputs)).encode()
    merged = merged.replace_schema_metadata({reader.REPLACES_KEY: replaces})
    token = uuid.uuid4().hex
    tmp = f"{folder}/{_TMP_PREFIX}{token}.parquet"
    final = f"{folder}/{reader.COMPACT_PREFIX}{token}.parquet"
    with fs.open_output_stream(tmp) as sink:
        pq.write_table(merged, sink, compression="zstd", row_group_size=128 * 1024)
    fs.move(tmp, final)  # the commit point
    return final


def compact_partition(
    lake_url: str, day: date, *, min_files: int = 2, grace: timedelta = timedelta(0)
) -> CompactionResult:
    """Merge the visible files of one partition into one, then delete what it replaces."""
    filesystem, root = lakefs.resolve(lake_url)
    folder = f"{root}/logs/date={day.isoformat()}"
    local = filesystem.type_name == "local"
    lock = FileLock(f"{folder}/{_LOCK_NAME}") if local else None
    if lock is not None:
        lock.acquire()
    try:
        visible, hidden = reader.partition_files(filesystem, folder, day)
        compacted: str | None = None
        rows = 0
        if len(visible) >= min_files:
            compacted = commit_compacted(filesystem, folder, visible)
            rows = sum(s.num_rows for s in visible)
            hidden = hidden + visible
        deleted = _delete_replaced(filesystem, folder, day, hidden, grace)
        return CompactionResult(day, len(visible) if compacted else 0, rows, deleted, compacted)
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
    entries = reader.list_dir(fs, folder)
    # When was each name replaced? The commit time (mtime) of the oldest compacted file naming it.
    replaced_at: dict[str, int] = {}
    for e in entries:
        if e.size != -1 and e.base_name.startswith(reader.COMPACT_PREFIX):
            for name in reader.read_stat(fs, e, day).replaces:
                replaced_at[name] = min(replaced_at.get(name, e.mtime_ns), e.mtime_ns)
    grace_ns = grace // timedelta(microseconds=1) * 1000
    deleted = 0
    for s in replaced:
        at = replaced_at.get(s.path.rsplit("/", 1)[-1])
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
        day_end = datetime(day.year, day.month, day.day, tzinfo=now.tzinfo) + timedelta(days=1)
        if now - day_end < older_than:
            continue
        results.append(compact_partition(lake_url, day, min_files=min_files, grace=grace))
    return results
