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
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from workbench.alerting.decide import IncidentState, RuleState, decide
from workbench.alerting.evaluate import rule_state
from workbench.catalog.models import AlertRule
from workbench.lake import reader

SIMULATED = "simulated"
AUTO = "auto_resolve"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Notification:
    """A notification the rule would have sent: when, which ``type``, the count then."""

    at: datetime
    type: str
    count: int


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
    series: pl.DataFrame | None = None  # columns ``at``, ``count``, ``action``, ``reason``
    resolve_after: timedelta | None = None
    resolved_by: str = AUTO


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
    if rule.message_contains:
        cond &= pl.col("message").str.contains(rule.message_contains, literal=True)
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
    counts = np.searchsorted(times, tick_us, side="right") - np.searchsorted(
        times, tick_us - window_us, side="right"
    )

    latest: IncidentState | None = None
    episodes: list[Episode] = []
    notifications: list[Notification] = []
    reasons: Counter[str] = Counter()
    actions: list[str] = []
    reason_col: list[str] = []
    for k in range(n):
        now = start + k * step
        count = int(counts[k])
        d = decide(state, count, latest, False, now)
        reason = d.reason
        notify = d.notify
        if simulated and d.action == "auto_resolve":
            reason, notify = "resolved_simulated", None
        reasons[reason] += 1
        actions.append(d.action)
        reason_col.append(reason)
        if notify is not None:
            notifications.append(Notification(now, notify, count))
        if d.action in ("create", "reopen"):
            episodes.append(Episode(now, d.action == "reopen", now, count, None))
        elif d.action == "update" and episodes:
            e = episodes[-1]
            episodes[-1] = replace(e, last_seen_error_at=now, peak_count=max(e.peak_count, count))
        elif d.action == "auto_resolve" and episodes:
            episodes[-1] = replace(episodes[-1], resolved_at=now)
        if d.changes_state:
            latest = d.incident
        state = replace(state, last_triggered_at=d.last_triggered_at)
    series = pl.DataFrame(
        {
            "at": [start + k * step for k in range(n)],
            "count": counts.astype(np.int64),
            "action": actions,
            "reason": reason_col,
        },
        schema={
            "at": pl.Datetime("us", "UTC"),
            "count": pl.Int64,
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
    )
