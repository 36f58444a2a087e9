"""Backtests replay decide() over a real tmp lake, never touching the catalog."""

from __future__ import annotations

from datetime import timedelta

from tests.alerting.conftest import T0, add_errors
from workbench.alerting.backtest import backtest
from workbench.alerting.decide import RuleState
from workbench.alerting.evaluate import rule_state, window_spec
from workbench.catalog.models import AlertRule
from workbench.query.window import window_counts

MIN = timedelta(minutes=1)


def test_replay_creates_resolves_and_reopens(lake_url: str) -> None:
    add_errors(lake_url, T0 + 5 * MIN, 6)
    add_errors(lake_url, T0 + 120 * MIN, 8)
    add_errors(lake_url, T0 + 120 * MIN, 50, service="other")  # not this rule's service
    rule = AlertRule(
        service="auth", threshold=5, window_minutes=10, cooldown_minutes=15, auto_resolve_minutes=30
    )  # an unsaved draft, as the dashboard's rule form passes it
    result = backtest(rule, T0, T0 + 180 * MIN, lake_url=lake_url)
    assert result.ticks == 181
    assert [(n.at, n.type, n.count) for n in result.notifications] == [
        (T0 + 5 * MIN, "error_alert", 6),
        (T0 + 44 * MIN, "error_alert_resolved", 0),
        (T0 + 120 * MIN, "error_alert_reopened", 8),
        (T0 + 159 * MIN, "error_alert_resolved", 0),
    ]
    assert len(result.incidents) == 2
    first, second = result.incidents
    assert (first.opened_at, first.last_seen_error_at, first.resolved_at) == (
        T0 + 5 * MIN,
        T0 + 14 * MIN,
        T0 + 44 * MIN,
    )
    assert second.reopened and second.peak_count == 8
    assert result.reasons["created"] == 1 and result.reasons["updated"] == 18
    assert result.series is not None and result.series.height == 181


def test_counts_match_the_evaluator(lake_url: str) -> None:
    add_errors(lake_url, T0 + 3 * MIN, 7)
    add_errors(lake_url, T0 + 9 * MIN, 4, level="fatal")
    add_errors(lake_url, T0 + 9 * MIN, 9, level="warn")
    state = RuleState(rule_id="draft", service="auth", threshold=100, window=timedelta(minutes=5))
    result = backtest(state, T0, T0 + 20 * MIN, lake_url=lake_url)
    assert result.series is not None
    replayed = dict(
        zip(result.series["at"].to_list(), result.series["count"].to_list(), strict=True)
    )
    for k in range(0, 21):
        at = T0 + k * MIN
        expected = window_counts(lake_url, [window_spec(state)], at)["draft"]
        assert replayed[at] == expected, at
    assert result.notifications == [] and result.reasons == {"below_threshold": 21}


def test_message_filter_and_coarse_step(lake_url: str) -> None:
    add_errors(lake_url, T0 + 10 * MIN, 6, message="db timeout")
    add_errors(lake_url, T0 + 10 * MIN, 6, message="other")
    rule = rule_state(
        AlertRule(service="auth", threshold=5, window_minutes=10, message_contains="timeout")
    )
    result = backtest(rule, T0, T0 + 60 * MIN, lake_url=lake_url, step=5 * MIN)
    assert result.ticks == 13
    assert [n.at for n in result.notifications] == [T0 + 10 * MIN]


def test_without_auto_resolve_separate_bursts_are_separate_incidents(lake_url: str) -> None:
    """Issue 17: a simulated incident never closed, so a week of bursts reported "1 incident".

    Without auto-resolve the replay resolves an incident once errors have stopped for
    the quiet period (as on-call would; no resolve notification), through decide()'s
    own auto-resolve, so the next burst reopens it as the evaluator would.
    """
    bursts = [T0 + 5 * MIN, T0 + 300 * MIN, T0 + 2 * 24 * 60 * MIN]
    for at in bursts:
        add_errors(lake_url, at, 8)
    rule = AlertRule(service="auth", threshold=5, window_minutes=10, cooldown_minutes=15)
    result = backtest(rule, T0, T0 + 3 * 24 * 60 * MIN, lake_url=lake_url)
    assert [e.opened_at for e in result.incidents] == bursts
    assert [e.reopened for e in result.incidents] == [False, True, True]
    quiet = 2 * 10 * MIN  # max(2 x window, 15 min)
    assert [e.resolved_at for e in result.incidents] == [
        e.last_seen_error_at + quiet for e in result.incidents
    ]
    assert [n.type for n in result.notifications] == [
        "error_alert",
        "error_alert_reopened",
        "error_alert_reopened",
    ]
    assert result.resolve_after == quiet and result.resolved_by == "simulated"
    assert result.reasons["resolved_simulated"] == 3 and "auto_resolved" not in result.reasons


def test_a_burst_within_the_quiet_period_stays_one_incident(lake_url: str) -> None:
    add_errors(lake_url, T0 + 5 * MIN, 8)
    add_errors(lake_url, T0 + 30 * MIN, 8)  # 15 min after the first burst left the window
    rule = AlertRule(service="auth", threshold=5, window_minutes=10, cooldown_minutes=0)
    result = backtest(rule, T0, T0 + 120 * MIN, lake_url=lake_url)
    assert len(result.incidents) == 1 and result.incidents[0].peak_count == 8
    assert result.incidents[0].resolved_at == T0 + (39 + 20) * MIN


def test_the_rules_own_auto_resolve_is_used_when_set(lake_url: str) -> None:
    add_errors(lake_url, T0 + 5 * MIN, 8)
    rule = AlertRule(service="auth", threshold=5, window_minutes=10, auto_resolve_minutes=60)
    result = backtest(rule, T0, T0 + 180 * MIN, lake_url=lake_url)
    assert result.resolve_after == 60 * MIN and result.resolved_by == "auto_resolve"
    assert result.incidents[0].resolved_at == T0 + (14 + 60) * MIN
    assert [n.type for n in result.notifications] == ["error_alert", "error_alert_resolved"]


def test_pending_minutes_carry_from_tick_to_tick(lake_url: str) -> None:
    """A held breach opens once it has lasted pendingMinutes; a one-tick spike opens nothing."""
    for minute in range(5, 11):  # breaching every tick from T0+5 to T0+10
        add_errors(lake_url, T0 + minute * MIN, 6)
    add_errors(lake_url, T0 + 60 * MIN, 6)  # a one-tick spike
    rule = AlertRule(service="auth", threshold=5, window_minutes=1, pending_minutes=2)
    result = backtest(rule, T0, T0 + 90 * MIN, lake_url=lake_url)
    opened = [(n.at, n.type) for n in result.notifications if n.type != "error_alert_resolved"]
    assert opened == [(T0 + 7 * MIN, "error_alert")]
    assert len(result.incidents) == 1
