"""Alert rules in the catalog: create, list, read, change, toggle, delete."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from workbench.catalog._common import load, require_aware
from workbench.catalog.incidents import resolve_incident
from workbench.catalog.models import ACTIVE_STATUSES, AlertIncident, AlertRule
from workbench.catalog.schemas import RuleCreate, RuleUpdate


def create_rule(*, session: Session, data: RuleCreate, now: datetime) -> AlertRule:
    """Return a new rule stored from ``data``, created and updated at ``now``."""
    now = require_aware(now)
    rule = AlertRule(
        **data.model_dump(exclude={"levels"}),
        levels=list(data.levels),
        created_at=now,
        updated_at=now,
    )
    session.add(rule)
    session.flush()
    return rule


def list_rules(*, session: Session, service: str | None = None) -> Sequence[AlertRule]:
    """Return every rule (optionally of one service), oldest first, as the original listed them."""
    stmt = select(AlertRule)
    if service is not None:
        stmt = stmt.where(AlertRule.service == service)
    return session.exec(stmt.order_by(col(AlertRule.created_at), col(AlertRule.id))).all()


def get_rule(*, session: Session, rule_id: uuid.UUID) -> AlertRule:
    """Return the rule ``rule_id``; raise NotFound if there is none."""
    return load(session, AlertRule, rule_id, "rule")


def update_rule(
    *, session: Session, rule_id: uuid.UUID, data: RuleUpdate, now: datetime
) -> AlertRule:
    """Return the rule after applying the fields set in ``data``; raise NotFound if unknown."""
    now = require_aware(now)
    rule = load(session, AlertRule, rule_id, "rule", lock=True)
    for name, value in data.changes().items():
        setattr(rule, name, list(value) if name == "levels" else value)
    rule.updated_at = now
    session.add(rule)
    session.flush()
    return rule


def set_rule_enabled(
    *, session: Session, rule_id: uuid.UUID, enabled: bool, now: datetime
) -> AlertRule:
    """Return the rule after enabling or disabling it; raise NotFound if unknown."""
    return update_rule(session=session, rule_id=rule_id, data=RuleUpdate(enabled=enabled), now=now)


def delete_rule(
    *, session: Session, rule_id: uuid.UUID, now: datetime | None = None, actor: str = "api"
) -> None:
    """Delete the rule; raise NotFound if unknown.

    Its incidents stay as history (their ``rule_id`` becomes null). Given ``now``,
    its active incidents are first resolved by ``actor`` (reason "rule deleted"):
    no evaluator would ever touch them again, so they would stay open forever.
    """
    rule = load(session, AlertRule, rule_id, "rule")
    if now is not None:
        now = require_aware(now)
        active = session.exec(
            select(AlertIncident.id).where(
                AlertIncident.rule_id == rule_id, col(AlertIncident.status).in_(ACTIVE_STATUSES)
            )
        ).all()
        for incident_id in active:
            resolve_incident(
                session=session,
                incident_id=incident_id,
                actor=actor,
                now=now,
                reason="rule deleted",
            )
    session.delete(rule)
    session.flush()


def list_services(*, session: Session) -> list[str]:
    """Return the sorted names of services that have rules or incidents."""
    ruled = session.exec(select(AlertRule.service).distinct()).all()
    # Incidents outlive deleted rules; their services stay pickable on the dashboard.
    seen = session.exec(select(AlertIncident.service).distinct()).all()
    return sorted(set(ruled) | set(seen))
