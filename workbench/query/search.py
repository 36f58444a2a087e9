"""Log search: filtered, newest-first pages of events with a total and a cursor for deep paging.

Order is ``timestamp`` descending, ``id`` descending as the tie-break, so a page
boundary is a point ``(timestamp, id)`` and a cursor is that point, encoded.

How it stays fast on a large lake:

* partitions and files outside ``[start, end]`` (or newer than the cursor) are
  never opened (``reader.file_stats`` prunes by partition and footer bounds);
* the page walks partitions newest first and stops as soon as it has the
  ``offset + limit`` newest rows it needs (events of a newer partition are all
  newer than those of an older one);
* the total counts over the filter columns only; files wholly inside the time
  range are counted from per-file ``(service, level)`` counts cached on first
  sight (files are immutable), so only boundary files and text/meta filters scan;
* a text total over such files matches the text against the distinct messages
  once (``message_index.message_index``: each file's rows as message codes, built on
  first sight) instead of against every row; the same predicate decides, so the
  answers are those of a scan. Meta filters and boundary files still scan.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

import numpy as np
import polars as pl

from workbench.lake import message_index, reader
from workbench.query.types import (
    LogRecord,
    SearchFilter,
    SearchQuery,
    SearchResult,
    encode_cursor,
    epoch_us,
    text_predicate,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _to_record(row: dict[str, Any]) -> LogRecord:
    meta = row["meta"]
    return LogRecord(
        id=row["id"],
        service=row["service"],
        level=row["level"],
        message=row["message"],
        timestamp=row["timestamp"].astimezone(UTC),
        meta=json.loads(meta) if meta else None,
    )


def _matching_messages(text: str) -> Any:
    """Return a numpy mask over the process-wide message dictionary: which contain ``text``."""
    messages = message_index.message_dictionary().to_frame()
    return messages.select(text_predicate(text).fill_null(False)).to_series().to_numpy()


def _count_indexed(index: message_index.MessageIndex, matched: Any, flt: SearchFilter) -> int:
    """Return how many rows of an indexed file match ``flt`` (text, service, levels; no meta)."""
    file_matched = matched[index.dict_codes]
    if flt.service is None and flt.levels is None:
        return int(index.counts[file_matched].sum())
    total = 0
    for (svc, lv), start, stop in index.keys:
        if (flt.service is None or svc == flt.service) and (flt.levels is None or lv in flt.levels):
            total += int(np.count_nonzero(file_matched[index.codes[start:stop]]))
    return total


def count(lake_url: str, flt: SearchFilter, files: list[reader.FileStat] | None = None) -> int:
    """Return how many events match ``flt`` (time range inclusive).

    ``files``: ``reader.file_stats`` of ``flt``'s range when the caller has listed it already
    (on object storage a listing is a request per partition).
    """
    if files is None:
        files = reader.file_stats(lake_url, flt.start, flt.end)
    lo = epoch_us(flt.start) if flt.start else None
    hi = epoch_us(flt.end) if flt.end else None
    only_keys = not flt.text and not flt.meta
    total = 0
    to_scan: list[str] = []
    indexed: list[message_index.MessageIndex] = []

    def wholly_inside(f: reader.FileStat) -> bool:
        return (
            f.min_ts_us is not None
            and f.max_ts_us is not None
            and (lo is None or f.min_ts_us >= lo)
            and (hi is None or f.max_ts_us <= hi)
        )

    if only_keys and (flt.service is not None or flt.levels is not None) and files:
        # On object storage the counts of files not seen yet are fetched several at once.
        counted = [f for f in files if wholly_inside(f)]
        reader.map_remote(reader.key_counts, counted, remote=not files[0].path.startswith("/"))
    for f in files:
        inside = wholly_inside(f)
        if inside and flt.service is None and flt.levels is None and only_keys:
            total += f.num_rows
        elif inside and only_keys:
            counts = reader.key_counts(f)
            total += sum(
                n
                for (svc, lv), n in counts.items()
                if (flt.service is None or svc == flt.service)
                and (flt.levels is None or lv in flt.levels)
            )
        elif (
            inside
            and flt.text
            and not flt.meta
            and (index := message_index.message_index(f, wait=False)) is not None
        ):
            indexed.append(index)
        else:
            to_scan.append(f.path)
    if indexed and flt.text:
        # Once for all files: which distinct messages contain the text.
        matched = _matching_messages(flt.text)
        total += sum(_count_indexed(index, matched, flt) for index in indexed)
    if to_scan:
        lf = reader.scan_files(to_scan)
        for pred in (flt.time_predicate(), flt.row_predicate()):
            if pred is not None:
                lf = lf.filter(pred)
        total += int(lf.select(pl.len()).collect().item())
    return total


def newest_bound(files: list[reader.FileStat], rows: int, upper_us: int | None) -> int | None:
    """Return a time (µs) such that the files hold at least ``rows`` rows at or after it.

    From the footers' row-group statistics: row groups wholly at or before ``upper_us``
    (all when None), taken by their oldest row, newest first, until they hold ``rows``
    rows; the bound is the oldest row of the last one taken. None when the files have
    fewer such rows or a file lacks statistics. A page filtered to ``timestamp >= bound``
    then reads only the row groups reaching that far (polars prunes the others by their
    statistics); if the filters leave fewer than ``rows`` rows there, the caller reads all.
    """
    groups: list[tuple[int, int, int]] = []
    for f in files:
        if f.num_rows and not f.row_groups:
            return None
        groups.extend(g for g in f.row_groups if upper_us is None or g[1] <= upper_us)
    groups.sort(key=lambda g: g[0], reverse=True)
    have = 0
    for oldest, _, n in groups:
        have += n
        if have >= rows:
            return oldest
    return None


def search(lake_url: str, query: SearchQuery) -> SearchResult:
    """Return one newest-first page of matching events, the total, and the next page's cursor.

    ``query.page``/``limit`` page by offset as the original API; ``query.cursor`` (from a
    previous result, the lake's or Elasticsearch's) continues after that page's last event.
    """
    plan = query.plan()
    flt, after, offset, limit = plan.filter, plan.after, plan.offset, plan.limit
    need = offset + limit

    page_end = flt.end
    if after is not None and (page_end is None or after[0] < page_end):
        page_end = after[0]
    files = reader.file_stats(lake_url, flt.start, page_end)
    preds = [p for p in (flt.time_predicate(), flt.row_predicate()) if p is not None]
    if after is not None:
        ts, event_id = after
        preds.append(
            (pl.col("timestamp") < ts) | ((pl.col("timestamp") == ts) & (pl.col("id") < event_id))
        )

    found: list[pl.DataFrame] = []
    have = 0
    upper_us = epoch_us(page_end) if page_end is not None else None
    # Newest partition first; stop once the newest `need` rows are certainly collected.
    for _, group in groupby(sorted(files, key=lambda f: f.day, reverse=True), key=lambda f: f.day):
        day_files = list(group)
        lf = reader.scan_files([f.path for f in day_files])
        for pred in preds:
            lf = lf.filter(pred)
        # One row beyond the page tells whether a next page exists.
        part: pl.DataFrame | None = None
        bound = newest_bound(day_files, need + 1, upper_us)
        if bound is not None:
            # Enough rows at or after `bound` once matched: no older row can be in the page.
            since = _EPOCH + timedelta(microseconds=bound)
            recent = lf.filter(pl.col("timestamp") >= since)
            part = recent.top_k(need + 1, by=["timestamp", "id"]).collect()
            if part.height <= need:
                part = None  # the filters left too few there: read the whole day
        if part is None:
            part = lf.top_k(need + 1, by=["timestamp", "id"]).collect()
        if part.height:
            found.append(part)
            have += part.height
        if have > need:
            break
    rows: list[dict[str, Any]] = []
    if found:
        rows = (
            pl.concat(found)
            .sort(["timestamp", "id"], descending=True)
            .slice(offset, limit)
            .to_dicts()
        )
    total = count(lake_url, flt, files if page_end == flt.end else None)
    logs = [_to_record(r) for r in rows]
    next_cursor = None
    if logs and have > need:
        next_cursor = encode_cursor(logs[-1].timestamp, logs[-1].id)
    return SearchResult(total=total, logs=logs, next_cursor=next_cursor)
