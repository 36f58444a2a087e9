"""The analyst-facing helpers re-exported by ``workbench``: thin calls into the library.

Every helper reads the same configuration as the servers (:func:`workbench.get_settings`)
unless a ``settings`` is passed, so a notebook opened next to a running system
sees its data. Times are relative (``"24h"``, ``"15m"``, ``"7d"``, a ``timedelta``:
that long before now) or absolute (a ``datetime``, naive meaning UTC, or an ISO
8601 string). Heavy imports (polars plans aside) happen inside the functions, so
``import workbench`` stays cheap. The reference page is ``docs/analyst.md``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl

from workbench import clock, times
from workbench.config import Settings, get_settings
from workbench.times import TimeLike

if TYPE_CHECKING:
    from workbench.alerting.backtest import BacktestResult
    from workbench.catalog.models import AlertRule
    from workbench.query.trends import TrendPoint
    from workbench.query.types import SearchResult


def time_range(
    since: TimeLike | None, until: TimeLike | None, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """Return ``(start, end)`` in UTC for relative or absolute bounds (None stays open)."""
    now = now or clock.now()
    return times.parse_time(since, now, "since"), times.parse_time(until, now, "until")


def logs(
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    *,
    settings: Settings | None = None,
) -> pl.LazyFrame:
    """Return every log event as a ``polars.LazyFrame`` (optionally only ``since``..``until``).

    Columns: ``id, timestamp, received_at, service, level, message, meta`` (meta
    is JSON text: ``pl.col("meta").str.json_path_match("$.userId")``). Date
    partitions and files outside the range are not read at all.

    >>> workbench.logs("24h").filter(pl.col("level") == "error").collect()
    """
    from workbench.lake import reader

    settings = settings or get_settings()
    start, end = time_range(since, until)
    lf = reader.scan(settings.lake_url, start, end)
    if start is not None:
        lf = lf.filter(pl.col("timestamp") >= start)
    if end is not None:
        lf = lf.filter(pl.col("timestamp") <= end)
    return lf


def search(
    *, settings: Settings | None = None, since: TimeLike | None = None, **filters: Any
) -> SearchResult:
    """Return one page of matching events, newest first (``workbench.query.types.SearchQuery``).

    Filters: ``service``, ``levels``, ``start``/``end``, ``text``, ``meta``,
    ``page``/``limit`` (limit <= 100), ``cursor``; ``since`` is a shortcut for
    ``start``. The result has ``total``, ``logs`` and ``next_cursor``.
    """
    from workbench.query.search import search as _search
    from workbench.query.types import SearchQuery

    settings = settings or get_settings()
    if since is not None:
        filters.setdefault("start", times.parse_time(since, clock.now(), "since"))
    return _search(settings.lake_url, SearchQuery(**filters))


def error_trend(
    service: str | None = None,
    range: str = "24h",
    *,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> list[TrendPoint]:
    """Return error+fatal counts per bucket for ``range`` ending ``now``, empty buckets as zero.

    Ranges and buckets: ``1h`` by minute, ``24h`` by 5 min, ``7d`` by hour, ``30d``
    by 6 h, ``3m``/``6m`` by day, ``1y`` by week.
    """
    from workbench.query.trends import error_trend as _trend

    settings = settings or get_settings()
    at = times.parse_instant(now, "now") if now is not None else clock.now()
    return _trend(settings.lake_url, service=service, range=range, now=at)


def top_messages(
    since: TimeLike | None = "24h",
    service: str | Sequence[str] | None = None,
    levels: Sequence[str] | None = ("error", "fatal"),
    *,
    until: TimeLike | None = None,
    limit: int = 20,
    settings: Settings | None = None,
) -> pl.DataFrame:
    """Return the most frequent message patterns (numbers, ids, quoted values as placeholders).

    Columns: ``pattern, count, example, services, first_seen, last_seen``, most
    frequent first. ``levels=None`` counts every level. See ``workbench.patterns``.
    """
    from workbench.patterns import top_messages as _top

    lf = logs(since, until, settings=settings)
    if service is not None:
        names = [service] if isinstance(service, str) else list(service)
        lf = lf.filter(pl.col("service").is_in(names))
    if levels is not None:
        lf = lf.filter(pl.col("level").is_in([lv.lower() for lv in levels]))
    return _top(lf, limit=limit)


def error_counts(
    since: TimeLike | None = "24h",
    until: TimeLike | None = None,
    *,
    every: str = "5m",
    service: str | Sequence[str] | None = None,
    levels: Sequence[str] | None = ("error", "fatal"),
    settings: Settings | None = None,
) -> pl.DataFrame:
    """Return ``time, service, count`` of events per ``every`` bucket and service (no empty rows).

    For "which services were failing at the same time": pivot it, or plot it with
    :func:`workbench.plots.services_figure`. ``every`` is a polars duration
    (``"1m"``, ``"5m"``, ``"1h"``, ``"1d"``); ``service`` keeps one or several.
    """
    lf = logs(since, until, settings=settings)
    if service is not None:
        names = [service] if isinstance(service, str) else list(service)
        lf = lf.filter(pl.col("service").is_in(names))
    if levels is not None:
        lf = lf.filter(pl.col("level").is_in([lv.lower() for lv in levels]))
    return (
        lf.group_by(pl.col("timestamp").dt.truncate(every).alias("time"), "service")
        .agg(pl.len().cast(pl.Int64).alias("count"))
        .sort("time", "service")
        .collect()
    )


# -- the catalog: incidents and rules (queries in workbench.catalog.frames) ---------


def incidents(
    status: str | None = None,
    since: TimeLike | None = None,
    *,
    service: str | None = None,
    limit: int = 1000,
    settings: Settings | None = None,
) -> pl.DataFrame:
    """Return incidents as a DataFrame, newest ``triggered_at`` first.

    ``status`` is ``open``, ``acknowledged`` or ``resolved``; ``since`` keeps
    incidents triggered at or after it. Columns: see
    :data:`workbench.catalog.frames.INCIDENT_SCHEMA`.
    """
    from workbench.catalog import frames

    settings = settings or get_settings()
    start = times.parse_time(since, clock.now(), "since")
    return frames.incidents_frame(
        settings.database_url, status=status, service=service, start=start, limit=limit
    )


def incident(incident_id: str | uuid.UUID, *, settings: Settings | None = None) -> dict[str, Any]:
    """Return one incident as a dict (the columns of :func:`incidents`); NotFound if missing."""
    from workbench.catalog import frames

    return frames.incident_row((settings or get_settings()).database_url, incident_id)


def incident_window(
    incident_id: str | uuid.UUID,
    *,
    before: timedelta = timedelta(hours=2),
    after: timedelta = timedelta(hours=1),
    settings: Settings | None = None,
) -> tuple[datetime, datetime]:
    """Return ``(start, end)`` around an incident: ``before`` its first trigger to ``after`` its end.

    The end is the resolve time, else the last error seen, else the trigger time.
    """
    row = incident(incident_id, settings=settings)
    first = row["first_triggered_at"] or row["triggered_at"]
    last = row["resolved_at"] or row["last_seen_error_at"] or row["triggered_at"]
    return first - before, last + after


def rules(*, service: str | None = None, settings: Settings | None = None) -> pl.DataFrame:
    """Return the alert rules as a DataFrame, by service then name.

    Columns: see :data:`workbench.catalog.frames.RULE_SCHEMA`.
    """
    from workbench.catalog import frames

    return frames.rules_frame((settings or get_settings()).database_url, service=service)


def find_rule(ref: str | uuid.UUID, *, settings: Settings | None = None) -> AlertRule:
    """Return the catalog rule with id ``ref`` (or, failing that, the one rule named ``ref``)."""
    from workbench.catalog import frames

    return frames.find_rule((settings or get_settings()).database_url, ref)


def backtest(
    rule: Any,
    start: TimeLike = "7d",
    end: TimeLike | None = None,
    *,
    step: timedelta = timedelta(minutes=1),
    settings: Settings | None = None,
    **overrides: Any,
) -> BacktestResult:
    """Return what ``rule`` would have done evaluated every ``step`` over ``[start, end]``.

    ``rule`` is an ``AlertRule``, a rule id or name from the catalog, or a
    ``RuleState``. ``overrides`` replace rule fields for this run only
    (``threshold=20``, ``window_minutes=10``). ``end`` defaults to now. The
    result lists incident ``incidents`` (episodes), ``notifications`` and a
    per-tick ``series`` DataFrame. Incidents close by the rule's auto-resolve or,
    without one, as on-call would after the quiet period (``resolved_by``), so
    separate bursts are separate episodes.
    """
    from workbench.alerting.backtest import backtest as _backtest
    from workbench.catalog.models import AlertRule

    settings = settings or get_settings()
    if isinstance(rule, str | uuid.UUID):
        rule = find_rule(rule, settings=settings)
    if overrides:
        if isinstance(rule, AlertRule):
            rule = rule.model_copy(update=overrides)
        else:
            from dataclasses import replace

            rule = replace(rule, **overrides)
    now = clock.now()
    first, last = time_range(start, end, now)
    return _backtest(rule, first or now, last or now, lake_url=settings.lake_url, step=step)


def compare_thresholds(
    rule: Any,
    thresholds: Sequence[int],
    start: TimeLike = "7d",
    end: TimeLike | None = None,
    *,
    step: timedelta = timedelta(minutes=1),
    settings: Settings | None = None,
) -> pl.DataFrame:
    """Return, per threshold, how many incidents and notifications ``rule`` would have produced.

    Columns: ``threshold, incidents, reopens, notifications, peak_count``: the
    table a rule-tuning session compares.
    """
    settings = settings or get_settings()
    if isinstance(rule, str | uuid.UUID):
        rule = find_rule(rule, settings=settings)
    now = clock.now()
    first, last = time_range(start, end, now)
    rows = []
    for threshold in thresholds:
        result = backtest(
            rule, first or now, last or now, step=step, settings=settings, threshold=threshold
        )
        rows.append(
            {
                "threshold": threshold,
                "incidents": len(result.incidents),
                "reopens": sum(1 for e in result.incidents if e.reopened),
                "notifications": len(result.notifications),
                "peak_count": max((e.peak_count for e in result.incidents), default=0),
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "threshold": pl.Int64,
            "incidents": pl.Int64,
            "reopens": pl.Int64,
            "notifications": pl.Int64,
            "peak_count": pl.Int64,
        },
    )
