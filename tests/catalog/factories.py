"""Row builders for catalog tests (incidents are written by the evaluator in production)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Session

from workbench.catalog.models import AlertIncident, AlertRule, IncidentEvent


def add_incident(
    session: Session,
    *,
    now: datetime,
    service: str = "auth-service",
    rule: AlertRule | None = None,
    status: str = "open",
    fingerprint: str | None = None,
    **extra: Any,
) -> AlertIncident:
    """Insert and return an incident as the evaluator would create it (with its ``created`` event)."""
    rule_id = rule.id if rule is not None else None
    fp = fingerprint or f"{service}:{rule_id or uuid.uuid4()}"
    incident = AlertIncident(
        rule_id=rule_id,
        service=service,
        fingerprint=fp,
        status=status,
        error_count=extra.pop("error_count", 12),
        threshold=extra.pop("threshold", 10),
        window_minutes=extra.pop("window_minutes", 5),
        first_triggered_at=now,
        triggered_at=extra.pop("triggered_at", now),
        last_seen_error_at=now,
        created_at=now,
        **extra,
    )
    session.add(incident)
    session.flush()
    session.add(
        IncidentEvent(incident_id=incident.id, at=now, kind="created", actor="evaluator", data={})
    )
    session.flush()
    return incident
