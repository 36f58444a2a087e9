"""Resolved on every path: auto-resolve, manual resolve, rule deleted, rule changed each queue an
``error_alert_resolved`` with a ``reason`` to the channels that were paged, and the outbox sends it
to a real loopback receiver."""

from __future__ import annotations

import uuid

from sqlalchemy.engine import Engine
from sqlmodel import Session

from tests.alerting.conftest import (
    Clock,
    Receiver,
    add_channel,
    add_errors,
    add_rule,
    deliveries,
    incidents,
)
from workbench.alerting.evaluate import evaluate
from workbench.alerting.notify import deliver_due
from workbench.catalog import rules
from workbench.catalog.db import session_scope
from workbench.catalog.incidents import resolve_incident
from workbench.catalog.schemas import RuleUpdate

DASH = "http://dash.example"
RESOLVED = "error_alert_resolved"


def _paged(
    engine: Engine, lake_url: str, clock: Clock, receiver: Receiver, **rule: object
) -> tuple[uuid.UUID, uuid.UUID]:
    """A rule pages one channel; a second channel is added afterwards. Return (rule id, paged id)."""
    r = add_rule(engine, **rule)
    paged = add_channel(engine, receiver.url)
    add_errors(lake_url, clock.now, 7)
    evaluate(engine=engine, lake_url=lake_url, now=clock.now, dashboard_url=DASH)
    assert [d.event_type for d in deliveries(engine)] == ["error_alert"]
    add_channel(engine, receiver.url + "/late")  # never paged for this incident
    return r.id, paged.id


def _resolved(engine: Engine) -> list[tuple[uuid.UUID | None, str]]:
    return [
        (d.channel_id, d.payload["reason"]) for d in deliveries(engine) if d.event_type == RESOLVED
    ]


def test_auto_resolve_tells_the_paged_channels_why(
    engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    _, paged = _paged(engine, lake_url, clock, receiver, auto_resolve_minutes=5)
    evaluate(engine=engine, lake_url=lake_url, now=clock.advance(20), dashboard_url=DASH)
    [inc] = incidents(engine)
    assert inc.status == "resolved"
    assert _resolved(engine) == [(paged, "auto-resolved: no matching events for 5 min")]
    deliver_due(engine=engine, now=clock.now, timeout=2)
    bodies = sorted(receiver.bodies(), key=lambda b: str(b["type"]))
    assert [b["type"] for b in bodies] == ["error_alert", RESOLVED]
    assert bodies[1]["reason"] == "auto-resolved: no matching events for 5 min"
    assert bodies[1]["status"] == "resolved"
    assert all(r["path"] == "/hook" for r in receiver.requests)


def test_manual_resolve_queues_resolved_once(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    _, paged = _paged(sqlite_engine, lake_url, clock, receiver)
    [inc] = incidents(sqlite_engine)
    for _ in range(2):  # the second resolve is a no-op: nothing more is queued
        with session_scope(sqlite_engine) as s:
            resolve_incident(
                session=s, incident_id=inc.id, actor="alice", now=clock.now, dashboard_url=DASH
            )
    assert _resolved(sqlite_engine) == [(paged, "resolved by alice")]
    deliver_due(engine=sqlite_engine, now=clock.now, timeout=2)
    [resolved] = [b for b in receiver.bodies() if b["type"] == RESOLVED]
    assert resolved["url"] == f"{DASH}/voila/render/incidents.ipynb?incident={inc.id}"


def test_manual_resolve_with_a_reason_sends_that_reason(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    _, paged = _paged(sqlite_engine, lake_url, clock, receiver)
    [inc] = incidents(sqlite_engine)
    with session_scope(sqlite_engine) as s:
        resolve_incident(
            session=s, incident_id=inc.id, actor="bob", now=clock.now, reason="deploy rolled back"
        )
    assert _resolved(sqlite_engine) == [(paged, "deploy rolled back")]


def test_rule_deleted_resolves_with_reason(
    engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    rule_id, paged = _paged(engine, lake_url, clock, receiver)
    with session_scope(engine) as s:
        rules.delete_rule(session=s, rule_id=rule_id, now=clock.now)
    assert _resolved(engine) == [(paged, "rule deleted")]


def test_rule_changed_resolves_with_reason(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    rule_id, paged = _paged(sqlite_engine, lake_url, clock, receiver)
    with session_scope(sqlite_engine) as s:
        rules.update_rule(
            session=s, rule_id=rule_id, data=RuleUpdate(service="payments"), now=clock.now
        )
    assert _resolved(sqlite_engine) == [(paged, "rule changed: service")]


def test_tuning_a_rule_resolves_nothing(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    rule_id, _ = _paged(sqlite_engine, lake_url, clock, receiver)
    with session_scope(sqlite_engine) as s:
        rules.update_rule(session=s, rule_id=rule_id, data=RuleUpdate(threshold=6), now=clock.now)
    assert _resolved(sqlite_engine) == []


def test_a_paged_channel_disabled_since_hears_nothing(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    _, paged = _paged(sqlite_engine, lake_url, clock, receiver)
    with Session(sqlite_engine) as s:
        from workbench.catalog.channels import set_channel_enabled

        set_channel_enabled(session=s, channel_id=paged, enabled=False)
        s.commit()
    [inc] = incidents(sqlite_engine)
    with session_scope(sqlite_engine) as s:
        resolve_incident(session=s, incident_id=inc.id, actor="alice", now=clock.now)
    assert _resolved(sqlite_engine) == []
