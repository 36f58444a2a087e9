"""Incidents in the catalog: listing, timeline, acknowledge/resolve, and the one-active invariant."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from tests.catalog.conftest import NOW
from tests.catalog.factories import add_incident
from workbench.catalog import incidents
from workbench.catalog.db import session_scope
from workbench.catalog.models import AlertIncident, IncidentEvent
from workbench.catalog.schemas import IncidentPublic
from workbench.errors import InvalidTransition, NotFound, ValidationError

LATER = NOW + timedelta(minutes=3)


def test_list_newest_first_with_filters_and_limit(session: Session) -> None:
    made = [
        add_incident(session, now=NOW + timedelta(minutes=i), service=svc, status=st)
        for i, (svc, st) in enumerate(
            [("a", "resolved"), ("b", "open"), ("a", "acknowledged"), ("a", "open")]
        )
    ]
    listed = incidents.list_incidents(session=session)
    assert [i.id for i in listed] == [m.id for m in reversed(made)]
    assert [i.id for i in incidents.list_incidents(session=session, limit=2)] == [
        made[3].id,
        made[2].id,
    ]
    assert [
        i.id for i in incidents.list_incidents(session=session, service="a", status="open")
    ] == [made[3].id]
    with pytest.raises(ValidationError):
        incidents.list_incidents(session=session, status="closed")


def test_public_keys_match_the_original_api(session: Session) -> None:
    incident = add_incident(session, now=NOW)
    out = IncidentPublic.model_validate(incident).model_dump(mode="json", by_alias=True)
    original = {
        "id", "service", "fingerprint", "errorCount", "windowMinutes", "triggeredAt",
        "lastSeenErrorAt", "status", "acknowledgedAt", "resolvedAt",
    }  # fmt: skip
    assert original <= set(out)
    assert out["triggeredAt"] == "2026-11-20T12:00:00.000Z"
    assert out["acknowledgedAt"] is None and out["status"] == "open"


def test_acknowledge_then_resolve_writes_timeline(session: Session) -> None:
    incident = add_incident(session, now=NOW)
    acked = incidents.acknowledge_incident(
        session=session, incident_id=incident.id, actor="alice", now=LATER
    )
    assert (acked.status, acked.acknowledged_at, acked.acknowledged_by) == (
        "acknowledged",
        LATER,
        "alice",
    )
    # Acknowledging again is a no-op: no second event, time unchanged.
    incidents.acknowledge_incident(
        session=session, incident_id=incident.id, actor="bob", now=LATER + timedelta(minutes=1)
    )
    done = incidents.resolve_incident(
        session=session, incident_id=incident.id, actor="bob", now=LATER + timedelta(minutes=2)
    )
    assert (done.status, done.resolved_by, done.acknowledged_by) == ("resolved", "bob", "alice")
    incidents.resolve_incident(
        session=session, incident_id=incident.id, actor="carol", now=LATER + timedelta(minutes=5)
    )
    timeline = incidents.incident_timeline(session=session, incident_id=incident.id)
    assert [(e.kind, e.actor) for e in timeline] == [
        ("created", "evaluator"),
        ("acknowledged", "alice"),
        ("resolved", "bob"),
    ]
    assert timeline[2].data == {"from": "acknowledged", "to": "resolved"}


def test_resolve_straight_from_open(session: Session) -> None:
    incident = add_incident(session, now=NOW)
    done = incidents.resolve_incident(
        session=session, incident_id=incident.id, actor="api", now=LATER
    )
    assert done.status == "resolved" and done.acknowledged_at is None and done.resolved_at == LATER


def test_acknowledging_a_resolved_incident_is_a_conflict(session: Session) -> None:
    incident = add_incident(session, now=NOW, status="resolved", resolved_at=NOW)
    with pytest.raises(InvalidTransition) as err:
        incidents.acknowledge_incident(
            session=session, incident_id=incident.id, actor="api", now=LATER
        )
    assert err.value.current_state == "resolved"
    assert [
        e.kind for e in incidents.incident_timeline(session=session, incident_id=incident.id)
    ] == ["created"]


def test_unknown_incident_raises_not_found(session: Session) -> None:
    missing = uuid.uuid4()
    for call in (
        lambda: incidents.get_incident(session=session, incident_id=missing),
        lambda: incidents.incident_timeline(session=session, incident_id=missing),
        lambda: incidents.acknowledge_incident(
            session=session, incident_id=missing, actor="a", now=LATER
        ),
        lambda: incidents.resolve_incident(
            session=session, incident_id=missing, actor="a", now=LATER
        ),
    ):
        with pytest.raises(NotFound):
            call()


def test_transition_rolls_back_with_its_event(engine: Engine) -> None:
    """The status change and its timeline event commit or roll back together."""
    with session_scope(engine) as s:
        incident_id = add_incident(s, now=NOW).id
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        incidents.acknowledge_incident(session=s, incident_id=incident_id, actor="a", now=LATER)
        raise RuntimeError("crash before commit")
    with session_scope(engine) as s:
        assert incidents.get_incident(session=s, incident_id=incident_id).status == "open"
        assert s.exec(sa.select(sa.func.count()).select_from(IncidentEvent)).one()[0] == 1  # type: ignore[call-overload]


def test_partial_unique_index_allows_one_active_incident_per_fingerprint(engine: Engine) -> None:
    """The database itself refuses a second open/acknowledged incident for a fingerprint (D2)."""
    fp = "auth-service:rule-1"
    with session_scope(engine) as s:
        add_incident(s, now=NOW, fingerprint=fp, status="resolved", resolved_at=NOW)
        add_incident(s, now=NOW, fingerprint=fp, status="resolved", resolved_at=NOW)
        add_incident(s, now=NOW, fingerprint=fp, status="acknowledged")
    for status in ("open", "acknowledged"):
        with pytest.raises(sa.exc.IntegrityError), session_scope(engine) as s:
            add_incident(s, now=LATER, fingerprint=fp, status=status)
    with session_scope(engine) as s:
        add_incident(s, now=LATER, fingerprint="other:fp", status="open")
        counts = s.exec(
            sa.select(AlertIncident.status, sa.func.count())  # type: ignore[call-overload]
            .where(AlertIncident.fingerprint == fp)
            .group_by(AlertIncident.status)
        ).all()
    assert dict(counts) == {"resolved": 2, "acknowledged": 1}


def test_resolving_frees_the_fingerprint(engine: Engine) -> None:
    fp = "auth-service:rule-2"
    with session_scope(engine) as s:
        first = add_incident(s, now=NOW, fingerprint=fp)
    with session_scope(engine) as s:
        incidents.resolve_incident(session=s, incident_id=first.id, actor="api", now=LATER)
    with session_scope(engine) as s:
        add_incident(s, now=LATER, fingerprint=fp)


def test_concurrent_acknowledges_record_one_event(engine: Engine) -> None:
    """Four people click "acknowledge" at once: all succeed, one transition, one event."""
    import threading

    with session_scope(engine) as s:
        incident_id = add_incident(s, now=NOW).id
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def click(actor: str) -> None:
        try:
            barrier.wait()
            with session_scope(engine) as s:
                incidents.acknowledge_incident(
                    session=s, incident_id=incident_id, actor=actor, now=LATER
                )
        except BaseException as exc:  # collected: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=click, args=(f"u{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with session_scope(engine) as s:
        timeline = incidents.incident_timeline(session=s, incident_id=incident_id)
        incident = incidents.get_incident(session=s, incident_id=incident_id)
    acks = [e for e in timeline if e.kind == "acknowledged"]
    assert len(acks) == 1 and incident.acknowledged_by == acks[0].actor
