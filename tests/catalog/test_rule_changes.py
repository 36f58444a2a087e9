"""Changing what a rule watches resolves its active incident; tuning it does not (SQLite, PostgreSQL).

Service, levels or message filter changed: the open incident is about something the
rule no longer watches, and (for a new service) a new fingerprint, so no evaluator
would ever touch it again. It is resolved with a reason naming the changed fields.
Threshold, window, cooldown, auto-resolve, severity, name, enabled: the incident is
kept and the next evaluation decides.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session

from tests.catalog.conftest import NOW
from tests.catalog.factories import add_incident
from workbench.catalog import rules
from workbench.catalog.incidents import get_incident, incident_timeline
from workbench.catalog.schemas import RuleCreate, RuleUpdate

LATER = NOW + timedelta(minutes=5)


def _rule_with_incident(session: Session) -> tuple[uuid.UUID, uuid.UUID]:
    data = RuleCreate.model_validate(
        {"service": "auth-service", "threshold": 5, "windowMinutes": 10}
    )
    rule = rules.create_rule(session=session, data=data, now=NOW)
    return rule.id, add_incident(session, now=NOW, rule=rule).id


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"service": "billing"}, "service"),
        ({"levels": ["fatal"]}, "levels"),
        ({"messageContains": "timeout"}, "message filter"),
        ({"service": "billing", "levels": ["warn"]}, "service, levels"),
    ],
)
def test_changing_what_is_watched_resolves_the_active_incident(
    session: Session, change: dict[str, Any], fields: str
) -> None:
    rule_id, incident_id = _rule_with_incident(session)
    rules.update_rule(
        session=session, rule_id=rule_id, data=RuleUpdate.model_validate(change), now=LATER,
        actor="alice",
    )
    session.expire_all()
    inc = get_incident(session=session, incident_id=incident_id)
    assert (inc.status, inc.resolved_at, inc.resolved_by) == ("resolved", LATER, "alice")
    last = incident_timeline(session=session, incident_id=incident_id)[-1]
    assert (last.kind, last.data["reason"]) == ("resolved", f"rule changed: {fields}")


@pytest.mark.parametrize(
    "change",
    [
        {"threshold": 50},
        {"windowMinutes": 30},
        {"cooldownMinutes": 0},
        {"autoResolveMinutes": 60},
        {"severity": "critical", "name": "renamed"},
        {"enabled": False},
        {"service": "auth-service", "levels": ["FATAL", "error"]},  # same values: no change
    ],
)
def test_tuning_keeps_the_incident(session: Session, change: dict[str, Any]) -> None:
    rule_id, incident_id = _rule_with_incident(session)
    rules.update_rule(
        session=session, rule_id=rule_id, data=RuleUpdate.model_validate(change), now=LATER
    )
    session.expire_all()
    assert get_incident(session=session, incident_id=incident_id).status == "open"


def test_acknowledged_incident_is_resolved_too_and_history_is_left_alone(
    session: Session,
) -> None:
    rule_id, incident_id = _rule_with_incident(session)
    rule = rules.get_rule(session=session, rule_id=rule_id)
    old = add_incident(
        session, now=NOW, rule=rule, status="resolved", resolved_at=NOW, fingerprint="old"
    )
    from workbench.catalog.incidents import acknowledge_incident

    acknowledge_incident(session=session, incident_id=incident_id, actor="bob", now=NOW)
    rules.update_rule(
        session=session, rule_id=rule_id, data=RuleUpdate(service="billing"), now=LATER
    )
    session.expire_all()
    assert get_incident(session=session, incident_id=incident_id).status == "resolved"
    assert get_incident(session=session, incident_id=old.id).resolved_at == NOW
