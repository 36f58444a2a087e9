"""What "breach" means for each rule kind, on counts already taken. Pure: no I/O, no clock.

The lake is read once per tick for every rule (:mod:`workbench.query.kinds`); what it
found for one rule is a :class:`KindCounts`. :func:`judge` turns those counts into a
:class:`Breach` (breached or not, the observed value, the baseline compared with),
which :func:`workbench.alerting.decide.decide` then feeds into the one incident
lifecycle every kind shares. ``docs/alerting.md`` ("Rule kinds") states the rules.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.query.kinds import ABSENCE_LOOKBACK_DAYS, DEFAULT_BASELINE_DAYS, KindCounts

__all__ = [
    "ABSENCE_LOOKBACK_DAYS",
    "DEFAULT_BASELINE_DAYS",
    "KINDS",
    "Breach",
    "KindCounts",
    "judge",
]

KINDS: tuple[str, ...] = ("threshold", "ratio", "absence", "match", "new_pattern", "anomaly")
DEFAULT_MIN_EVENTS = 20
DEFAULT_SENSITIVITY = 3.0


@dataclass(frozen=True, slots=True)
class Breach:
    """A kind's verdict: ``breached``, the ``count`` recorded as the incident's error count,
    the observed ``value`` (the count, or a percent for ``ratio``), the ``baseline`` it
    was compared with (``ratio``: events of any level; ``anomaly``: median + k x MAD),
    a ``reason`` when it could not breach for a kind-specific cause, and ``detail``."""

    breached: bool
    count: int
    value: float
    baseline: float | None = None
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def threshold_breach(threshold: int, count: int) -> Breach:
    """``threshold`` and ``match``: ``count >= threshold``."""
    return Breach(count >= threshold, count, float(count))


def ratio_breach(threshold_pct: float, min_events: int, count: int, total: int) -> Breach:
    """``ratio``: ``100 * count / total >= threshold`` percent, with ``total >= min_events``."""
    pct = 100.0 * count / total if total else 0.0
    if total < min_events:
        return Breach(False, count, pct, float(total), reason="too_few_events")
    return Breach(pct >= threshold_pct, count, pct, float(total))


def absence_breach(threshold: int, total: int, seen: bool) -> Breach:
    """``absence``: fewer than ``threshold`` events of any level, once the service was seen."""
    if not seen:
        return Breach(False, total, float(total), reason="never_seen")
    return Breach(total < threshold, total, float(total))


def new_pattern_breach(threshold: int, new_patterns: dict[str, int], baseline_days: int) -> Breach:
    """``new_pattern``: some pattern absent from the baseline occurs ``>= threshold`` times.

    Needs at least one baseline day (else everything would be new): none -> no breach.
    """
    top_pattern, top = max(new_patterns.items(), key=lambda kv: (kv[1], kv[0]), default=("", 0))
    detail: dict[str, Any] = {"baselineDays": baseline_days}
    if top:
        detail["pattern"] = top_pattern
        detail["newPatterns"] = len(new_patterns)
    if baseline_days < 1:
        return Breach(False, top, float(top), reason="no_baseline", detail=detail)
    return Breach(top >= threshold, top, float(top), detail=detail)


def seasonal_bar(baseline: Sequence[int], sensitivity: float) -> tuple[float, float, float]:
    """Return ``(median, MAD, median + sensitivity * MAD)`` of the baseline day counts."""
    med = float(statistics.median(baseline))
    mad = float(statistics.median(abs(x - med) for x in baseline))
    return med, mad, med + sensitivity * mad


def anomaly_breach(
    threshold: int, sensitivity: float, count: int, baseline: Sequence[int]
) -> Breach:
    """``anomaly``: ``count >= threshold`` (a floor) and ``count > median + sensitivity * MAD``.

    ``baseline`` holds the count of the same window on each available baseline day;
    with none, no breach (reason ``no_baseline``).
    """
    if not baseline:
        return Breach(False, count, float(count), reason="no_baseline", detail={"baselineDays": 0})
    med, mad, bar = seasonal_bar(baseline, sensitivity)
    detail = {"median": med, "mad": mad, "baselineDays": len(baseline)}
    return Breach(count >= threshold and count > bar, count, float(count), bar, detail=detail)


def judge(
    kind: str,
    counts: KindCounts,
    *,
    threshold: int,
    min_events: int | None = None,
    sensitivity: float | None = None,
) -> Breach:
    """Return the :class:`Breach` of a rule of ``kind`` seeing ``counts``."""
    if kind in ("threshold", "match"):
        return threshold_breach(threshold, counts.count)
    if kind == "ratio":
        minimum = DEFAULT_MIN_EVENTS if min_events is None else min_events
        return ratio_breach(threshold, minimum, counts.count, counts.total)
    if kind == "absence":
        return absence_breach(threshold, counts.total, counts.seen)
    if kind == "new_pattern":
        return new_pattern_breach(threshold, counts.new_patterns, counts.baseline_days)
    if kind == "anomaly":
        k = DEFAULT_SENSITIVITY if sensitivity is None else sensitivity
        return anomaly_breach(threshold, k, counts.count, counts.baseline)
    raise ValueError(f"unknown rule kind {kind!r}")
