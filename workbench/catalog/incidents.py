"""Incidents in the catalog: list, read, timeline, and the human transitions acknowledge and resolve.

The evaluator (``workbench.alerting``) creates, updates, reopens and auto-resolves
incidents; this module holds what people do to them. Every transition writes an
``IncidentEvent`` in the same transaction as the status change.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from workbench.catalog._common import load, require_aware
from workbench.catalog.models import INCIDENT_STATUSES, AlertIncident, IncidentEvent
from workbench.errors import InvalidTransition, StorageError, ValidationError

# Events stamped with the same instant (created and notified in one tick) read in this order.
_KIND_ORDER = {
    "created": 0,
    "reopened": 1,
    "seen": 2,
    "acknowledged": 3,
    "resolved": 4,
    "auto_resolved": 4,
    "notified": 5,
}


def list_incidents(
    *,
    session: Session,
    limit: int = 100,
    status: str | None = None,
    service: str | None = None,
) -> Sequence[AlertIncident]:
    """Return at most ``limit`` incidents, newest ``triggered_at`` first, optionally filtered."""
    if status is not None and status not in INCIDENT_STATUSES:
        raise ValidationError(
            "Invalid status", {"status": [f"one of {', '.join(INCIDENT_STATUSES)}"]}
        )
    stmt = select(AlertIncident)
    if status is not None:
        stmt = stmt.where(AlertIncident.status == status)
    if service is not None:
        stmt = stmt.where(AlertIncident.service == service)
    stmt = stmt.order_by(col(AlertIncident.triggered_at).desc(), col(AlertIncident.id).desc())
    return session.exec(stmt.limit(limit)).all()


def count_incidents(
    *, session: Session, status: str | None = None, service: str | None = None
) -> int:
    """Return how many incidents there are, optionally of one status and/or service."""
    if status is not None and status not in INCIDENT_STATUSES:
        raise ValidationError(
            "Invalid status", {"status": [f"one of {', '.join(INCIDENT_STATUSES)}"]}
        )
    stmt = sa.select(sa.func.count()).select_from(AlertIncident)
    if status is not None:
        stmt = stmt.where(col(AlertIncident.status) == status)
    if service is not None:
        stmt = stmt.where(col(AlertIncident.service) == service)
    return int(session.execute(stmt).scalar_one())


def get_incident(*, session: Session, incident_id: uuid.UUID) -> AlertIncident:
    """Return the incident ``incident_id``; raise NotFound if there is none."""
    return load(session, AlertIncident, incident_id, "incident")


def incident_timeline(*, session: Session, incident_id: uuid.UUID) -> list[IncidentEvent]:
    """Return the incident's events, oldest first; raise NotFound if the incident is unknown."""
    load(session, AlertIncident, incident_id, "incident")
    events = session.exec(
        select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
    ).all()
    return sorted(events, key=lambda e: (e.at, _KIND_ORDER.get(e.kind, 9), str(e.id)))


def _transition(
    session: Session,
    incident_id: uuid.UUID,
    *,
    target: str,
    allowed_from: tuple[str, ...],
    values: dict[str, Any],
    actor: str,
    now: datetime,
    note: dict[str, Any] | None = None,
    on_change: Callable[[AlertIncident], object] | None = None,
) -> AlertIncident:
    """Move the incident to ``target`` with ``values`` and record the event; return it.

    ``on_change(incident)`` runs in the same transaction when the status really moved
    (resolve uses it to queue the ``error_alert_resolved`` notifications).

    Already at ``target``: a no-op. The UPDATE is conditional on the status just
    read, so a concurrent change (another click, the evaluator) is never
    overwritten: PostgreSQL holds a row lock from the read, and on SQLite (whose
    reads take no lock) a lost race shows as zero rows and the read is redone,
    this time inside the write transaction.
    """
    for _ in range(3):
        incident = load(session, AlertIncident, incident_id, "incident", lock=True)
        if incident.status == target:
            return incident
        if incident.status not in allowed_from:
            raise InvalidTransition(
                f"incident {incident_id} is {incident.status}; cannot move it to {target}",
                incident.status,
            )
        previous = incident.status
        result = session.execute(
            sa.update(AlertIncident)
            .where(col(AlertIncident.id) == incident_id, col(AlertIncident.status) == previous)
            .values(status=target, **values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            session.add(
                IncidentEvent(
                    incident_id=incident_id,
                    at=now,
                    kind=target,
                    actor=actor,
                    data={"from": previous, "to": target, **(note or {})},
                )
            )
            session.flush()
            moved = load(session, AlertIncident, incident_id, "incident")
            if on_change is not None:
                on_change(moved)
            return moved
    raise StorageError(f"incident {incident_id} kept changing; try again")


def acknowledge_incident(
    *, session: Session, incident_id: uuid.UUID, actor: str, now: datetime
) -> AlertIncident:
    """Return the incident acknowledged by ``actor`` at ``now``.

    Open -> acknowledged (with an ``acknowledged`` event, same transaction); already
    acknowledged is a no-op; resolved raises InvalidTransition carrying the current status.
    """
    now = require_aware(now)
    return _transition(
        session,
        incident_id,
        target="acknowledged",
        allowed_from=("open",),
        values={"acknowledged_at": now, "acknowledged_by": actor},
        actor=actor,
        now=now,
    )


def resolve_incident(
    *,
    session: Session,
    incident_id: uuid.UUID,
    actor: str,
    now: datetime,
    reason: str | None = None,
    dashboard_url: str | None = None,
) -> AlertIncident:
    """Return the incident resolved by ``actor`` at ``now``.

    Open or acknowledged -> resolved (with a ``resolved`` event, same transaction,
    carrying ``reason`` if given); already resolved is a no-op. The channels paged
    for it get an ``error_alert_resolved`` with the reason (``reason``, else
    "resolved by <actor>"), queued in the same transaction
    (:func:`workbench.catalog.channels.queue_resolved`; links use ``dashboard_url``,
    default ``WORKBENCH_DASHBOARD_URL``).
    """
    from workbench.catalog.channels import queue_resolved

    now = require_aware(now)
    return _transition(
        session,
        incident_id,
        target="resolved",
        allowed_from=("open", "acknowledged"),
        values={"resolved_at": now, "resolved_by": actor},
        actor=actor,
        now=now,
        note={"reason": reason} if reason else None,
        on_change=lambda incident: queue_resolved(
            session=session,
            incident=incident,
            now=now,
            reason=reason or f"resolved by {actor}",
            dashboard_url=dashboard_url,
        ),
    )
