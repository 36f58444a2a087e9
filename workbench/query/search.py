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

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

import numpy as np
import polars as pl

from workbench.errors import ValidationError
from workbench.lake import message_index, reader
from workbench.lake.schema import LEVEL_ALIASES, LEVELS, level_of

MAX_LIMIT = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_META_KEY = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One event as search returns it; ``meta`` is the decoded JSON object or None."""

    id: str
    service: str
    level: str
    message: str
    timestamp: datetime
    meta: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A page: ``total`` matching events, the ``logs`` of the page, the cursor of the next page."""

    total: int
    logs: list[LogRecord]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """The validated filters of a search (levels lower case, meta values as JSON-path text)."""

    service: str | None = None
    levels: tuple[str, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None
    text: str | None = None
    meta: tuple[tuple[str, str], ...] = ()

    def row_predicate(self) -> pl.Expr | None:
        """Return the polars predicate of every filter except the time range, None when none."""
        preds: list[pl.Expr] = []
        if self.service is not None:
            preds.append(pl.col("service") == self.service)
        if self.levels is not None:
            preds.append(pl.col("level").is_in(list(self.levels)))
        if self.text:
            preds.append(_text_predicate(self.text))
        for key, value in self.meta:
            path = "$" + "".join(f"['{part}']" for part in key.split("."))
            preds.append(pl.col("meta").str.json_path_match(path) == value)
        if not preds:
            return None
        out = preds[0]
        for p in preds[1:]:
            out = out & p
        return out

    def time_predicate(self) -> pl.Expr | None:
        """Return the predicate of the inclusive range ``[start, end]``, None when unbounded."""
        preds = []
        if self.start is not None:
            preds.append(pl.col("timestamp") >= self.start)
        if self.end is not None:
            preds.append(pl.col("timestamp") <= self.end)
        if not preds:
            return None
        return preds[0] & preds[1] if len(preds) == 2 else preds[0]


def encode_cursor(timestamp: datetime, event_id: str) -> str:
    """Return the opaque cursor pointing just after ``(timestamp, id)`` in newest-first order."""
    us = (timestamp - _EPOCH) // timedelta(microseconds=1)
    raw = json.dumps([us, event_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Return the ``(timestamp, id)`` a cursor points at; ValidationError naming ``cursor`` if bad."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        us, event_id = json.loads(raw)
        if not isinstance(us, int) or not isinstance(event_id, str):
            raise ValueError("wrong types")
        return _EPOCH + timedelta(microseconds=us), event_id
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValidationError(
            "Invalid cursor", {"cursor": ["not a cursor returned by a previous page"]}
        ) from exc


def _meta_text(value: Any) -> str:
    # json_path_match gives strings unquoted and other scalars as JSON text.
    return value if isinstance(value, str) else json.dumps(value)


def build_filter(
    *,
    service: str | None = None,
    levels: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    text: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> SearchFilter:
    """Return the validated :class:`SearchFilter`; ValidationError naming each bad field."""
    details: dict[str, list[str]] = {}
    norm_levels: tuple[str, ...] | None = None
    if levels:
        named = {lv.strip().lower() for lv in levels if lv.strip()}
        bad = sorted(lv for lv in named if level_of(lv) is None)
        if bad:
            details["level"] = [
                f"unknown level(s) {bad}; allowed: {', '.join(LEVELS)} "
                f"(also {', '.join(LEVEL_ALIASES)})"
            ]
        norm_levels = tuple(sorted({lv for name in named if (lv := level_of(name))}))
        if not norm_levels:
            norm_levels = None
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.tzinfo is None:
            details.setdefault(name, []).append("must carry a time zone (UTC offset)")
    if start and end and start.tzinfo and end.tzinfo and start > end:
        details.setdefault("from", []).append("must not be after 'to'")
    meta_pairs: list[tuple[str, str]] = []
    for key, value in (meta or {}).items():
        if not _META_KEY.match(key):
            details.setdefault("meta", []).append(
                f"key {key!r}: letters, digits, '_', '-' and '.' (nesting) only"
            )
            continue
        meta_pairs.append((key, _meta_text(value)))
    if details:
        raise ValidationError("Invalid query", details)
    return SearchFilter(
        service=service or None,
        levels=norm_levels,
        start=start.astimezone(UTC) if start else None,
        end=end.astimezone(UTC) if end else None,
        text=text or None,
        meta=tuple(meta_pairs),
    )


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


def _text_predicate(text: str) -> pl.Expr:
    """Return the predicate "``message`` contains ``text``, ignoring case" (literal, not regex)."""
    # (?i) + escaped literal: a case-insensitive substring without lower-casing every row.
    return pl.col("message").str.contains("(?i)" + re.escape(text))


def _matching_messages(text: str) -> Any:
    """Return a numpy mask over the process-wide message dictionary: which contain ``text``."""
    messages = message_index.message_dictionary().to_frame()
    return messages.select(_text_predicate(text).fill_null(False)).to_series().to_numpy()


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


def count(lake_url: str, flt: SearchFilter) -> int:
    """Return how many events match ``flt`` (time range inclusive)."""
    files = reader.file_stats(lake_url, flt.start, flt.end)
    lo = (flt.start - _EPOCH) // timedelta(microseconds=1) if flt.start else None
    hi = (flt.end - _EPOCH) // timedelta(microseconds=1) if flt.end else None
    only_keys = not flt.text and not flt.meta
    total = 0
    to_scan: list[str] = []
    indexed: list[message_index.MessageIndex] = []
    for f in files:
        inside = (
            f.min_ts_us is not None
            and f.max_ts_us is not None
            and (lo is None or f.min_ts_us >= lo)
            and (hi is None or f.max_ts_us <= hi)
        )
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


def search(
    lake_url: str,
    *,
    service: str | None = None,
    levels: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    text: str | None = None,
    meta: Mapping[str, Any] | None = None,
    page: int = 1,
    limit: int = 20,
    cursor: str | None = None,
) -> SearchResult:
    """Return one newest-first page of matching events, the total, and the next page's cursor.

    ``page``/``limit`` page by offset as the original API; ``cursor`` (from a
    previous result) continues after that page's last event and ignores ``page``.
    ``text`` is a case-insensitive substring of the message; ``meta`` maps a key
    (dots for nesting) to a value the JSON value at that key must equal.
    """
    details: dict[str, list[str]] = {}
    if not 1 <= limit <= MAX_LIMIT:
        details["limit"] = [f"must be between 1 and {MAX_LIMIT}"]
    if page < 1:
        details["page"] = ["must be 1 or more"]
    if details:
        raise ValidationError("Invalid query", details)
    flt = build_filter(service=service, levels=levels, start=start, end=end, text=text, meta=meta)
    after = decode_cursor(cursor) if cursor else None
    offset = 0 if after else (page - 1) * limit
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
    # Newest partition first; stop once the newest `need` rows are certainly collected.
    for _, day_files in groupby(
        sorted(files, key=lambda f: f.day, reverse=True), key=lambda f: f.day
    ):
        lf = reader.scan_files([f.path for f in day_files])
        for pred in preds:
            lf = lf.filter(pred)
        # One row beyond the page tells whether a next page exists.
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
    total = count(lake_url, flt)
    logs = [_to_record(r) for r in rows]
    next_cursor = None
    if logs and have > need:
        next_cursor = encode_cursor(logs[-1].timestamp, logs[-1].id)
    return SearchResult(total=total, logs=logs, next_cursor=next_cursor)
