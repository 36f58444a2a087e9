"""The search both stores answer: one :class:`SearchQuery` in, one :class:`SearchResult` out.

The lake (:func:`workbench.query.search.search`) and Elasticsearch
(:func:`workbench.mirror.search.search_elastic`) take the same query and give the same
page: same validation (:meth:`SearchQuery.plan`), same newest-first order (``timestamp``
descending, ``id`` as the tie-break), same cursors. The dispatcher that chooses between
them is :mod:`workbench.explorer`. This module imports neither store's client: the mirror
imports it, and ``workbench.query`` never imports the mirror.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from workbench.errors import ValidationError
from workbench.lake.schema import LEVEL_ALIASES, LEVELS, level_of

MAX_LIMIT = 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_META_KEY = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")


def epoch_us(moment: datetime) -> int:
    """Return ``moment`` as whole microseconds since 1970-01-01 UTC (the lake's and ES's sort key)."""
    return (moment - EPOCH) // timedelta(microseconds=1)


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
            preds.append(text_predicate(self.text))
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
    us = epoch_us(timestamp)
    raw = json.dumps([us, event_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Return the ``(timestamp, id)`` a cursor points at; ValidationError naming ``cursor`` if bad."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        us, event_id = json.loads(raw)
        if not isinstance(us, int) or not isinstance(event_id, str):
            raise ValueError("wrong types")
        return EPOCH + timedelta(microseconds=us), event_id
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


def text_predicate(text: str) -> pl.Expr:
    """Return the predicate "``message`` contains ``text``, ignoring case" (literal, not regex)."""
    # (?i) + escaped literal: a case-insensitive substring without lower-casing every row.
    return pl.col("message").str.contains("(?i)" + re.escape(text))


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """A validated query: the filter, the cursor's point (or None) and the row offset."""

    filter: SearchFilter
    after: tuple[datetime, str] | None
    offset: int
    limit: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchQuery:
    """One search: filters, and a page by offset (``page``/``limit``) or after a ``cursor``.

    ``text`` is a case-insensitive substring of the message; ``meta`` maps a key (dots
    for nesting) to a value the JSON value at that key must equal; ``levels`` take the
    ingest spellings (``warning``, ``critical``, ``err``); ``start``/``end`` are inclusive
    and must be timezone-aware. A ``cursor`` (from a previous result) continues after that
    page's last event and ignores ``page``.
    """

    service: str | None = None
    levels: Sequence[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    text: str | None = None
    meta: Mapping[str, Any] | None = None
    page: int = 1
    limit: int = 20
    cursor: str | None = None

    def plan(self) -> SearchPlan:
        """Return the validated :class:`SearchPlan`; ValidationError naming each bad field."""
        details: dict[str, list[str]] = {}
        if not 1 <= self.limit <= MAX_LIMIT:
            details["limit"] = [f"must be between 1 and {MAX_LIMIT}"]
        if self.page < 1:
            details["page"] = ["must be 1 or more"]
        if details:
            raise ValidationError("Invalid query", details)
        flt = build_filter(
            service=self.service,
            levels=self.levels,
            start=self.start,
            end=self.end,
            text=self.text,
            meta=self.meta,
        )
        after = decode_cursor(self.cursor) if self.cursor else None
        offset = 0 if after else (self.page - 1) * self.limit
        return SearchPlan(filter=flt, after=after, offset=offset, limit=self.limit)
