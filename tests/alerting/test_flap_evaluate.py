"""Flap control (issue 15 item 3) end to end: ``workbench evaluate --now`` at successive
minutes on a real lake, a real catalog and a real loopback webhook receiver.

Every tick is its own process (a papermill run), so the pending period is carried from
tick to tick by the catalog alone (``alert_rules.pending_since``), as it is across a
scheduler restart or a fail-over to another scheduler.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.alerting.conftest import T0, Receiver, add_channel, add_errors, add_rule, incidents
from tests.alerting.flap_e2e import Env, env, evaluate_at, reasons, timeline

__all__ = ["env"]

pytestmark = pytest.mark.slow

MIN = timedelta(minutes=1)


def test_a_one_tick_spike_opens_nothing_with_pending_minutes(env: Env, receiver: Receiver) -> None:
    add_rule(env.engine, window_minutes=1, cooldown_minutes=0, pending_minutes=2)
    add_channel(env.engine, receiver.url)
    add_errors(env.lake_url, T0, 9)  # a one-minute spike
    for i in (3, 4, 5):  # then a breach that holds for 2 minutes
        add_errors(env.lake_url, T0 + i * MIN, 9)
    for i in range(6):
        evaluate_at(T0 + i * MIN)
    assert reasons(env.engine) == [
        "pending",
        "below_threshold",
        "below_threshold",
        "pending",
        "pending",
        "created",
    ]
    [incident] = incidents(env.engine)
    assert incident.triggered_at == T0 + 5 * MIN
    assert [b["type"] for b in receiver.bodies()] == ["error_alert"]
    # The timeline says the breach was held back from minute 3, and why.
    steps = [(at, kind, data) for at, kind, data in timeline(env.engine)]
    assert [(at, kind) for at, kind, _ in steps[:2]] == [
        (T0 + 3 * MIN, "pending"),
        (T0 + 5 * MIN, "created"),
    ]
    assert steps[0][2]["pendingMinutes"] == 2 and "pending period" in steps[0][2]["why"]


def test_hovering_around_the_threshold_keeps_one_incident_open(
    env: Env, receiver: Receiver
) -> None:
    add_rule(
        env.engine,
        window_minutes=1,
        cooldown_minutes=0,
        auto_resolve_minutes=1,
        recovery_threshold=3,
    )
    add_channel(env.engine, receiver.url)
    counts = [6, 4, 6, 4, 1]  # threshold 5: breach, hover, breach, hover, recovered
    for i, n in enumerate(counts):
        add_errors(env.lake_url, T0 + i * MIN, n)
    for i in range(len(counts)):
        evaluate_at(T0 + i * MIN)
    assert reasons(env.engine) == [
        "created",
        "held_above_recovery",
        "updated",
        "held_above_recovery",
        "auto_resolved",
    ]
    [incident] = incidents(env.engine)
    assert incident.status == "resolved" and incident.reopen_count == 0
    assert [b["type"] for b in receiver.bodies()] == ["error_alert", "error_alert_resolved"]
    held = [(at, data) for at, kind, data in timeline(env.engine) if kind == "held"]
    assert [at for at, _ in held] == [T0 + MIN, T0 + 3 * MIN]
    assert held[0][1]["count"] == 4 and held[0][1]["recoveryThreshold"] == 3.0
    assert "recovery threshold" in held[0][1]["why"]
