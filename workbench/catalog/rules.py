"""Alert rules in the catalog: create, list, read, change, toggle, delete.

A rule's active incidents are resolved (with a reason, by the actor, at ``now``)
when the rule stops watching what they are about: when it is deleted, or when its
service, levels or message filter change. Threshold, window, cooldown,
auto-resolve, severity, name and enabled are tuning: the incident is kept and the
next evaluation decides (``docs/alerting.md``, "Changing a rule").
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from workbench.catalog._common import load, require_aware
from workbench.catalog.incidents import resolve_incident
from workbench.catalog.models import ACTIVE_STATUSES, AlertIncident, AlertRule
from workbench.catalog.schemas import ALL_LEVELS, RuleCreate, RuleUpdate, kind_problems
from workbench.errors import ValidationError


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


# Fields that change *what* a rule watches (and, for the service, its fingerprint).
WATCHED = {
    "service": "service",
    "levels": "levels",
    "message_contains": "message filter",
    "kind": "kind",
    "match": "match text",
}


def _watched_changes(rule: AlertRule, changes: dict[str, Any]) -> list[str]:
    """Return the names (as people say them) of the watched fields ``changes`` really alters."""
    out = []
    for name, label in WATCHED.items():
        if name not in changes:
            continue
        old, new = getattr(rule, name), changes[name]
        if name == "levels":
            differs = set(old or ()) != set(new or ())
        else:
            differs = (old or None) != (new or None)
        if differs:
            out.append(label)
    return out


def kind_changes(rule: AlertRule, data: RuleUpdate) -> dict[str, Any]:
    """Return ``data``'s changes checked against the rule's kind after the change.

    The kind-specific fields are validated on the merged rule (the stored values
    overlaid with the change): a field the kind does not use is refused when sent
    (:class:`~workbench.errors.ValidationError` naming it, a 400), cleared when the
    kind changes; the new kind's missing fields get their defaults.
    """
    changes = data.changes()
    merged = {name: getattr(rule, name) for name in RuleUpdate.model_fields}
    merged.update(changes)
    problems, store = kind_problems(merged, set(changes))
    if problems:
        raise ValidationError("Invalid rule", {name: [msg] for name, msg in problems.items()})
    for name, value in store.items():
        if getattr(rule, name) != value:
            changes[name] = value
    if merged.get("kind") == "absence" and list(rule.levels or ()) != list(ALL_LEVELS):
        changes["levels"] = list(ALL_LEVELS)
    return changes


@dataclass(frozen=True, slots=True)
class RuleChange:
    """A rule after a change, and the active incidents the change resolved (with why)."""

    rule: AlertRule
    resolved: list[uuid.UUID] = field(default_factory=list)
    reason: str | None = None


def apply_rule_change(
    *,
    session: Session,
    rule_id: uuid.UUID,
    data: RuleUpdate,
    now: datetime,
    actor: str = "api",
) -> RuleChange:
    """Apply the fields set in ``data`` and return the rule with what the change resolved.

    When the service, levels or message filter really change, the rule's active
    incidents are resolved by ``actor`` at ``now`` with the reason
    ``"rule changed: <fields>"``, in the same transaction. Raises NotFound if unknown.
    """
    now = require_aware(now)
    rule = load(session, AlertRule, rule_id, "rule", lock=True)
    changes = kind_changes(rule, data)
    watched = _watched_changes(rule, changes)
    resolved: list[uuid.UUID] = []
    reason = None
    if watched:
        reason = "rule changed: " + ", ".join(watched)
        resolved = resolve_rule_incidents(
            session=session, rule_id=rule_id, actor=actor, now=now, reason=reason
        )
    for name, value in changes.items():
        setattr(rule, name, list(value) if name == "levels" else value)
    rule.updated_at = now
    session.add(rule)
    session.flush()
    return RuleChange(rule, resolved, reason)


def update_rule(
    *,
    session: Session,
    rule_id: uuid.UUID,
    data: RuleUpdate,
    now: datetime,
    actor: str = "api",
) -> AlertRule:
    """Return the rule after :func:`apply_rule_change` (active incidents resolved if watched fields change)."""
    return apply_rule_change(
        session=session, rule_id=rule_id, data=data, now=now, actor=actor
    ).rule


def set_rule_enabled(
    *, session: Session, rule_id: uuid.UUID, enabled: bool, now: datetime
) -> AlertRule:
    """Return the rule after enabling or disabling it; raise NotFound if unknown."""
    return update_rule(session=session, rule_id=rule_id, data=RuleUpdate(enabled=enabled), now=now)


def resolve_rule_incidents(
    *, session: Session, rule_id: uuid.UUID, actor: str, now: datetime, reason: str
) -> list[uuid.UUID]:
    """Resolve every active incident of the rule (``reason`` on the timeline); return their ids."""
    now = require_aware(now)
    active = session.exec(
        select(AlertIncident.id).where(
            AlertIncident.rule_id == rule_id, col(AlertIncident.status).in_(ACTIVE_STATUSES)
        )
    ).all()
    for incident_id in active:
        resolve_incident(
            session=session, incident_id=incident_id, actor=actor, now=now, reason=reason
        )
    return list(active)


def delete_rule(*, session: Session, rule_id: uuid.UUID, now: datetime, actor: str = "api") -> None:
    """Delete the rule; raise NotFound if unknown.

    Its active incidents are first resolved by ``actor`` at ``now`` (reason "rule
    deleted"): no evaluator would ever touch them again, so they would stay open
    forever. All its incidents stay as history (their ``rule_id`` becomes null).
    The API and the dashboard both delete through here.
    """
    rule = load(session, AlertRule, rule_id, "rule")
    resolve_rule_incidents(
        session=session, rule_id=rule_id, actor=actor, now=now, reason="rule deleted"
    )
    session.delete(rule)
    session.flush()


def list_services(*, session: Session) -> list[str]:
    """Return the sorted names of services that have rules or incidents."""
    ruled = session.exec(select(AlertRule.service).distinct()).all()
    # Incidents outlive deleted rules; their services stay pickable on the dashboard.
    seen = session.exec(select(AlertIncident.service).distinct()).all()
    return sorted(set(ruled) | set(seen))
