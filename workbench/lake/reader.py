"""Read the lake as a ``polars.LazyFrame``: cheap listing, partition pruning, compaction-aware.

Visibility rule (see ``docs/lake.md``):

* a file is a candidate when it is a committed ``*.parquet`` (no ``.``/``_`` prefix)
  inside a ``date=YYYY-MM-DD`` partition;
* a committed compacted file (``compact-*.parquet``) records in its Parquet
  key-value metadata (key ``workbench.replaces``) the base names of every file it
  replaces, transitively; a candidate named there is hidden, even if it still
  exists (the compactor deletes sources only after the compacted file is committed).

Files are immutable once committed, so what we learn from a footer (row count,
time bounds, the replaced names) is cached per ``(path, size, mtime)``: listing a
partition costs one directory scan plus footer reads for files never seen before.
These facts are also kept beside the lake (``workbench.lake.facts``), by the process that
commits a file (:func:`keep_committed`) or else by its first reader, so a process started
later reads them instead of the files.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from workbench.lake import committed, facts, integrity
from workbench.lake import fs as lakefs
from workbench.lake.fs import Entry, list_dir
from workbench.lake.schema import LOGS_TABLE, QUARANTINE_DIR, parse_partition_dir

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_R = TypeVar("_R")

POLARS_SCHEMA = pl.Schema(
    [
        ("id", pl.String),
        ("timestamp", pl.Datetime("us", "UTC")),
        ("received_at", pl.Datetime("us", "UTC")),
        ("service", pl.String),
        ("level", pl.String),
        ("message", pl.String),
        ("meta", pl.String),
    ]
)

COMPACT_PREFIX = "compact-"
REPLACES_KEY = b"workbench.replaces"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FileStat:
    """What a committed file's footer tells: rows, time bounds (µs since epoch, UTC), replaced names.

    ``row_groups`` holds ``(min_ts_us, max_ts_us, rows)`` of each row group, in file order
    (empty when a row group has no timestamp statistics): a search page reads only the
    newest row groups when they hold enough rows.
    """

    path: str
    day: date
    num_rows: int
    min_ts_us: int | None
    max_ts_us: int | None
    replaces: frozenset[str]
    row_groups: tuple[tuple[int, int, int], ...] = ()


_footer_cache: dict[tuple[str, int, int], FileStat] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 200_000


class DamagedFile(ValueError):
    """A committed file whose footer reads but whose pages fail their checksums or decoding."""


def read_stat(filesystem: pafs.FileSystem, entry: Entry, day: date) -> FileStat:
    """Return the footer facts of one file, from the cache when already seen.

    A file not seen before has every page's CRC checked first (:mod:`workbench.lake.integrity`);
    :class:`DamagedFile` is raised when one fails.
    """
    key = (entry.path, entry.size, entry.mtime_ns)
    hit = _footer_cache.get(key)
    if hit is not None:
        return hit
    version = f"{entry.size}-{entry.mtime_ns}"
    kept = facts.read_json(entry.path, "stat", version)
    if kept is not None:  # checked by an earlier process (workbench.lake.facts)
        stat = FileStat(
            entry.path,
            day,
            kept["num_rows"],
            kept["min"],
            kept["max"],
            frozenset(kept["replaces"]),
            tuple((lo, hi, n) for lo, hi, n in kept["row_groups"]),
        )
        return _remember_stat(key, stat)
    with filesystem.open_input_file(entry.path) as handle:
        meta = pq.ParquetFile(handle).metadata
        # polars reads pages without checking their checksums: a damaged page would be
        # returned as other rows' values, so each file's page CRCs are checked once, here.
        damage = integrity.crc_damage(handle, meta)
    if damage is not None:
        raise DamagedFile(f"damaged data page: {damage}")
    return _remember_stat(key, _keep_stat(entry, day, meta))


def _keep_stat(entry: Entry, day: date, meta: pq.FileMetaData) -> FileStat:
    """Return the facts of a file's footer ``meta``, kept for this version of the file."""
    replaces: frozenset[str] = frozenset()
    kv = meta.metadata or {}
    if REPLACES_KEY in kv:
        replaces = frozenset(json.loads(kv[REPLACES_KEY]))
    lo: int | None = None
    hi: int | None = None
    groups: list[tuple[int, int, int]] = []
    ts_index = meta.schema.names.index("timestamp") if "timestamp" in meta.schema.names else -1
    for rg in range(meta.num_row_groups):
        if ts_index < 0:
            break
        group = meta.row_group(rg)
        stats = group.column(ts_index).statistics
        if stats is None or not stats.has_min_max:
            lo = hi = None
            groups = []
            break
        mn, mx = _to_us(stats.min), _to_us(stats.max)
        groups.append((mn, mx, group.num_rows))
        lo = mn if lo is None else min(lo, mn)
        hi = mx if hi is None else max(hi, mx)
    stat = FileStat(entry.path, day, meta.num_rows, lo, hi, replaces, tuple(groups))
    fact: dict[str, Any] = {"num_rows": stat.num_rows, "min": lo, "max": hi}
    fact |= {"replaces": sorted(replaces), "row_groups": groups}
    facts.write_json(entry.path, "stat", f"{entry.size}-{entry.mtime_ns}", fact)
    return stat


def keep_committed(filesystem: pafs.FileSystem, path: str, day: date, table: pa.Table) -> None:
    """Keep the facts of ``path``, just committed with the rows of ``table`` (best effort).

    On a local disk the footer facts are read back with the page CRCs checked, as the
    file's first reader would (:func:`read_stat`). On object storage only the footer is
    read back: the one upload of the bytes pyarrow encoded (page CRCs included) is the
    file, and the store checks its own bytes; downloading it again would double every
    commit's traffic. Counts and rollups come from ``table``
    (:func:`workbench.lake.committed.keep`). A failure is logged and the first reader
    computes the facts instead.
    """
    if not facts.kept_for(path):
        return
    try:
        if lakefs.is_local(filesystem):
            info = filesystem.get_file_info(path)
            entry = Entry(path, info.base_name, info.size or 0, info.mtime_ns or 0)
            stat = read_stat(filesystem, entry, day)
        else:
            # The listing's size and time, as every reader's key for this version has them.
            folder, name = path.rsplit("/", 1)
            entry = next(e for e in list_dir(filesystem, folder) if e.base_name == name)
            with filesystem.open_input_file(path) as handle:
                meta = pq.ParquetFile(handle).metadata
            stat = _keep_stat(entry, day, meta)
        if stat.num_rows != table.num_rows:
            raise ValueError(f"{stat.num_rows} rows committed, {table.num_rows} written")
        committed.keep(path, fact_version(stat), table)
    except Exception as exc:  # noqa: BLE001 - the first reader computes them instead
        log.warning("facts of the committed file %s not kept: %s", path, exc)


def _remember_stat(key: tuple[str, int, int], stat: FileStat) -> FileStat:
    """Cache ``stat`` under ``key`` in memory; return it."""
    with _cache_lock:
        if len(_footer_cache) > _CACHE_MAX:
            _footer_cache.clear()
        _footer_cache[key] = stat
    return stat


def fact_version(stat: FileStat) -> str:
    """Return the key tying a per-file fact to this version of the file (rows, time bounds)."""
    return f"{stat.num_rows}-{stat.min_ts_us}-{stat.max_ts_us}"


def _to_us(value: Any) -> int:
    """Return microseconds since the epoch of a footer statistic (datetime or integer)."""
    if isinstance(value, datetime):
        epoch = _EPOCH if value.tzinfo else _EPOCH.replace(tzinfo=None)
        return (value - epoch) // timedelta(microseconds=1)
    return int(value)


def partitions(lake_url: str) -> list[tuple[date, str]]:
    """Return ``(day, folder path)`` of every date partition, oldest first."""
    filesystem, root = lakefs.resolve(lake_url)
    out = []
    for e in list_dir(filesystem, f"{root}/{LOGS_TABLE}"):
        if e.size != -1:
            continue
        day = parse_partition_dir(e.base_name)
        if day is not None:
            out.append((day, e.path))
    return sorted(out)


def partition_files(
    filesystem: pafs.FileSystem, folder: str, day: date
) -> tuple[list[FileStat], list[FileStat]]:
    """Return ``(visible, hidden)`` committed files of one partition folder.

    Hidden files are committed files named in a compacted file's replaced list:
    their rows are already in the compacted file.
    """
    listed = list_dir(filesystem, folder)
    if any(e.base_name == lakefs.DELETING_MARKER for e in listed):
        return [], []  # retention is dropping this day on object storage: none of it
    entries = [
        e
        for e in listed
        if e.size != -1 and e.base_name.endswith(".parquet") and e.base_name[0] not in "._"
    ]
    stats: dict[str, FileStat] = {}
    for e in entries:
        stat = _read_stat_or_quarantine(filesystem, e, day, folder)
        if stat is not None:
            stats[e.base_name] = stat
    replaced: set[str] = set()
    for name, stat in stats.items():
        if name.startswith(COMPACT_PREFIX):
            replaced |= stat.replaces
    visible: list[FileStat] = []
    hidden: list[FileStat] = []
    for name, stat in stats.items():
        (hidden if name in replaced else visible).append(stat)
    visible.sort(key=lambda s: s.path)
    return visible, hidden


def _read_stat_or_quarantine(
    filesystem: pafs.FileSystem, entry: Entry, day: date, folder: str
) -> FileStat | None:
    """Return the footer facts of ``entry``; a file whose footer cannot be read is quarantined.

    Committed files are renamed into place only once complete, so an unreadable
    footer (``ArrowInvalid``) or a page failing its checksum (:class:`DamagedFile`) means
    damage (disk, truncation, a hand edit): the file is moved to
    ``<lake>/_quarantine/<partition>/`` with a warning and skipped, so one bad
    file cannot break every search and trend. A file that vanished meanwhile
    (compaction, retention) is skipped silently.
    """
    try:
        return read_stat(filesystem, entry, day)
    except FileNotFoundError:
        return None
    except OSError as exc:
        # Possibly transient (EIO, EMFILE, permissions): skip it this time, never move it.
        log.warning("lake file %s skipped, cannot be read now: %s", entry.path, exc)
        return None
    except ValueError as exc:  # pyarrow.ArrowInvalid (the footer) or DamagedFile (a page)
        table_dir = folder.rstrip("/").rsplit("/", 1)
        root = table_dir[0].rsplit("/", 1)[0]
        target_dir = f"{root}/{QUARANTINE_DIR}/{table_dir[-1]}"
        target = f"{target_dir}/{entry.base_name}"
        try:
            filesystem.create_dir(target_dir, recursive=True)
            filesystem.move(entry.path, target)
        except OSError as move_exc:
            if filesystem.get_file_info(entry.path).type != pafs.FileType.NotFound:
                log.warning(
                    "unreadable lake file %s skipped (quarantine failed: %s): %s",
                    entry.path,
                    move_exc,
                    exc,
                )
            return None  # else another reader quarantined it meanwhile
        what = "damaged" if isinstance(exc, DamagedFile) else "unreadable"
        log.warning("%s lake file %s moved to quarantine %s: %s", what, entry.path, target, exc)
        return None


def file_stats(
    lake_url: str, start: datetime | None = None, end: datetime | None = None
) -> list[FileStat]:
    """Return the visible files (with footer facts) whose partition may hold events in ``[start, end]``.

    Files whose time bounds fall wholly outside ``[start, end]`` are dropped too.
    """
    filesystem, _ = lakefs.resolve(lake_url)
    first: date | None = start.date() if start else None
    last: date | None = end.date() if end else None
    lo = int(start.timestamp() * 1_000_000) if start else None
    hi = int(end.timestamp() * 1_000_000) if end else None
    out: list[FileStat] = []
    days = [
        (day, folder)
        for day, folder in partitions(lake_url)
        if not ((first and day < first) or (last and day > last))
    ]
    listed = map_remote(
        lambda part: partition_files(filesystem, part[1], part[0])[0],
        days,
        remote=not lakefs.is_local(filesystem),
    )
    for visible in listed:
        for s in visible:
            if lo is not None and s.max_ts_us is not None and s.max_ts_us < lo:
                continue
            if hi is not None and s.min_ts_us is not None and s.min_ts_us > hi:
                continue
            out.append(s)
    return out


_POOL_WORKERS = 8
_POOL_PREFIX = "lake-remote"
_pool: ThreadPoolExecutor | None = None


def map_remote(fn: Callable[[_T], _R], items: list[_T], *, remote: bool) -> list[_R]:
    """Return ``[fn(item) for item in items]``; on object storage up to 8 calls at once.

    There every listing and every kept fact is a request that mostly waits on the network
    (1-20 ms each on S3), and a query over 30 days lists 30 partitions and reads a few facts
    per file: one at a time they add up to seconds. A local disk answers in microseconds:
    the calls run in the caller's thread, as they do when the caller is one of the pool's
    own workers. The pool is one per process, of 8 threads.
    """
    global _pool
    nested = threading.current_thread().name.startswith(_POOL_PREFIX)
    if not remote or len(items) < 2 or nested:  # a worker waiting on its own pool could hang
        return [fn(item) for item in items]
    if _pool is None:
        with _cache_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(_POOL_WORKERS, thread_name_prefix=_POOL_PREFIX)
    return list(_pool.map(fn, items))


def visible_files(
    lake_url: str, start: datetime | None = None, end: datetime | None = None
) -> list[str]:
    """Return the committed, not-replaced Parquet files that may hold events in ``[start, end]``."""
    return sorted(s.path for s in file_stats(lake_url, start, end))


def scan_files(paths: list[str]) -> pl.LazyFrame:
    """Return the events of the given lake files lazily (lake schema; empty frame for no files)."""
    if not paths:
        return pl.LazyFrame(schema=POLARS_SCHEMA)
    return pl.scan_parquet(
        **lakefs.scan_options(paths), schema=POLARS_SCHEMA, hive_partitioning=False
    )


def scan(lake_url: str, start: datetime | None = None, end: datetime | None = None) -> pl.LazyFrame:
    """Return every event of the lake (or of the files that may cover ``[start, end]``) lazily.

    The frame has the lake schema (see ``workbench.lake.schema``); an empty lake
    gives an empty frame with that schema. Filtering rows to the exact range is
    the caller's job: partitions and files are pruned, rows are not.
    """
    return scan_files(visible_files(lake_url, start, end))


_key_counts_cache: dict[tuple[str, int | None, int], dict[tuple[str, str], int]] = {}


def key_counts(stat: FileStat) -> dict[tuple[str, str], int]:
    """Return ``{(service, level): rows}`` of one immutable file, computed once and cached."""
    key = (stat.path, stat.min_ts_us, stat.num_rows)
    hit = _key_counts_cache.get(key)
    if hit is not None:
        return hit
    kept = facts.read_json(stat.path, committed.KEYS_KIND, fact_version(stat))
    if kept is not None:
        counts = {(s, lv): n for s, lv, n in kept}
    else:
        counts = committed.key_counts_of(pl.scan_parquet(**lakefs.scan_options([stat.path])))
        rows = [[s, lv, n] for (s, lv), n in counts.items()]
        facts.write_json(stat.path, committed.KEYS_KIND, fact_version(stat), rows)
    with _cache_lock:
        if len(_key_counts_cache) > _CACHE_MAX:
            _key_counts_cache.clear()
        _key_counts_cache[key] = counts
    return counts
