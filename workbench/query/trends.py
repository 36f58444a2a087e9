"""Error trends: counts of ``error`` + ``fatal`` events per time bucket, every bucket present.

The bucket grid is pure (:func:`bucket_grid`, from ``now`` and a range name); the
lake read (:func:`error_trend`) only counts events into it. Buckets are aligned
to their size in UTC (minutes, 5 minutes, hours, 6 hours, days from midnight;
weeks from Monday 00:00 as ISO weeks and Elasticsearch's ``1w`` do). A bucket is
labelled by its start. The range covers events in ``(now - span, now]``, so the
first bucket may be partial; empty buckets are 0 (defect D5 of the original).
Months are fixed lengths: ``3m`` = 90 days, ``6m`` = 180 days, ``1y`` = 365 days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from workbench.errors import ValidationError
from workbench.lake import committed, facts, reader
from workbench.lake.schema import ERROR_LEVELS

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MONDAY = datetime(1970, 1, 5, tzinfo=UTC)  # the first Monday after the epoch

#: range name -> (span, bucket size), as the original ``getErrorTrends``.
RANGES: dict[str, tuple[timedelta, timedelta]] = {
    "1h": (timedelta(hours=1), timedelta(minutes=1)),
    "24h": (timedelta(hours=24), timedelta(minutes=5)),
    "7d": (timedelta(days=7), timedelta(hours=1)),
    "30d": (timedelta(days=30), timedelta(hours=6)),
    "3m": (timedelta(days=90), timedelta(days=1)),
    "6m": (timedelta(days=180), timedelta(days=1)),
    "1y": (timedelta(days=365), timedelta(weeks=1)),
}


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One bucket: its start (UTC) and the number of error/fatal events in it."""

    time: datetime
    count: int


@dataclass(frozen=True, slots=True)
class BucketGrid:
    """The buckets of a trend: first start, size, how many; events counted in ``(start, end]``."""

    origin: datetime
    size: timedelta
    n: int
    start: datetime
    end: datetime

    def times(self) -> list[datetime]:
        """Return every bucket start, oldest first."""
        return [self.origin + i * self.size for i in range(self.n)]


def parse_range(range_: str) -> tuple[timedelta, timedelta]:
    """Return ``(span, bucket)`` of a range name; ValidationError naming ``range`` if unknown."""
    try:
        return RANGES[range_]
    except KeyError:
        raise ValidationError(
            "Invalid range",
            {"range": [f"unknown range {range_!r}; allowed: {', '.join(RANGES)}"]},
        ) from None


def floor_to(t: datetime, size: timedelta) -> datetime:
    """Return the start of the ``size`` bucket holding ``t`` (weeks start Monday, UTC)."""
    origin = _MONDAY if size == timedelta(weeks=1) else _EPOCH
    return origin + ((t.astimezone(UTC) - origin) // size) * size


def bucket_grid(now: datetime, range_: str) -> BucketGrid:
    """Return the aligned bucket grid covering ``(now - span, now]`` for a range name."""
    if now.tzinfo is None:
        raise ValidationError("Invalid time", {"now": ["must carry a time zone"]})
    span, size = parse_range(range_)
    now = now.astimezone(UTC)
    start = now - span
    origin = floor_to(start, size)
    last = floor_to(now, size)
    return BucketGrid(origin=origin, size=size, n=(last - origin) // size + 1, start=start, end=now)


def fill(grid: BucketGrid, counts: dict[int, int]) -> list[TrendPoint]:
    """Return one point per bucket of ``grid`` from ``{bucket index: count}``, zeros for gaps."""
    return [TrendPoint(t, counts.get(i, 0)) for i, t in enumerate(grid.times())]


_MINUTE_US = committed.MINUTE_US
_rollups: dict[tuple[str, int, int | None, int | None], pl.DataFrame] = {}
_ROLLUP_FILES_MAX = 100_000


def _error_minutes(stat: reader.FileStat) -> pl.DataFrame:
    """Return ``service, minute, n``: error+fatal counts per minute of one file, cached.

    Committed files never change, so this rollup is computed once per file (and kept on
    disk for later processes, ``workbench.lake.facts``); a trend then sums a few hundred
    thousand rollup rows instead of scanning the lake.
    """
    key = (stat.path, stat.num_rows, stat.min_ts_us, stat.max_ts_us)
    hit = _rollups.get(key)
    if hit is not None:
        return hit
    frame = facts.read_frame(stat.path, committed.ERRMIN_KIND, reader.fact_version(stat))
    if frame is None:
        frame = committed.error_minutes_of(reader.scan_files([stat.path]))
        facts.write_frame(stat.path, committed.ERRMIN_KIND, reader.fact_version(stat), frame)
    if len(_rollups) > _ROLLUP_FILES_MAX:
        _rollups.clear()
    _rollups[key] = frame
    return frame


def error_trend(
    lake_url: str, *, service: str | None = None, range: str = "24h", now: datetime
) -> list[TrendPoint]:
    """Return error+fatal counts per bucket of ``range`` ending at ``now``, for a service or all.

    Files wholly inside ``(start, end]`` are counted from their cached per-minute
    rollup (every bucket size is a whole number of minutes on a minute boundary);
    files straddling either end are scanned row by row.
    """
    grid = bucket_grid(now, range)
    size_us = grid.size // timedelta(microseconds=1)
    origin_us = (grid.origin - _EPOCH) // timedelta(microseconds=1)
    start_us = (grid.start - _EPOCH) // timedelta(microseconds=1)
    end_us = (grid.end - _EPOCH) // timedelta(microseconds=1)
    within: list[reader.FileStat] = []
    straddling: list[str] = []
    for stat in reader.file_stats(lake_url, grid.start, grid.end):
        lo, hi = stat.min_ts_us, stat.max_ts_us
        if lo is not None and hi is not None and lo > start_us and hi <= end_us:
            within.append(stat)
        else:
            straddling.append(stat.path)
    remote = bool(within) and not within[0].path.startswith("/")
    inside = reader.map_remote(_error_minutes, within, remote=remote)
    counts: dict[int, int] = {}
    if inside:
        rolled = pl.concat(inside).lazy()
        if service:
            rolled = rolled.filter(pl.col("service") == service)
        df = (
            rolled.group_by(((pl.col("minute") * _MINUTE_US - origin_us) // size_us).alias("b"))
            .agg(pl.col("n").sum())
            .collect()
        )
        counts.update(dict(df.iter_rows()))
    if straddling:
        pred = (
            pl.col("level").is_in(list(ERROR_LEVELS))
            & (pl.col("timestamp") > grid.start)
            & (pl.col("timestamp") <= grid.end)
        )
        if service:
            pred = (pl.col("service") == service) & pred
        df = (
            reader.scan_files(straddling)
            .filter(pred)
            .select(((pl.col("timestamp").dt.epoch("us") - origin_us) // size_us).alias("b"))
            .group_by("b")
            .len()
            .collect()
        )
        for b, n in df.iter_rows():
            counts[b] = counts.get(b, 0) + n
    return fill(grid, counts)
