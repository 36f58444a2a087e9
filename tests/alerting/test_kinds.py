"""The per-kind decision functions on hand-made counts (issue 14): edges of each kind."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from workbench.alerting.decide import RuleState, decide
from workbench.alerting.kinds import (
    KindCounts,
    absence_breach,
    anomaly_breach,
    judge,
    new_pattern_breach,
    ratio_breach,
    seasonal_bar,
    threshold_breach,
)

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_threshold_and_match_fire_exactly_at_threshold() -> None:
    assert threshold_breach(5, 5).breached
    assert not threshold_breach(5, 4).breached
    assert not threshold_breach(1, 0).breached  # an empty window
    assert judge("match", KindCounts(count=3), threshold=3).breached


def test_ratio_is_a_percent_of_all_events_with_a_minimum() -> None:
    at = ratio_breach(25, 20, 5, 20)  # exactly 25 % of exactly minEvents
    assert at.breached and at.value == 25.0 and at.baseline == 20.0 and at.count == 5
    assert not ratio_breach(25, 20, 4, 20).breached  # 20 %
    few = ratio_breach(25, 20, 19, 19)  # 100 %, but one event short of minEvents
    assert not few.breached and few.reason == "too_few_events"
    empty = ratio_breach(1, 1, 0, 0)
    assert not empty.breached and empty.value == 0.0
    assert judge("ratio", KindCounts(count=10, total=20), threshold=50).breached  # minEvents 20


def test_absence_fires_below_threshold_once_seen() -> None:
    assert absence_breach(1, 0, seen=True).breached  # an empty window: silent
    assert not absence_breach(1, 1, seen=True).breached  # exactly the threshold: alive
    assert absence_breach(5, 4, seen=True).breached
    never = absence_breach(1, 0, seen=False)
    assert not never.breached and never.reason == "never_seen"


def test_new_pattern_needs_a_baseline_and_the_threshold() -> None:
    hit = new_pattern_breach(3, {"disk <num> full": 3, "other": 1}, baseline_days=7)
    assert hit.breached and hit.count == 3 and hit.detail["pattern"] == "disk <num> full"
    assert not new_pattern_breach(3, {"disk <num> full": 2}, baseline_days=7).breached
    assert not new_pattern_breach(1, {}, baseline_days=7).breached  # nothing new
    # Fewer baseline days than asked still judge; none at all cannot tell new from old.
    assert new_pattern_breach(1, {"x": 1}, baseline_days=1).breached
    none = new_pattern_breach(1, {"x": 5}, baseline_days=0)
    assert not none.breached and none.reason == "no_baseline"


def test_seasonal_bar_is_median_plus_k_mad() -> None:
    assert seasonal_bar([10, 12, 11, 50, 9, 10, 11], 3) == (11.0, 1.0, 14.0)
    assert seasonal_bar([4], 3) == (4.0, 0.0, 4.0)


def test_anomaly_needs_the_floor_and_to_exceed_the_bar() -> None:
    days = [10, 12, 11, 50, 9, 10, 11]  # median 11, MAD 1 -> bar 14
    assert anomaly_breach(5, 3, 15, days).breached
    at_bar = anomaly_breach(5, 3, 14, days)  # equal to the bar is not above it
    assert not at_bar.breached and at_bar.baseline == 14.0
    assert anomaly_breach(15, 3, 15, days).breached  # exactly at the floor
    assert not anomaly_breach(16, 3, 15, days).breached  # below the floor
    assert not anomaly_breach(1, 3, 0, [0, 0, 0]).breached  # an empty window


def test_anomaly_with_fewer_baseline_days_than_asked_uses_those_there_are() -> None:
    one = anomaly_breach(1, 3, 5, [4])  # one day: median 4, MAD 0
    assert one.breached and one.detail["baselineDays"] == 1
    none = anomaly_breach(1, 3, 500, [])
    assert not none.breached and none.reason == "no_baseline"


def test_a_breach_drives_the_shared_lifecycle() -> None:
    rule = RuleState(
        rule_id="r1", service="auth", threshold=1, window=timedelta(minutes=10), kind="absence"
    )
    silent = judge("absence", KindCounts(total=0, seen=True), threshold=1)
    created = decide(rule, silent.count, None, False, T0, breach=silent)
    assert (created.action, created.kind, created.value) == ("create", "absence", 0.0)
    alive = judge("absence", KindCounts(total=3, seen=True), threshold=1)
    assert decide(rule, alive.count, None, False, T0, breach=alive).action == "none"
    # The same lifecycle: a breach under a silence is suppressed, a kind's reason is kept.
    assert decide(rule, 0, None, True, T0, breach=silent).reason == "silenced"
    never = judge("absence", KindCounts(total=0, seen=False), threshold=1)
    assert decide(rule, 0, None, False, T0, breach=never).reason == "never_seen"
    anomaly = replace(rule, kind="anomaly", threshold=5)
    b = judge("anomaly", KindCounts(count=20, baseline=(1, 2, 3)), threshold=5, sensitivity=3)
    d = decide(anomaly, b.count, None, False, T0, breach=b)
    assert (d.action, d.value, d.baseline) == ("create", 20.0, 5.0)


@pytest.mark.parametrize("hour", range(24))
def test_anomaly_is_the_same_at_every_utc_hour(hour: int) -> None:
    # Counts are taken at exact 24 h steps in UTC: no hour is special (no DST shift).
    days = [hour, hour, hour + 1]
    assert anomaly_breach(1, 3, hour + 2, days).breached
    assert not anomaly_breach(1, 3, hour, days).breached
