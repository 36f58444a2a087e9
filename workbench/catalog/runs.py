"""Evaluation runs and decisions in the catalog, read side: the heartbeat and the "why" of paging.

The evaluator writes these rows; the API, the dashboard and the CLI read them here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import Session, col, select

from workbench.catalog.models import Decision, Delivery, EvaluationRun


def latest_run(*, session: Session) -> EvaluationRun | None:
    """Return the most recently started evaluation run, or None before the first one."""
    stmt = select(EvaluationRun).order_by(
        col(EvaluationRun.started_at).desc(), col(EvaluationRun.id).desc()
    )
    return session.exec(stmt.limit(1)).first()


def list_runs(*, session: Session, limit: int = 50) -> Sequence[EvaluationRun]:
    """Return at most ``limit`` evaluation runs, newest first."""
    stmt = select(EvaluationRun).order_by(
        col(EvaluationRun.started_at).desc(), col(EvaluationRun.id).desc()
    )
    return session.exec(stmt.limit(limit)).all()


def list_decisions(
    *, session: Session, rule_id: uuid.UUID | None = None, limit: int = 100
) -> Sequence[Decision]:
    """Return at most ``limit`` decisions (optionally of one rule), newest first."""
    stmt = select(Decision)
    if rule_id is not None:
        stmt = stmt.where(Decision.rule_id == rule_id)
    stmt = stmt.order_by(col(Decision.at).desc(), col(Decision.id).desc())
    return session.exec(stmt.limit(limit)).all()


def list_deliveries(
    *, session: Session, incident_id: uuid.UUID | None = None, limit: int = 100
) -> Sequence[Delivery]:
    """Return at most ``limit`` outbox deliveries (optionally of one incident), newest first."""
    stmt = select(Delivery)
    if incident_id is not None:
        stmt = stmt.where(Delivery.incident_id == incident_id)
    stmt = stmt.order_by(col(Delivery.created_at).desc(), col(Delivery.id).desc())
    return session.exec(stmt.limit(limit)).all()
