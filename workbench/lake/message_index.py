"""The message index: what text search totals are counted from, built in a background thread.

A committed file never changes, so once (in a background thread, queued by the first text
search that needs the file) its ``service``, ``level`` and ``message`` columns are read and
each row's message kept as a code into one process-wide dictionary of distinct messages,
rows grouped by ``(service, level)``. A text total is then: match the distinct messages once
(the same polars expression as the row filter, so the same answers), and count the rows whose
code matched. Memory is bounded (see ``docs/lake.md``): about 2 bytes per indexed row (4 when
a file has more than 65,536 distinct messages), 8 bytes per distinct message of each file,
and the dictionary; files whose messages are mostly distinct, and files beyond the caps, are
not indexed and are scanned as before.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from workbench.lake import committed, facts
from workbench.lake import fs as lakefs
from workbench.lake.reader import FileStat, fact_version

log = logging.getLogger(__name__)

MESSAGE_INDEX_MAX_ROWS = 120_000_000
MESSAGE_DICT_MAX = 500_000
# A file with more distinct messages than this share of its rows is not indexed.
_DISTINCT_SHARE_MAX = committed.MSGIDX_DISTINCT_SHARE_MAX


@dataclass(frozen=True, slots=True)
class MessageIndex:
    """One file's rows as message codes grouped by ``(service, level)``.

    ``codes[start:stop]`` are the local message codes (positions in ``dict_codes``) of the
    rows of each ``keys`` entry ``((service, level), start, stop)``; ``dict_codes`` are the
    process-wide codes (see :func:`message_dictionary`) of the file's distinct messages and
    ``counts`` how many rows carry each.
    """

    keys: tuple[tuple[tuple[str | None, str | None], int, int], ...]
    codes: Any  # numpy uint16/uint32 array, one entry per row
    dict_codes: Any  # numpy int32 array of process-wide codes
    counts: Any  # numpy int32 array, rows per distinct message
    dictionary_size: int  # the dictionary's size when built: every code is below it

    @property
    def nbytes(self) -> int:
        """Return the bytes held by the arrays."""
        return int(self.codes.nbytes + self.dict_codes.nbytes + self.counts.nbytes)


_message_codes: dict[str | None, int] = {}
_message_values: list[str | None] = []
_message_series: pl.Series | None = None  # _message_values as a Series, rebuilt when it grew
_message_index: dict[tuple[str, int | None, int], MessageIndex | None] = {}
_message_index_rows = 0
_message_lock = threading.Lock()
_message_pruned_at = -60.0
_index_queue: dict[str, FileStat] = {}  # path -> file, oldest request first
_indexer: threading.Thread | None = None
_INDEX_COLUMNS = ["service", "level", "message"]
FACT_KIND = committed.MSGIDX_KIND  # the kept index's kind in workbench.lake.facts
_FACT_COLUMNS = committed.MSGIDX_COLUMNS
_DICTIONARY_PARQUET = ds.ParquetFileFormat(
    read_options=ds.ParquetReadOptions(dictionary_columns=_INDEX_COLUMNS)
)


def message_dictionary() -> pl.Series:
    """Return the process-wide distinct messages; position ``i`` is the message of code ``i``."""
    global _message_series
    with _message_lock:
        if _message_series is None:
            _message_series = pl.Series("message", _message_values, dtype=pl.String)
        elif len(_message_series) < len(_message_values):
            # Only the messages added since: the dictionary grows with every new file.
            tail = pl.Series("message", _message_values[len(_message_series) :], dtype=pl.String)
            grown = pl.concat([_message_series, tail], rechunk=False)
            _message_series = grown.rechunk() if grown.n_chunks() > 64 else grown
        return _message_series


def message_index(stat: FileStat, *, wait: bool = True) -> MessageIndex | None:
    """Return the message index of one immutable file, built once; None when it is not indexed.

    Not indexed: files whose messages are mostly distinct (the index would cost as much as a
    scan) and files that would take the process past ``MESSAGE_INDEX_MAX_ROWS`` indexed rows or
    ``MESSAGE_DICT_MAX`` distinct messages. With ``wait=False`` a file not indexed yet gives
    None at once and is indexed by a background thread (the caller scans it this time).
    """
    key = (stat.path, stat.min_ts_us, stat.num_rows)
    known = _message_index.get(key)
    if known is not None or key in _message_index:
        return known  # None: known not to be indexed (or dropped meanwhile: scan it)
    if not _message_index_has_room(stat.num_rows):
        return None
    kept = _load_kept(stat)
    if kept is not None:
        _remember_message_index(key, kept)
        return kept
    if not wait:
        _index_later(stat)
        return None
    # Read as Parquet stored them (dictionaries: no hashing of strings), with the system
    # allocator: arrow's default pool keeps ~90 MB more resident after reading a 10M-row lake.
    # On object storage through the lake's own filesystem (a path there carries no scheme).
    filesystem = lakefs.remote_filesystem(stat.path)
    table = ds.dataset(stat.path, format=_DICTIONARY_PARQUET, filesystem=filesystem).to_table(
        columns=_INDEX_COLUMNS, use_threads=False, memory_pool=pa.system_memory_pool()
    )
    index = _build_message_index(table)
    _remember_message_index(key, index)
    if index is not None:
        _keep(stat, index)
    return index


def _keep(stat: FileStat, index: MessageIndex) -> None:
    """Keep ``index`` in a portable form beside the file's other facts (``lake.facts``).

    Process-wide codes mean nothing to another process: kept are the file's distinct messages
    once and each row's local code (a position in them), rows grouped by ``(service, level)``,
    as one row of list columns (Arrow IPC): about 2 bytes per row plus the messages.
    """
    if not facts.kept_for(stat.path):
        return
    with _message_lock:
        messages = [_message_values[c] for c in index.dict_codes.tolist()]
    frame = pl.DataFrame(
        {
            "messages": [pl.Series(messages, dtype=pl.String)],
            "services": [pl.Series([k[0][0] for k in index.keys], dtype=pl.String)],
            "levels": [pl.Series([k[0][1] for k in index.keys], dtype=pl.String)],
            "stops": [pl.Series([k[2] for k in index.keys], dtype=pl.Int64)],
            "codes": [pl.Series(index.codes)],
            "counts": [pl.Series(index.counts)],
        }
    )
    facts.write_frame(stat.path, FACT_KIND, fact_version(stat), frame)


def _load_kept(stat: FileStat) -> MessageIndex | None:
    """Return the index kept on disk for this version of the file, mapped into this process.

    None when none is kept, when it is damaged or belongs to other rows (it is then built
    again from the file), or when its messages would take the dictionary past its cap.
    """
    frame = facts.read_frame(stat.path, FACT_KIND, fact_version(stat))
    if frame is None:
        return None
    try:
        return _index_from_frame(stat, frame)
    except Exception as exc:  # noqa: BLE001 - any damage: build the index again
        log.debug("kept message index of %s ignored: %s", stat.path, exc)
        return None


def _index_from_frame(stat: FileStat, frame: pl.DataFrame) -> MessageIndex | None:
    """Return the index a kept frame (see :func:`_keep`) describes; raise when it is damaged."""
    if frame.columns != _FACT_COLUMNS or frame.height != 1:
        raise ValueError(f"columns {frame.columns}, {frame.height} rows")
    messages = frame["messages"][0]
    services, levels, stops = (frame[c][0].to_list() for c in ("services", "levels", "stops"))
    codes = frame["codes"][0].to_numpy()
    counts = frame["counts"][0].to_numpy()
    size = len(messages)
    local_dtype = np.uint16 if size <= 65_536 else np.uint32
    starts = [0, *stops[:-1]]
    if (
        not size
        or len(codes) != stat.num_rows
        or codes.dtype != local_dtype
        or int(codes.max()) >= size
        or len(counts) != size
        or int(counts.sum()) != stat.num_rows
        or not len(services) == len(levels) == len(stops)
        or not stops
        or stops[-1] != stat.num_rows
        or any(stop <= start for start, stop in zip(starts, stops, strict=True))
    ):
        raise ValueError("not an index of this file")
    # Vectorised against the dictionary as it is now (it only grows); Python strings are
    # made only for the messages it does not hold yet.
    known = pc.index_in(messages.to_arrow(), value_set=message_dictionary().to_arrow())
    dict_codes = known.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
    missing = np.flatnonzero(dict_codes < 0)
    new: list[str | None] = messages.gather(missing).to_list() if len(missing) else []
    with _message_lock:
        found = list(map(_message_codes.get, new))
        if len(_message_values) + found.count(None) > MESSAGE_DICT_MAX:
            return None
        for i, m in enumerate(new):
            if found[i] is None:
                found[i] = _message_codes[m] = len(_message_values)
                _message_values.append(m)
        dict_codes[missing] = found
        dictionary_size = len(_message_values)
    return MessageIndex(
        keys=tuple(
            ((svc, lv), start, stop)
            for svc, lv, start, stop in zip(services, levels, starts, stops, strict=True)
        ),
        codes=codes,
        dict_codes=dict_codes,
        counts=counts,
        dictionary_size=dictionary_size,
    )


def _index_later(stat: FileStat) -> None:
    """Queue ``stat`` for the background indexer, starting it when idle."""
    global _indexer
    with _message_lock:
        if stat.path in _index_queue:
            return
        _index_queue[stat.path] = stat
        if _indexer is None:
            _indexer = threading.Thread(target=_index_queued, name="message-index", daemon=True)
            _indexer.start()


def _index_queued() -> None:
    """Index queued files until none is left (the background indexer's loop)."""
    global _indexer
    while True:
        with _message_lock:
            if not _index_queue:
                _indexer = None
                return
            stat = _index_queue.pop(next(iter(_index_queue)))
        try:
            message_index(stat)
        except Exception as exc:  # deleted meanwhile, unreadable: searches scan it as before
            log.debug("message index of %s not built: %s", stat.path, exc)


def wait_for_message_index() -> None:
    """Return once the background indexer is idle (benchmarks and tests)."""
    while (worker := _indexer) is not None and worker.is_alive():
        worker.join()


def _message_index_has_room(rows: int) -> bool:
    """Return whether ``rows`` more rows fit in the caps, first forgetting files deleted since.

    Compaction and retention delete files; their entries are dropped here, at most once a
    minute and only when a cap is reached. The dictionary only grows (codes held by a running
    search stay valid): once full, new files are scanned rather than indexed.
    """
    global _message_index_rows, _message_pruned_at
    if (
        _message_index_rows + rows <= MESSAGE_INDEX_MAX_ROWS
        and len(_message_values) < MESSAGE_DICT_MAX
    ):
        return True
    now = time.monotonic()
    if now - _message_pruned_at < 60:
        return False
    with _message_lock:
        _message_pruned_at = now
        gone = [k for k in _message_index if not _exists(k[0])]
        for k in gone:
            index = _message_index.pop(k)
            if index is not None:
                _message_index_rows -= len(index.codes)
    return (
        _message_index_rows + rows <= MESSAGE_INDEX_MAX_ROWS
        and len(_message_values) < MESSAGE_DICT_MAX
    )


def _exists(path: str) -> bool:
    """Return whether the lake file ``path`` still exists (local, or on object storage)."""
    filesystem = lakefs.remote_filesystem(path)
    if filesystem is None:
        return os.path.exists(path)
    try:
        return bool(filesystem.get_file_info(path).type != pafs.FileType.NotFound)
    except OSError:
        return True  # cannot tell now: keep it


def _dictionary_codes(column: Any) -> tuple[list[str | None], Any]:
    """Return ``(distinct values, per-row position in them)`` of a dictionary-encoded chunk."""
    values: list[str | None] = column.dictionary.to_pylist()
    if column.null_count:
        values.append(None)
        indices = column.indices.fill_null(len(values) - 1)
    else:
        indices = column.indices
    return values, np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.int64)


def _build_message_index(table: pa.Table) -> MessageIndex | None:
    """Return the index of a ``(service, level, message)`` table; None when not worth keeping."""
    key_ids: dict[tuple[str | None, str | None], int] = {}
    row_keys: list[Any] = []
    batch_codes: list[Any] = []  # per batch: the code of each of its dictionary's messages
    batch_rows: list[Any] = []  # per batch: each row's position in all batches' dictionaries
    seen = 0
    # Messages not yet in the dictionary get provisional negative codes until the file is kept.
    new_values: dict[str | None, int] = {}
    for batch in table.to_batches():
        svc_values, svc_rows = _dictionary_codes(batch.column(0))
        lv_values, lv_rows = _dictionary_codes(batch.column(1))
        msg_values, msg_rows = _dictionary_codes(batch.column(2))
        with _message_lock:
            codes: list[int | None] = list(map(_message_codes.get, msg_values))
        if None in codes:
            for i, m in enumerate(msg_values):
                if codes[i] is None:
                    codes[i] = new_values.setdefault(m, -1 - len(new_values))
        pair_ids = np.array(
            [key_ids.setdefault((s, lv), len(key_ids)) for s in svc_values for lv in lv_values],
            dtype=np.int64,
        )
        row_keys.append(pair_ids[svc_rows * len(lv_values) + lv_rows])
        batch_codes.append(np.asarray(codes, dtype=np.int64))
        batch_rows.append(msg_rows + seen)
        seen += len(msg_values)
    if not batch_codes:
        return None
    # Batches have dictionaries of their own: one sorted list of the file's distinct codes.
    dict_codes, batch_to_file = np.unique(np.concatenate(batch_codes), return_inverse=True)
    if len(dict_codes) > table.num_rows * _DISTINCT_SHARE_MAX:
        return None
    local = batch_to_file.reshape(-1)[np.concatenate(batch_rows)]
    counts = np.bincount(local, minlength=len(dict_codes))
    if new_values:
        final = np.empty(len(new_values), dtype=np.int64)
        with _message_lock:
            if len(_message_values) + len(new_values) > MESSAGE_DICT_MAX:
                return None
            for value, provisional in new_values.items():
                code = _message_codes.get(value)
                if code is None:  # not added by another thread meanwhile
                    code = _message_codes[value] = len(_message_values)
                    _message_values.append(value)
                final[-1 - provisional] = code
        negative = dict_codes < 0
        dict_codes[negative] = final[-1 - dict_codes[negative]]
    # Usually few (service, level) pairs: a stable sort of 16-bit keys is a radix sort.
    all_keys = np.concatenate(row_keys).astype(np.uint16 if len(key_ids) <= 65_536 else np.int64)
    order = np.argsort(all_keys, kind="stable")
    per_key = np.bincount(all_keys, minlength=len(key_ids))
    stops = np.cumsum(per_key)
    names = list(key_ids)
    local_dtype = np.uint16 if len(dict_codes) <= 65_536 else np.uint32
    return MessageIndex(
        keys=tuple(
            (names[k], int(stops[k] - per_key[k]), int(stops[k]))
            for k in range(len(names))
            if per_key[k]
        ),
        codes=local[order].astype(local_dtype),
        dict_codes=dict_codes.astype(np.int32),
        counts=counts.astype(np.int32),
        dictionary_size=len(_message_values),
    )


def _remember_message_index(key: tuple[str, int | None, int], index: MessageIndex | None) -> None:
    global _message_index_rows
    with _message_lock:
        if key in _message_index:
            return
        _message_index[key] = index
        if index is not None:
            _message_index_rows += len(index.codes)


def message_index_stats() -> dict[str, int]:
    """Return the size of the message index: files, rows, distinct messages, array bytes."""
    with _message_lock:
        indexes = [i for i in _message_index.values() if i is not None]
        return {
            "files": len(indexes),
            "rows": _message_index_rows,
            "distinct_messages": len(_message_values),
            "array_bytes": sum(i.nbytes for i in indexes),
        }


def reset_message_index() -> None:
    """Forget every message index and the dictionary (benchmarks, tests; not while searching)."""
    global _message_index_rows, _message_series
    with _message_lock:
        _index_queue.clear()
    wait_for_message_index()  # an index being built holds codes of the dictionary dropped here
    with _message_lock:
        _message_index.clear()
        _message_index_rows = 0
        _message_codes.clear()
        _message_values.clear()
        _message_series = None
