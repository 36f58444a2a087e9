"""Window counts: how many matching events each alert rule saw in ``(now - window, now]``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from workbench.lake import reader
from workbench.lake.schema import ERROR_LEVELS


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """What one rule counts: events of ``service`` at ``levels`` in the window, message filter optional."""

    key: str
    service: str
    window: timedelta
    levels: tuple[str, ...] = ERROR_LEVELS
    message_contains: str | None = None


def window_counts(lake_url: str, specs: Sequence[WindowSpec], now: datetime) -> dict[str, int]:
    """Return ``{spec.key: count}`` for every spec, reading the lake once for all of them."""
    if not specs:
        return {}
    start = now - max(s.window for s in specs)
    services = sorted({s.service for s in specs})
    levels = sorted({lv for s in specs for lv in s.levels})
    recent = (
        reader.scan(lake_url, start, now)
        .filter(
            (pl.col("timestamp") > start)
            & (pl.col("timestamp") <= now)
            & pl.col("service").is_in(services)
            & pl.col("level").is_in(levels)
        )
        .select("service", "level", "timestamp", "message")
        .collect()
    )
    counts: dict[str, int] = {}
    for s in specs:
        cond = (
            (pl.col("service") == s.service)
            & pl.col("level").is_in(list(s.levels))
            & (pl.col("timestamp") > now - s.window)
        )
        if s.message_contains:
            cond &= pl.col("message").str.contains(s.message_contains, literal=True)
        counts[s.key] = recent.filter(cond).height
    return counts
