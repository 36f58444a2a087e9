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
