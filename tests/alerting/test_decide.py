"""The pure decision: every branch, then properties over random histories (hypothesis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.alerting.decide import (
    ALERT,
    REOPENED,
    RESOLVED,
    IncidentState,
    RuleState,
    decide,
    fingerprint,
    quiet_period,
)

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)

RULE = RuleState(
    rule_id="r1",
    service="auth",
    threshold=5,
    window=timedelta(minutes=10),
    cooldown=timedelta(minutes=15),
)


def incident(status: str = "open", last_seen: datetime = T0, count: int = 7) -> IncidentState:
    return IncidentState(
        id=None,
        status=status,
        first_triggered_at=T0 - 60 * MIN,
        triggered_at=T0 - 60 * MIN,
        last_seen_error_at=last_seen,
        error_count=count,
        resolved_at=last_seen + MIN if status == "resolved" else None,
    )


def test_fingerprint_and_quiet_period() -> None:
    assert RULE.fingerprint == fingerprint("auth", "r1") == "auth:r1"
    assert quiet_period(timedelta(minutes=5)) == timedelta(minutes=15)
    assert quiet_period(timedelta(minutes=10)) == timedelta(minutes=20)


def test_disabled_rule_does_nothing() -> None:
    d = decide(replace(RULE, enabled=False), 100, None, False, T0)
    assert (d.action, d.reason, d.notify) == ("none", "disabled", None)


def test_below_threshold() -> None:
    d = decide(RULE, 4, None, False, T0)
    assert (d.action, d.reason, d.notify) == ("none", "below_threshold", None)
    assert not d.changes_state


def test_breach_without_incident_creates_and_notifies() -> None:
    d = decide(RULE, 5, None, False, T0)
    assert (d.action, d.reason, d.notify) == ("create", "created", ALERT)
    assert d.incident is not None
    assert d.incident.status == "open"
    assert d.incident.triggered_at == d.incident.last_seen_error_at == T0
    assert d.incident.error_count == 5
    assert d.last_triggered_at == T0
    assert d.fingerprint == "auth:r1"


@pytest.mark.parametrize("status", ["open", "acknowledged"])
def test_breach_with_active_incident_updates_without_notification(status: str) -> None:
    latest = incident(status, last_seen=T0 - 5 * MIN, count=6)
    # Cooldown is irrelevant while the incident is active.
    rule = replace(RULE, last_triggered_at=T0 - MIN)
    d = decide(rule, 9, latest, False, T0)
    assert (d.action, d.reason, d.notify) == ("update", "updated", None)
    assert d.incident is not None
    assert d.incident.status == status
    assert d.incident.last_seen_error_at == T0
    assert d.incident.error_count == 9
    assert d.last_triggered_at == T0 - MIN


def test_cooldown_suppresses() -> None:
    rule = replace(RULE, last_triggered_at=T0 - 14 * MIN)
    latest = incident("resolved", last_seen=T0 - 60 * MIN)
    d = decide(rule, 50, latest, False, T0)
    assert (d.action, d.reason, d.notify) == ("suppress", "cooldown", None)
    # Exactly at the end of the cooldown it no longer applies.
    d = decide(replace(RULE, last_triggered_at=T0 - 15 * MIN), 50, latest, False, T0)
    assert d.action == "reopen"


def test_quiet_period_suppresses_then_reopens() -> None:
    quiet = RULE.quiet  # 20 min
    latest = incident("resolved", last_seen=T0 - quiet + MIN)
    d = decide(RULE, 50, latest, False, T0)
    assert (d.action, d.reason, d.notify) == ("suppress", "quiet_period", None)
    d = decide(RULE, 50, latest, False, T0 + MIN)  # now - last_seen == quiet
    assert (d.action, d.reason, d.notify) == ("reopen", "reopened", REOPENED)
    assert d.incident is not None
    assert d.incident.status == "open"
    assert d.incident.triggered_at == T0 + MIN
    assert d.incident.first_triggered_at == latest.first_triggered_at
    assert d.incident.resolved_at is None and d.incident.acknowledged_at is None
    assert d.incident.reopen_count == 1
    assert d.last_triggered_at == T0 + MIN


def test_premature_resolve_is_followed_by_reopen_defect_d1() -> None:
    # Resolved one minute after the last breach while errors continue: the original
    # never reopened; we reopen once the quiet period since the last sighting passed.
    latest = incident("resolved", last_seen=T0)
    actions = [decide(RULE, 10, latest, False, T0 + k * MIN).action for k in range(1, 25)]
    assert "reopen" in actions
    assert actions.index("reopen") == 19  # k = 20 minutes = quiet period


def test_auto_resolve_after_quiet_time() -> None:
    rule = replace(RULE, auto_resolve=timedelta(minutes=30))
    latest = incident("acknowledged", last_seen=T0 - 29 * MIN)
    assert decide(rule, 0, latest, False, T0).reason == "below_threshold"
    d = decide(rule, 0, latest, False, T0 + MIN)
    assert (d.action, d.reason, d.notify) == ("auto_resolve", "auto_resolved", RESOLVED)
    assert d.incident is not None
    assert d.incident.status == "resolved"
    assert d.incident.resolved_at == T0 + MIN
    # Without auto-resolve the incident stays.
    assert decide(RULE, 0, latest, False, T0 + 600 * MIN).reason == "below_threshold"
    # A resolved incident is not resolved again.
    assert decide(rule, 0, incident("resolved"), False, T0 + 600 * MIN).action == "none"


def test_silence_blocks_create_and_reopen() -> None:
    assert decide(RULE, 50, None, True, T0).reason == "silenced"
    latest = incident("resolved", last_seen=T0 - 600 * MIN)
    d = decide(RULE, 50, latest, True, T0)
    assert (d.action, d.reason, d.notify) == ("suppress", "silenced", None)


def test_silence_keeps_tracking_an_active_incident() -> None:
    d = decide(RULE, 50, incident("open", last_seen=T0 - MIN), True, T0)
    assert (d.action, d.reason, d.notify) == ("update", "updated", None)
    rule = replace(RULE, auto_resolve=timedelta(minutes=5))
    d = decide(rule, 0, incident("open", last_seen=T0 - 10 * MIN), True, T0)
    assert (d.action, d.reason, d.notify) == ("auto_resolve", "auto_resolved", None)
    assert d.silenced


# --- properties ---------------------------------------------------------------------

STEP = st.one_of(
    st.tuples(st.just("tick"), st.integers(0, 12), st.integers(1, 30), st.booleans()),
    st.tuples(st.just("ack"), st.just(0), st.integers(0, 5), st.just(False)),
    st.tuples(st.just("resolve"), st.just(0), st.integers(0, 5), st.just(False)),
)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(STEP, min_size=1, max_size=80),
    window=st.integers(1, 20),
    cooldown=st.integers(0, 30),
    auto=st.one_of(st.none(), st.integers(1, 40)),
)
def test_random_histories_keep_the_invariants(
    steps: list[tuple[str, int, int, bool]], window: int, cooldown: int, auto: int | None
) -> None:
    """One active incident at most; notifications only with state changes; reopen after quiet."""
    rule = RuleState(
        rule_id="r",
        service="s",
        threshold=5,
        window=timedelta(minutes=window),
        cooldown=timedelta(minutes=cooldown),
        auto_resolve=None if auto is None else timedelta(minutes=auto),
    )
    incidents: list[IncidentState] = []  # the catalog of this fingerprint
    now = T0
    for kind, count, minutes, silenced in steps:
        now += timedelta(minutes=minutes)
        active = [i for i in incidents if i.active]
        latest = active[0] if active else (incidents[-1] if incidents else None)
        if kind == "ack" and active:
            incidents[incidents.index(active[0])] = replace(
                active[0], status="acknowledged", acknowledged_at=now
            )
            continue
        if kind == "resolve" and active:
            incidents[incidents.index(active[0])] = replace(
                active[0], status="resolved", resolved_at=now
            )
            continue
        if kind != "tick":
            continue
        d = decide(rule, count, latest, silenced, now)

        # A notification only with a state change, and only for these actions.
        if d.notify is not None:
            assert d.action in {"create", "reopen", "auto_resolve"}
            assert d.incident != latest
            assert not silenced
        if d.action in {"create", "reopen"}:
            assert count >= rule.threshold and not silenced
            assert latest is None or not latest.active
        if d.action == "reopen":
            assert latest is not None
            assert now - latest.last_seen_error_at >= rule.quiet
        # Liveness of D1: a breach on a resolved incident past quiet and cooldown reopens.
        if (
            latest is not None
            and latest.status == "resolved"
            and count >= rule.threshold
            and not silenced
            and now - latest.last_seen_error_at >= rule.quiet
            and (rule.last_triggered_at is None or now - rule.last_triggered_at >= rule.cooldown)
        ):
            assert d.action == "reopen"

        if d.action == "create":
            assert d.incident is not None
            incidents.append(d.incident)
        elif d.action in {"update", "reopen", "auto_resolve"}:
            assert latest is not None and d.incident is not None
            incidents[incidents.index(latest)] = d.incident
        rule = replace(rule, last_triggered_at=d.last_triggered_at)
        assert sum(1 for i in incidents if i.active) <= 1
        assert len(incidents) <= 1  # one incident per fingerprint: reopen reuses it
