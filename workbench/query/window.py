"""Window counts: how many matching events each alert rule saw in ``(now - window, now]``.

All rules of one evaluation are answered by one read of the recent slice of the
lake (the partitions and files overlapping the longest window, only the columns
rules filter on): the specs become a small frame, exploded by level and joined
to the slice on ``(service, level)``; each joined row is kept when it falls in
its own rule's window (and contains the rule's message text), then counted per
rule key. Message filters are literal substrings: ``message_contains`` case-sensitive
(threshold rules), ``match`` case-insensitive (match rules). The rule kinds
(:mod:`workbench.query.kinds`) pass the slice they read themselves as ``recent``,
so a tick reads the lake once for every kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from workbench.lake import reader
from workbench.lake.schema import ERROR_LEVELS

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """What one rule counts: events of ``service`` at ``levels`` in the window, message filter optional."""

    key: str
    service: str
    window: timedelta
    levels: tuple[str, ...] = ERROR_LEVELS
    message_contains: str | None = None
    match: str | None = None


def _specs_frame(specs: Sequence[WindowSpec], now_us: int) -> pl.DataFrame:
    """Return one row per (spec, level): key, service, level, lower bound (µs, exclusive), text."""
    return pl.DataFrame(
        {
            "key": [s.key for s in specs],
            "service": [s.service for s in specs],
            "level": [list(s.levels) for s in specs],
            "after_us": [now_us - s.window // timedelta(microseconds=1) for s in specs],
            "contains": [s.message_contains or None for s in specs],
            "folded": [s.match.lower() if s.match else None for s in specs],
        },
        schema={
            "key": pl.String,
            "service": pl.String,
            "level": pl.List(pl.String),
            "after_us": pl.Int64,
            "contains": pl.String,
            "folded": pl.String,
        },
    ).explode("level")


def window_counts(
    lake_url: str,
    specs: Sequence[WindowSpec],
    now: datetime,
    *,
    recent: pl.DataFrame | None = None,
) -> dict[str, int]:
    """Return ``{spec.key: count}`` for every spec, reading the lake once for all of them.

    ``recent``: the slice already read by the caller (it must cover every spec's
    service, levels and window, with the message when a spec filters on it).
    """
    if not specs:
        return {}
    now_us = (now - _EPOCH) // timedelta(microseconds=1)
    start = now - max(s.window for s in specs)
    services = sorted({s.service for s in specs})
    levels = sorted({lv for s in specs for lv in s.levels})
    with_text = any(s.message_contains for s in specs)
    with_folded = any(s.match for s in specs)
    columns = ["service", "level", "timestamp"] + (["message"] if with_text or with_folded else [])
    lazy = (
        recent.lazy()
        if recent is not None
        else reader.scan(lake_url, start, now).filter(
            (pl.col("timestamp") > start)
            & (pl.col("timestamp") <= now)
            & pl.col("service").is_in(services)
            & pl.col("level").is_in(levels)
        )
    )
    sliced = lazy.select(columns).with_columns(pl.col("timestamp").dt.epoch("us").alias("ts_us"))
    joined = _specs_frame(specs, now_us).lazy().join(sliced, on=["service", "level"], how="inner")
    keep = pl.col("ts_us") > pl.col("after_us")
    if with_text:
        keep &= pl.col("contains").is_null() | pl.col("message").str.contains(
            pl.col("contains").fill_null(""), literal=True
        )
    if with_folded:
        keep &= pl.col("folded").is_null() | pl.col("message").str.to_lowercase().str.contains(
            pl.col("folded").fill_null(""), literal=True
        )
    counted = joined.filter(keep).group_by("key").len().collect()
    counts = {s.key: 0 for s in specs}
    counts.update(dict(counted.iter_rows()))
    return counts
