"""Counts for every rule kind at one tick: one read of the recent slice, baselines cached per day.

:func:`kind_counts` answers all rules of a tick (``docs/alerting.md``, "Rule kinds"):

* **the window pass**: one read of the lake's recent slice (the longest window, the
  services and levels any rule needs; the message only when a rule filters or folds
  it); threshold, match, ratio, absence and anomaly counts come from one join of the
  rules onto that slice (:mod:`workbench.query.window`), new patterns from the same
  slice folded by :func:`workbench.patterns.pattern_expr`;
* **baselines** (``new_pattern``, ``anomaly``, and the "seen" lookback of
  ``absence``) come from per-UTC-day summaries of complete past days: events per
  (service, level, minute) and the distinct (service, level, pattern). A day's
  summary is computed once, kept in this process and, with ``cache_dir``, on disk
  (the scheduler's ticks run in fresh kernels), keyed by the day's visible files, so
  a compaction or a late file recomputes it and a tick never rereads past days.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from workbench.lake import reader
from workbench.lake.schema import ERROR_LEVELS
from workbench.patterns import pattern_expr
from workbench.query.window import WindowSpec, window_counts

ALL_LEVELS: tuple[str, ...] = ("debug", "info", "warn", "error", "fatal")
DEFAULT_BASELINE_DAYS = 7
#: ``absence``: a service with no event today nor on these many UTC days before is "never seen".
ABSENCE_LOOKBACK_DAYS = 7
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_US = 60_000_000
_DAY_MIN = 1440
_TOTAL = "\x00total"  # suffix of the all-levels count key of a ratio rule


@dataclass(frozen=True, slots=True)
class KindCounts:
    """What the lake holds for one rule at one tick.

    ``count``: events of the rule's levels in the window (with the message text for
    ``threshold``/``match`` rules that have one); ``total``: events of any level of
    the service in the window (``ratio``, ``absence``); ``seen``: the service has an
    event in the ``absence`` lookback; ``new_patterns``: ``{pattern: count}`` in the
    window of patterns absent from the baseline (``new_pattern``); ``baseline``: the
    count of the same window on each available baseline day (``anomaly``);
    ``baseline_days``: how many baseline days the lake had (``new_pattern``, ``anomaly``).
    """

    count: int = 0
    total: int = 0
    seen: bool = True
    new_patterns: dict[str, int] = field(default_factory=dict)
    baseline: tuple[int, ...] = ()
    baseline_days: int = 0


@dataclass(frozen=True, slots=True)
class KindSpec:
    """What one rule needs from the lake (see :class:`workbench.alerting.decide.RuleState`)."""

    key: str
    kind: str
    service: str
    window: timedelta
    levels: tuple[str, ...] = ERROR_LEVELS
    message_contains: str | None = None
    match: str | None = None
    baseline_days: int | None = None

    @property
    def days(self) -> int:
        """Return the baseline days asked for (the default when unset)."""
        return self.baseline_days or DEFAULT_BASELINE_DAYS


@dataclass
class _DayCache:
    """Per-day summaries in this process: ``{(lake, day, what, signature): frame}``."""

    frames: dict[tuple[str, date, str, str], pl.DataFrame] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_cache = _DayCache()
_CACHE_MAX = 512


def _minute_label(col: str = "timestamp") -> pl.Expr:
    """Return the minute an event counts in: ``m`` for ``(m - 1 min, m]`` (windows are ``(a, b]``)."""
    return ((pl.col(col).dt.epoch("us") - 1) // _MIN_US + 1).alias("label")


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def _signature(lake_url: str, day: date) -> tuple[str, list[str]]:
    """Return a digest of the day's visible files (path, rows) and the paths."""
    start, end = _day_bounds(day)
    stats = [s for s in reader.file_stats(lake_url, start, end) if s.day == day]
    paths = sorted(s.path for s in stats)
    raw = "\n".join(f"{s.path}:{s.num_rows}" for s in sorted(stats, key=lambda s: s.path))
    return hashlib.sha1(raw.encode()).hexdigest()[:16], paths


def _compute(paths: list[str], day: date, what: str) -> pl.DataFrame:
    start, end = _day_bounds(day)
    events = reader.scan_files(paths).filter(
        (pl.col("timestamp") >= start) & (pl.col("timestamp") < end)
    )
    if what == "minutes":
        return (
            events.group_by("service", "level", _minute_label())
            .agg(pl.len().cast(pl.Int64).alias("n"))
            .collect()
        )
    # Patterns: fold each distinct message once (messages repeat a lot).
    return (
        events.select("service", "level", "message")
        .unique()
        .with_columns(pattern=pattern_expr("message"))
        .select("service", "level", "pattern")
        .unique()
        .collect()
    )


#: Day summaries on disk older than this are deleted (beyond any baseline or lookback).
KEEP_DAYS = 35


def _prune(kept: Path, day: date, what: str) -> None:
    """Delete the summaries ``kept`` replaces (same day, older files) and those of old days."""
    oldest = day - timedelta(days=KEEP_DAYS)
    for other in kept.parent.glob("*.parquet"):
        if other == kept:
            continue
        try:
            other_day = date.fromisoformat(other.name[:10])
        except ValueError:
            continue
        if (other_day == day and other.name.startswith(f"{day.isoformat()}-{what}-")) or (
            other_day < oldest
        ):
            other.unlink(missing_ok=True)


def day_summary(
    lake_url: str,
    day: date,
    what: str,
    cache_dir: Path | None = None,
    signature: tuple[str, list[str]] | None = None,
) -> pl.DataFrame:
    """Return the ``what`` summary (``minutes`` or ``patterns``) of the UTC ``day``, cached.

    ``minutes``: ``service, level, label, n`` (events per minute ``(label - 1, label]``,
    label in minutes since the epoch); ``patterns``: distinct ``service, level, pattern``.
    ``signature``: the day's files as :func:`_signature` lists them (when already known).
    """
    digest, paths = signature or _signature(lake_url, day)
    key = (lake_url, day, what, digest)
    hit = _cache.frames.get(key)
    if hit is not None:
        return hit
    path = None
    if cache_dir is not None:
        lake_id = hashlib.sha1(lake_url.encode()).hexdigest()[:12]
        path = cache_dir / lake_id / f"{day.isoformat()}-{what}-{digest}.parquet"
    if path is not None and path.exists():
        frame = pl.read_parquet(path)
    else:
        frame = _compute(paths, day, what)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            frame.write_parquet(tmp)
            os.replace(tmp, path)
            _prune(path, day, what)
    with _cache.lock:
        if len(_cache.frames) > _CACHE_MAX:
            _cache.frames.clear()
        _cache.frames[key] = frame
    return frame


class _Days:
    """The past days of one tick: each day's file signature listed once, summaries by day."""

    def __init__(self, lake_url: str, cache_dir: Path | None) -> None:
        self.lake_url = lake_url
        self.cache_dir = cache_dir
        self._signatures: dict[date, tuple[str, list[str]]] = {}

    def signature(self, day: date) -> tuple[str, list[str]]:
        hit = self._signatures.get(day)
        if hit is None:
            hit = self._signatures[day] = _signature(self.lake_url, day)
        return hit

    def key(self, days: Sequence[date]) -> tuple[str, tuple[tuple[date, str], ...]]:
        """Return a cache key of derived baselines: the lake and each day's digest."""
        return self.lake_url, tuple((d, self.signature(d)[0]) for d in days)

    def summary(self, day: date, what: str) -> pl.DataFrame:
        return day_summary(self.lake_url, day, what, self.cache_dir, self.signature(day))


#: Baselines derived from day summaries (dense minute sums, pattern sets, seen services),
#: keyed by what they are and the digests of the days they come from.
_derived: dict[tuple[object, ...], object] = {}
_DERIVED_MAX = 64


def _remember(key: tuple[object, ...], value: object) -> None:
    with _cache.lock:
        if len(_derived) > _DERIVED_MAX:
            _derived.clear()
        _derived[key] = value


def _window_specs(specs: Sequence[KindSpec]) -> list[WindowSpec]:
    out: list[WindowSpec] = []
    for s in specs:
        if s.kind == "new_pattern":
            continue
        if s.kind == "absence":
            out.append(WindowSpec(s.key, s.service, s.window, ALL_LEVELS))
            continue
        text = s.message_contains if s.kind == "threshold" else None
        folded = s.match if s.kind == "match" else None
        out.append(WindowSpec(s.key, s.service, s.window, s.levels, text, folded))
        if s.kind == "ratio":
            out.append(WindowSpec(s.key + _TOTAL, s.service, s.window, ALL_LEVELS))
    return out


def kind_counts(
    lake_url: str,
    specs: Sequence[KindSpec],
    now: datetime,
    *,
    cache_dir: Path | None = None,
) -> dict[str, KindCounts]:
    """Return ``{spec.key: KindCounts}`` for every spec: one read of the recent slice.

    Past days come from :func:`day_summary` (cached), never from a rescan.
    """
    if not specs:
        return {}
    now = now.astimezone(UTC)
    patterned = [s for s in specs if s.kind == "new_pattern"]
    plain = _window_specs(specs)
    slice_ = _recent_slice(lake_url, specs, now) if patterned else None
    counts = window_counts(lake_url, plain, now, recent=slice_)
    out: dict[str, KindCounts] = {}
    days = _Days(lake_url, cache_dir)
    seen = _seen_services(days, now) if any(s.kind == "absence" for s in specs) else set()
    anomalies = [s for s in specs if s.kind == "anomaly"]
    baselines = _anomaly_baselines(days, anomalies, now) if anomalies else {}
    news, days_had = (
        _new_patterns(days, patterned, now, slice_)
        if patterned and slice_ is not None
        else ({}, {})
    )
    for s in specs:
        if s.kind == "absence":
            out[s.key] = KindCounts(total=counts.get(s.key, 0), seen=s.service in seen)
        elif s.kind == "ratio":
            out[s.key] = KindCounts(count=counts.get(s.key, 0), total=counts.get(s.key + _TOTAL, 0))
        elif s.kind == "anomaly":
            base = baselines.get(s.key, ())
            out[s.key] = KindCounts(
                count=counts.get(s.key, 0), baseline=base, baseline_days=len(base)
            )
        elif s.kind == "new_pattern":
            out[s.key] = KindCounts(
                new_patterns=news.get(s.key, {}), baseline_days=days_had.get(s.key, 0)
            )
        else:
            out[s.key] = KindCounts(count=counts.get(s.key, 0))
    return out


def _recent_slice(lake_url: str, specs: Sequence[KindSpec], now: datetime) -> pl.DataFrame:
    """Return the one read of the tick: events of the rules' services and levels in the longest window."""
    start = now - max(s.window for s in specs)
    services = sorted({s.service for s in specs})
    levels: set[str] = set()
    for s in specs:
        levels.update(ALL_LEVELS if s.kind in ("ratio", "absence") else s.levels)
    return (
        reader.scan(lake_url, start, now)
        .filter(
            (pl.col("timestamp") > start)
            & (pl.col("timestamp") <= now)
            & pl.col("service").is_in(services)
            & pl.col("level").is_in(sorted(levels))
        )
        .select("service", "level", "timestamp", "message")
        .collect()
    )


def _past_days(now: datetime, n: int) -> list[date]:
    """Return the ``n`` complete UTC days before ``now``'s day, most recent first."""
    today = now.date()
    return [today - timedelta(days=d) for d in range(1, n + 1)]


def _seen_services(days: _Days, now: datetime) -> set[str]:
    """Return the services with an event today before ``now`` or on the lookback days."""
    lake_url = days.lake_url
    past = _past_days(now, ABSENCE_LOOKBACK_DAYS)
    key = ("seen", *days.key(past))
    cached = _derived.get(key)
    if not isinstance(cached, frozenset):
        found: set[str] = set()
        for day in past:
            found.update(days.summary(day, "minutes")["service"].unique().to_list())
        cached = frozenset(found)
        _remember(key, cached)
    seen: set[str] = set(cached)
    midnight = datetime.combine(now.date(), time(0), tzinfo=UTC)
    now_us = (now - _EPOCH) // timedelta(microseconds=1)
    for stat in reader.file_stats(lake_url, midnight, now):
        if stat.day != now.date() or (stat.min_ts_us is not None and stat.min_ts_us > now_us):
            continue
        seen.update(service for service, _ in reader.key_counts(stat))
    return seen


@dataclass(frozen=True, slots=True)
class _Dense:
    """Running sums of events per minute over the baseline days, per (service, level)."""

    origin: int  # minute label of index 0
    size: int
    sums: dict[tuple[str, str], np.ndarray]
    alive: dict[str, frozenset[int]]  # per service, the UTC days (since epoch) it logged


def _dense(days: _Days, past: list[date]) -> _Dense:
    key = ("dense", *days.key(past))
    hit = _derived.get(key)
    if isinstance(hit, _Dense):
        return hit
    summaries = [days.summary(d, "minutes") for d in past]
    minutes = pl.concat(summaries)
    alive: dict[str, set[int]] = {}
    for day, summary in zip(past, summaries, strict=True):
        for service in summary["service"].unique().to_list():
            alive.setdefault(service, set()).add((day - _EPOCH.date()).days)
    origin = int((datetime.combine(past[-1], time(0), tzinfo=UTC) - _EPOCH) // timedelta(minutes=1))
    size = len(past) * _DAY_MIN + 1
    width = size + 1
    pairs = minutes.select("service", "level").unique().with_row_index("pair")
    flat = minutes.join(pairs, on=["service", "level"]).select(
        "pair", (pl.col("label") - origin).alias("idx"), "n"
    )
    flat = flat.filter((pl.col("idx") >= 0) & (pl.col("idx") <= size))
    # One bincount for every (service, level) row at once, then running sums along the minutes.
    grid = np.bincount(
        flat["pair"].to_numpy().astype(np.int64) * width + flat["idx"].to_numpy(),
        weights=flat["n"].to_numpy(),
        minlength=pairs.height * width,
    ).reshape(pairs.height, width)
    cums = np.cumsum(grid.astype(np.int64), axis=1)
    sums = {
        (service, level): cums[i]
        for i, service, level in pairs.select("pair", "service", "level").iter_rows()
    }
    out = _Dense(origin, size, sums, {k: frozenset(v) for k, v in alive.items()})
    _remember(key, out)
    return out


def _anomaly_baselines(
    days: _Days, specs: Sequence[KindSpec], now: datetime
) -> dict[str, tuple[int, ...]]:
    """Return per spec the window's count on each available baseline day (d = 1 … days).

    Each (service, level) is a dense per-minute running sum over the baseline days
    (built once per day and process), so a window's count on a day is two lookups.
    A day is available when the service logged anything on the UTC day the window ends.
    """
    k = max(s.days for s in specs)
    dense = _dense(days, _past_days(now, k + 1))  # +1: a window at 00:05 reaches the day before
    origin, size = dense.origin, dense.size
    now_label = int((now - _EPOCH) // timedelta(minutes=1))
    out: dict[str, tuple[int, ...]] = {}
    for s in specs:
        w = int(s.window // timedelta(minutes=1))
        had = dense.alive.get(s.service, frozenset())
        cums = [c for c in (dense.sums.get((s.service, lv)) for lv in s.levels) if c is not None]
        counts: list[int] = []
        for d in range(1, s.days + 1):
            hi = now_label - d * _DAY_MIN
            if (hi - 1) // _DAY_MIN not in had:
                continue  # the service logged nothing that day: not a baseline day
            b = min(max(hi - origin, 0), size)
            a = min(max(hi - w - origin, 0), size)
            counts.append(sum(int(c[b] - c[a]) for c in cums))
        out[s.key] = tuple(counts)
    return out


def _pattern_base(days: _Days, past: list[date]) -> tuple[pl.DataFrame | None, list[date]]:
    """Return the patterns of the past days with their ``age`` (1 = yesterday), and the days had."""
    key = ("patterns", *days.key(past))
    hit = _derived.get(key)
    if isinstance(hit, tuple):
        return hit
    frames = []
    had: list[date] = []
    for age, day in enumerate(past, start=1):
        if not days.summary(day, "minutes").height:
            continue  # the lake holds nothing that day (before it began, or retention)
        had.append(day)
        frames.append(
            days.summary(day, "patterns").with_columns(pl.lit(age, dtype=pl.Int64).alias("age"))
        )
    # Keep, per (service, level, pattern), its most recent day: "seen within d days" is age <= d.
    base = (
        pl.concat(frames).group_by("service", "level", "pattern").agg(pl.col("age").min())
        if frames
        else None
    )
    out = (base, had)
    _remember(key, out)
    return out


def _new_patterns(
    days_: _Days,
    specs: Sequence[KindSpec],
    now: datetime,
    recent: pl.DataFrame,
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Return per spec ``{new pattern: count in the window}`` and its available baseline days."""
    k = max(s.days for s in specs)
    days = _past_days(now, k)
    base, had = _pattern_base(days_, days)
    now_us = (now - _EPOCH) // timedelta(microseconds=1)
    rules = pl.DataFrame(
        {
            "key": [s.key for s in specs],
            "service": [s.service for s in specs],
            "level": [list(s.levels) for s in specs],
            "after_us": [now_us - s.window // timedelta(microseconds=1) for s in specs],
            "days": [s.days for s in specs],
        },
        schema={
            "key": pl.String,
            "service": pl.String,
            "level": pl.List(pl.String),
            "after_us": pl.Int64,
            "days": pl.Int64,
        },
    ).explode("level")
    window = (
        rules.join(recent, on=["service", "level"], how="inner")
        .filter(pl.col("timestamp").dt.epoch("us") > pl.col("after_us"))
        .group_by("key", "service", "level", "days", "message")
        .len()
    )
    distinct = window.select("message").unique().with_columns(pattern=pattern_expr("message"))
    window = window.join(distinct, on="message", how="left")
    if base is not None:
        known = (
            window.select("key", "service", "level", "days", "pattern")
            .unique()
            .join(base, on=["service", "level", "pattern"], how="inner")
            .filter(pl.col("age") <= pl.col("days"))
            .select("key", "pattern")
            .unique()
        )
        window = window.join(known, on=["key", "pattern"], how="anti")
    per = window.group_by("key", "pattern").agg(pl.col("len").sum().alias("n"))
    news: dict[str, dict[str, int]] = {}
    for key, pattern, n in per.iter_rows():
        news.setdefault(key, {})[pattern] = int(n)
    ages = sorted(days.index(d) + 1 for d in had)
    days_had = {s.key: sum(1 for a in ages if a <= s.days) for s in specs}
    return news, days_had
