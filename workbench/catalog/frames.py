"""The catalog as polars DataFrames: incidents and rules for notebooks and the CLI.

Read-only queries behind the analyst helpers (``workbench.incidents()``, ``workbench.rules()``,
``workbench.find_rule()``): each takes the catalog's ``database_url`` and answers an empty
frame (or NotFound) when the catalog has no tables yet, a notebook opened before any server
ran, rather than migrating it. Times arrive parsed (``workbench.times``); every datetime
answered is aware UTC and every id a string.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from workbench import times
from workbench.catalog.db import get_engine
from workbench.catalog.models import INCIDENT_STATUSES, AlertIncident, AlertRule
from workbench.errors import NotFound, ValidationError

_INCIDENT_COLUMNS: dict[str, Any] = {
    "id": pl.String,
    "rule_id": pl.String,
    "service": pl.String,
    "fingerprint": pl.String,
    "status": pl.String,
    "severity": pl.String,
    "error_count": pl.Int64,
    "threshold": pl.Int64,
    "window_minutes": pl.Int64,
    "first_triggered_at": pl.Datetime("us", "UTC"),
    "triggered_at": pl.Datetime("us", "UTC"),
    "last_seen_error_at": pl.Datetime("us", "UTC"),
    "acknowledged_at": pl.Datetime("us", "UTC"),
    "acknowledged_by": pl.String,
    "resolved_at": pl.Datetime("us", "UTC"),
    "resolved_by": pl.String,
    "reopen_count": pl.Int64,
}
INCIDENT_SCHEMA = pl.Schema(_INCIDENT_COLUMNS)

_RULE_COLUMNS: dict[str, Any] = {
    "id": pl.String,
    "name": pl.String,
    "service": pl.String,
    "threshold": pl.Int64,
    "window_minutes": pl.Int64,
    "cooldown_minutes": pl.Int64,
    "levels": pl.List(pl.String),
    "message_contains": pl.String,
    "auto_resolve_minutes": pl.Int64,
    "severity": pl.String,
    "enabled": pl.Boolean,
    "last_triggered_at": pl.Datetime("us", "UTC"),
    "created_at": pl.Datetime("us", "UTC"),
    "updated_at": pl.Datetime("us", "UTC"),
}
RULE_SCHEMA = pl.Schema(_RULE_COLUMNS)


def _engine(database_url: str) -> Engine | None:
    """Return the catalog engine, or None when the catalog has no tables yet."""
    engine = get_engine(database_url)
    # A notebook opened before any server ran: an empty answer, not a migration.
    if not sa.inspect(engine).has_table("alert_incidents"):
        return None
    return engine


def _cell(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return times.utc(value)
    return value


def _frame(rows: Sequence[Any], schema: pl.Schema) -> pl.DataFrame:
    data = {name: [_cell(getattr(r, name)) for r in rows] for name in schema}
    return pl.DataFrame(data, schema=schema)


def _uuid(value: str | uuid.UUID, field: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError(f"{field}: not a UUID: {value!r}", {field: ["not a UUID"]}) from None


def incidents_frame(
    database_url: str,
    *,
    status: str | None = None,
    service: str | None = None,
    start: datetime | None = None,
    limit: int = 1000,
) -> pl.DataFrame:
    """Return incidents (triggered at or after ``start``), newest ``triggered_at`` first.

    Columns: :data:`INCIDENT_SCHEMA`. ValidationError for an unknown ``status``.
    """
    if status is not None and status not in INCIDENT_STATUSES:
        raise ValidationError(
            "Invalid status", {"status": [f"one of {', '.join(INCIDENT_STATUSES)}"]}
        )
    engine = _engine(database_url)
    if engine is None:
        return pl.DataFrame(schema=INCIDENT_SCHEMA)
    stmt = select(AlertIncident)
    if status is not None:
        stmt = stmt.where(AlertIncident.status == status)
    if service is not None:
        stmt = stmt.where(AlertIncident.service == service)
    if start is not None:
        stmt = stmt.where(col(AlertIncident.triggered_at) >= start)
    stmt = stmt.order_by(col(AlertIncident.triggered_at).desc()).limit(limit)
    with Session(engine) as session:
        rows = session.exec(stmt).all()
    return _frame(rows, INCIDENT_SCHEMA)


def incident_row(database_url: str, incident_id: str | uuid.UUID) -> dict[str, Any]:
    """Return one incident as a dict (the columns of :data:`INCIDENT_SCHEMA`); NotFound if missing."""
    ident = _uuid(incident_id, "incident_id")
    engine = _engine(database_url)
    row = None
    if engine is not None:
        with Session(engine) as session:
            row = session.get(AlertIncident, ident)
    if row is None:
        raise NotFound("incident", incident_id)
    return _frame([row], INCIDENT_SCHEMA).row(0, named=True)


def rules_frame(database_url: str, *, service: str | None = None) -> pl.DataFrame:
    """Return the alert rules (columns: :data:`RULE_SCHEMA`), by service then name."""
    engine = _engine(database_url)
    if engine is None:
        return pl.DataFrame(schema=RULE_SCHEMA)
    stmt = select(AlertRule)
    if service is not None:
        stmt = stmt.where(AlertRule.service == service)
    with Session(engine) as session:
        found = session.exec(stmt).all()
    found = sorted(found, key=lambda r: (r.service, r.name, str(r.id)))
    return _frame(found, RULE_SCHEMA)


def find_rule(database_url: str, ref: str | uuid.UUID) -> AlertRule:
    """Return the rule with id ``ref`` (or, failing that, the one rule named ``ref``), detached."""
    engine = _engine(database_url)
    if engine is None:
        raise NotFound("rule", ref)
    with Session(engine, expire_on_commit=False) as session:
        try:
            found = session.get(AlertRule, _uuid(ref, "rule"))
        except ValidationError:
            found = None
        if found is None and isinstance(ref, str):
            named = session.exec(select(AlertRule).where(AlertRule.name == ref)).all()
            if len(named) > 1:
                raise ValidationError(
                    f"rule: {len(named)} rules are named {ref!r}; pass the id",
                    {"rule": ["ambiguous name"]},
                )
            found = named[0] if named else None
        if found is None:
            raise NotFound("rule", ref)
        session.expunge(found)
        return found
