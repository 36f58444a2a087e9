"""Helpers shared by the catalog modules: loading by id, refusing naive times."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TypeVar

from sqlmodel import Session, SQLModel, select

from workbench.errors import NotFound

T = TypeVar("T", bound=SQLModel)


def require_aware(now: datetime, name: str = "now") -> datetime:
    """Return ``now`` in UTC; raise ValueError if it is naive (naive times never enter the catalog)."""
    if now.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (UTC)")
    return now.astimezone(UTC)


def load(session: Session, model: type[T], ident: uuid.UUID, kind: str, *, lock: bool = False) -> T:
    """Return the row of ``model`` with id ``ident``; raise NotFound(kind, ident) if there is none.

    ``lock`` takes a row lock (``SELECT ... FOR UPDATE`` on PostgreSQL) so that a
    state change does not race the evaluator; SQLite serialises writers anyway.
    """
    stmt = select(model).where(model.id == ident)  # type: ignore[attr-defined]
    if lock:
        stmt = stmt.with_for_update()
    row = session.exec(stmt.execution_options(populate_existing=True)).first()
    if row is None:
        raise NotFound(kind, ident)
    return row
