"""Backtests: replay :func:`~workbench.alerting.decide.decide` for one rule over past logs.

"Would this rule have paged last week, and how often?" The rule's matching events
in ``(start - window, end]`` are read from the lake once; the window count at every
tick is two binary searches over the sorted timestamps (numpy), so a week at
one-minute steps (10,080 ticks) costs one scan plus ~10k cheap decisions. The
catalog is never touched: the replay starts with no incident and no
``last_triggered_at`` and silences are ignored.

Resolution is simulated as the evaluator would see it: with the rule's own
auto-resolve when it has one; otherwise on-call is assumed to resolve an incident
once errors have stopped for the quiet period (``max(2 * window, 15 min)``), so
separate bursts are separate incident episodes (the later ones reopen it, exactly
as :func:`~workbench.alerting.decide.decide` would). Both go through ``decide``'s
own auto-resolve step (one path, no copy); a simulated resolve sends no
notification (a person resolving pages nobody) and is counted under the reason
``resolved_simulated``.

Every rule kind replays (``docs/alerting.md``, "Rule kinds"): the service's events
are read once from far enough back for the kind's baseline (``baselineDays`` days
for ``new_pattern``/``anomaly``, the 7-day lookback of ``absence``), and each
tick's :class:`~workbench.query.kinds.KindCounts` come from binary searches over
them, judged by the same :func:`~workbench.alerting.kinds.judge` the evaluator
uses. The series then carries each tick's observed ``value`` and ``baseline``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from workbench.alerting.decide import IncidentState, RuleState, decide
from workbench.alerting.evaluate import rule_state
from workbench.alerting.kinds import ABSENCE_LOOKBACK_DAYS, DEFAULT_BASELINE_DAYS, KindCounts, judge
from workbench.catalog.models import AlertRule
from workbench.lake import reader
from workbench.patterns import pattern_expr

SIMULATED = "simulated"
AUTO = "auto_resolve"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_DAY_US = 86_400_000_000
date_epoch = _EPOCH.date()


@dataclass(frozen=True, slots=True)
class Notification:
    """A notification the rule would have sent: when, which ``type``, the count then."""

    at: datetime
    type: str
    count: int
    value: float | None = None  # what the rule observed (a percent for ratio)
    baseline: float | None = None  # ratio/anomaly: what it was compared with


@dataclass(frozen=True, slots=True)
class Episode:
    """One stretch of an active incident: from create/reopen to its resolve (or the end)."""

    opened_at: datetime
    reopened: bool
    last_seen_error_at: datetime
    peak_count: int
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """What the rule would have done: incident episodes, notifications, ticks replayed.

    ``resolved_by`` says how episodes end: ``"auto_resolve"`` (the rule's own) or
    ``"simulated"`` (on-call resolving ``resolve_after`` after the last breach).
    """

    incidents: list[Episode]
    notifications: list[Notification]
    ticks: int
    reasons: dict[str, int] = field(default_factory=dict)
    series: pl.DataFrame | None = (
        None  # ``at``, ``count``, ``value``, ``baseline``, ``action``, ``reason``
    )
    resolve_after: timedelta | None = None
    resolved_by: str = AUTO
    kind: str = "threshold"


def _us(moment: datetime) -> int:
    return (moment.astimezone(UTC) - _EPOCH) // _US


def matching_timestamps(
    rule: RuleState, lake_url: str, start: datetime, end: datetime
) -> np.ndarray:
    """Return the sorted event times (µs since epoch) of ``rule``'s matches in ``(start, end]``."""
    cond = (
        (pl.col("timestamp") > start)
        & (pl.col("timestamp") <= end)
        & (pl.col("service") == rule.service)
        & pl.col("level").is_in(list(rule.levels))
    )
    if rule.message_contains and rule.kind == "threshold":
        cond &= pl.col("message").str.contains(rule.message_contains, literal=True)
    if rule.match and rule.kind == "match":
        cond &= pl.col("message").str.to_lowercase().str.contains(rule.match.lower(), literal=True)
    frame = (
        reader.scan(lake_url, start, end)
        .filter(cond)
        .select(pl.col("timestamp").dt.epoch("us").alias("us"))
        .collect()
    )
    return np.sort(frame["us"].to_numpy().astype(np.int64))


def backtest(
    rule: AlertRule | RuleState,
    start: datetime,
    end: datetime,
    *,
    lake_url: str,
    step: timedelta = timedelta(minutes=1),
) -> BacktestResult:
    """Return what ``rule`` would have done evaluated every ``step`` over ``[start, end]``."""
    if step <= timedelta(0):
        raise ValueError("step must be positive")
    state = rule if isinstance(rule, RuleState) else rule_state(rule)
    state = replace(state, last_triggered_at=None, enabled=True)
    simulated = state.auto_resolve is None
    if simulated:  # nobody resolves by hand in a replay: assume on-call does after the quiet period
        state = replace(state, auto_resolve=state.quiet)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    times = matching_timestamps(state, lake_url, start - state.window, end)
    n = max(int((end - start) / step) + 1, 0)
    tick_us = _us(start) + np.arange(n, dtype=np.int64) * (step // _US)
    window_us = state.window // _US
    # Count in (t - window, t]: events <= t minus events <= t - window.
    counts = _in_window(times, tick_us, window_us)
    kind_counts = (
        _kind_counts(state, lake_url, start, end, tick_us, counts)
        if state.kind not in ("threshold", "match")
        else None
    )

    latest: IncidentState | None = None
    episodes: list[Episode] = []
    notifications: list[Notification] = []
    reasons: Counter[str] = Counter()
    actions: list[str] = []
    reason_col: list[str] = []
    values: list[float] = []
    baselines: list[float | None] = []
    for k in range(n):
        now = start + k * step
        seen = kind_counts[k] if kind_counts is not None else KindCounts(count=int(counts[k]))
        breach = judge(
            state.kind,
            seen,
            threshold=state.threshold,
            min_events=state.min_events,
            sensitivity=state.sensitivity,
        )
        count = breach.count
        values.append(breach.value)
        baselines.append(breach.baseline)
        d = decide(state, count, latest, False, now, breach=breach)
        reason = d.reason
        notify = d.notify
        if simulated and d.action == "auto_resolve":
            reason, notify = "resolved_simulated", None
        reasons[reason] += 1
        actions.append(d.action)
        reason_col.append(reason)
        if notify is not None:
            notifications.append(Notification(now, notify, count, breach.value, breach.baseline))
        if d.action in ("create", "reopen"):
            episodes.append(Episode(now, d.action == "reopen", now, count, None))
        elif d.action == "update" and episodes:
            e = episodes[-1]
            episodes[-1] = replace(e, last_seen_error_at=now, peak_count=max(e.peak_count, count))
        elif d.action == "auto_resolve" and episodes:
            episodes[-1] = replace(episodes[-1], resolved_at=now)
        if d.changes_state:
            latest = d.incident
        state = replace(state, last_triggered_at=d.last_triggered_at, pending_since=d.pending_since)
    series = pl.DataFrame(
        {
            "at": [start + k * step for k in range(n)],
            "count": counts.astype(np.int64),
            "value": values,
            "baseline": baselines,
            "action": actions,
            "reason": reason_col,
        },
        schema={
            "at": pl.Datetime("us", "UTC"),
            "count": pl.Int64,
            "value": pl.Float64,
            "baseline": pl.Float64,
            "action": pl.String,
            "reason": pl.String,
        },
    )
    return BacktestResult(
        incidents=episodes,
        notifications=notifications,
        ticks=n,
        reasons=dict(reasons),
        series=series,
        resolve_after=state.auto_resolve,
        resolved_by=SIMULATED if simulated else AUTO,
        kind=state.kind,
    )


def _in_window(times: np.ndarray, tick_us: np.ndarray, window_us: int) -> np.ndarray:
    """Return per tick how many of the sorted ``times`` fall in ``(t - window, t]``."""
    return np.searchsorted(times, tick_us, side="right") - np.searchsorted(
        times, tick_us - window_us, side="right"
    )


def _service_events(
    state: RuleState, lake_url: str, start: datetime, end: datetime, message: bool
) -> pl.DataFrame:
    """Return the service's events (any level) in ``(start, end]``: ``us``, ``level`` (+ ``message``)."""
    cols = [pl.col("timestamp").dt.epoch("us").alias("us"), pl.col("level")]
    if message:
        cols.append(pl.col("message"))
    return (
        reader.scan(lake_url, start, end)
        .filter(
            (pl.col("timestamp") > start)
            & (pl.col("timestamp") <= end)
            & (pl.col("service") == state.service)
        )
        .select(cols)
        .sort("us")
        .collect()
    )


def _kind_counts(
    state: RuleState,
    lake_url: str,
    start: datetime,
    end: datetime,
    tick_us: np.ndarray,
    counts: np.ndarray,
) -> list[KindCounts]:
    """Return each tick's :class:`KindCounts` for a ratio, absence, new_pattern or anomaly rule."""
    window_us = state.window // _US
    days = state.baseline_days or DEFAULT_BASELINE_DAYS
    if state.kind == "ratio":
        every = _service_events(state, lake_url, start - state.window, end, False)
        totals = _in_window(every["us"].to_numpy(), tick_us, window_us)
        return [KindCounts(count=int(c), total=int(t)) for c, t in zip(counts, totals, strict=True)]
    midnight_us = (tick_us // _DAY_US) * _DAY_US
    if state.kind == "absence":
        back = timedelta(days=ABSENCE_LOOKBACK_DAYS + 1)
        every = _service_events(state, lake_url, start - back, end, False)
        us = every["us"].to_numpy()
        totals = _in_window(us, tick_us, window_us)
        # Seen: an event in [midnight - lookback days, t].
        since = midnight_us - ABSENCE_LOOKBACK_DAYS * _DAY_US
        seen = np.searchsorted(us, tick_us, side="right") > np.searchsorted(us, since, side="left")
        return [KindCounts(total=int(t), seen=bool(v)) for t, v in zip(totals, seen, strict=True)]
    if state.kind == "anomaly":
        back = timedelta(days=days + 1) + state.window
        every = _service_events(state, lake_url, start - back, end, False)
        us = every["us"].to_numpy()
        lv = every.filter(pl.col("level").is_in(list(state.levels)))["us"].to_numpy()
        alive = set((us // _DAY_US).tolist())  # UTC days (since epoch) the service logged
        per_day = []
        for d in range(1, days + 1):
            then = tick_us - d * _DAY_US
            per_day.append((_in_window(lv, then, window_us), np.isin(then // _DAY_US, list(alive))))
        out = []
        for k, c in enumerate(counts):
            base = tuple(int(n[k]) for n, ok in per_day if ok[k])
            out.append(KindCounts(count=int(c), baseline=base, baseline_days=len(base)))
        return out
    if state.kind == "new_pattern":
        back = timedelta(days=days + 1)
        every = _service_events(state, lake_url, start - back, end, True)
        folded = every.filter(pl.col("level").is_in(list(state.levels))).with_columns(
            pattern=pattern_expr("message")
        )
        lake_days = {(d - date_epoch).days for d, _ in reader.partitions(lake_url)}
        patterns = {
            p: g["us"].to_numpy() for (p,), g in folded.group_by(["pattern"], maintain_order=True)
        }
        day_idx = tick_us // _DAY_US
        had = [sum(1 for a in range(1, days + 1) if int(dk) - a in lake_days) for dk in day_idx]
        news: list[dict[str, int]] = [{} for _ in range(len(tick_us))]
        for pattern, us in patterns.items():
            in_window = _in_window(us, tick_us, window_us)
            # Known: seen in [midnight - days, midnight) (the previous complete UTC days).
            known = np.searchsorted(us, midnight_us, side="left") > np.searchsorted(
                us, midnight_us - days * _DAY_US, side="left"
            )
            for j in np.nonzero((in_window > 0) & ~known)[0]:
                news[j][str(pattern)] = int(in_window[j])
        return [KindCounts(new_patterns=n, baseline_days=h) for n, h in zip(news, had, strict=True)]
    raise ValueError(f"unknown rule kind {state.kind!r}")
