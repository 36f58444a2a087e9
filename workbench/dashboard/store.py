"""The dashboard's one seam to the catalog, the lake and alerting: thin calls, no decisions.

Every page reads and acts through these functions, which call the catalog
(``workbench.catalog.*``), the queries (``workbench.query.*``) and alerting;
the only query written here is the incident summary count.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from workbench.alerting import backtest as backtest_mod
from workbench.alerting import notify as notify_mod
from workbench.alerting.backtest import BacktestResult
from workbench.catalog import channels as channels_mod
from workbench.catalog import incidents as incidents_mod
from workbench.catalog import rules as rules_mod
from workbench.catalog import runs as runs_mod
from workbench.catalog.db import catalog_engine, session_scope
from workbench.catalog.models import (
    ACTIVE_STATUSES,
    AlertIncident,
    AlertRule,
    Delivery,
    EvaluationRun,
    IncidentEvent,
    NotificationChannel,
)
from workbench.catalog.schemas import ChannelCreate, RuleCreate, RuleUpdate
from workbench.config import Settings
from workbench.errors import NotFound
from workbench.explorer import search_logs as search_logs_anywhere
from workbench.query import services as query_services
from workbench.query import trends as query_trends
from workbench.query.types import SearchQuery


def prepare(settings: Settings) -> None:
    """Open the catalog (migrating it if needed) ahead of the first request; never raises.

    Pre-heated Voilà kernels call this while they wait for a visitor, so the
    first page view does not pay for connecting and checking the schema.
    """
    try:
        with session_scope(catalog_engine(settings.database_url)) as session:
            session.exec(select(EvaluationRun.id).limit(1)).first()
    except Exception:  # the page itself reports an unreachable catalog, in words
        pass


@contextmanager
def session_for(settings: Settings) -> Iterator[Session]:
    """Yield a catalog session that commits on success."""
    with session_scope(catalog_engine(settings.database_url)) as session:
        yield session


# ---------------------------------------------------------------------------
# Heartbeat
# ---------------------------------------------------------------------------


def latest_run(session: Session) -> EvaluationRun | None:
    """Return the most recent evaluation run (the alerting heartbeat), None if never run."""
    return runs_mod.latest_run(session=session)


# ---------------------------------------------------------------------------
# Incidents
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncidentCounts:
    """How many incidents are open, acknowledged, and resolved since midnight UTC."""

    open: int
    acknowledged: int
    resolved_today: int


def incident_counts(session: Session, now: datetime) -> IncidentCounts:
    """Return the summary counts of the incidents page."""
    rows = session.exec(
        select(AlertIncident.status, func.count())
        .where(col(AlertIncident.status).in_(ACTIVE_STATUSES))
        .group_by(AlertIncident.status)
    ).all()
    by = {status: int(n) for status, n in rows}
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    resolved = session.exec(
        select(func.count())
        .select_from(AlertIncident)
        .where(AlertIncident.status == "resolved")
        .where(col(AlertIncident.resolved_at) >= midnight)
    ).one()
    return IncidentCounts(by.get("open", 0), by.get("acknowledged", 0), int(resolved))


def list_incidents(
    session: Session, *, status: str | None = None, service: str | None = None, limit: int = 100
) -> list[AlertIncident]:
    """Return incidents newest first (by trigger time), optionally of one status or service."""
    return list(
        incidents_mod.list_incidents(session=session, limit=limit, status=status, service=service)
    )


def count_incidents(
    session: Session, *, status: str | None = None, service: str | None = None
) -> int:
    """Return how many incidents match the filters (to say which filter empties a list)."""
    return incidents_mod.count_incidents(session=session, status=status, service=service)


def alert_services(session: Session) -> list[str]:
    """Return the services that have rules or incidents, sorted (the incident service filter)."""
    return rules_mod.list_services(session=session)


def _uuid(value: uuid.UUID | str, kind: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        raise NotFound(kind, value) from None


def get_incident(session: Session, incident_id: uuid.UUID | str) -> AlertIncident:
    """Return one incident; NotFound when there is none with that id (or it is no id)."""
    return incidents_mod.get_incident(session=session, incident_id=_uuid(incident_id, "incident"))


def incident_timeline(session: Session, incident_id: uuid.UUID) -> list[IncidentEvent]:
    """Return an incident's timeline, oldest first."""
    return list(incidents_mod.incident_timeline(session=session, incident_id=incident_id))


def incident_deliveries(session: Session, incident_id: uuid.UUID, limit: int = 20) -> list[Delivery]:
    """Return the notifications sent for an incident, newest first."""
    return list(runs_mod.list_deliveries(session=session, incident_id=incident_id, limit=limit))


def acknowledge(
    session: Session, incident_id: uuid.UUID, *, actor: str, now: datetime
) -> AlertIncident:
    """Acknowledge an open incident; InvalidTransition when it is not open."""
    return incidents_mod.acknowledge_incident(
        session=session, incident_id=incident_id, actor=actor, now=now
    )


def resolve(session: Session, incident_id: uuid.UUID, *, actor: str, now: datetime) -> AlertIncident:
    """Resolve an open or acknowledged incident; InvalidTransition when already resolved."""
    return incidents_mod.resolve_incident(
        session=session, incident_id=incident_id, actor=actor, now=now
    )


# ---------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------


def validate_rule(form: Mapping[str, Any]) -> RuleCreate:
    """Return the validated new rule; pydantic ValidationError naming each bad field."""
    return RuleCreate.model_validate(dict(form))


def list_rules(session: Session) -> list[AlertRule]:
    """Return every rule, oldest first."""
    return list(rules_mod.list_rules(session=session))


def create_rule(session: Session, data: RuleCreate, *, now: datetime) -> AlertRule:
    """Create a rule from validated data and return it."""
    return rules_mod.create_rule(session=session, data=data, now=now)


def unsaved_rule(data: RuleCreate, *, now: datetime) -> AlertRule:
    """Return an AlertRule built from validated data, not added to any session (for backtests)."""
    return AlertRule(
        **data.model_dump(exclude={"levels"}), levels=list(data.levels), created_at=now,
        updated_at=now,
    )


def update_rule(
    session: Session, rule_id: uuid.UUID, data: RuleUpdate, *, actor: str, now: datetime
) -> rules_mod.RuleChange:
    """Change a rule; a changed service, levels or filter resolves its active incidents (returned)."""
    return rules_mod.apply_rule_change(
        session=session, rule_id=rule_id, data=data, now=now, actor=actor
    )


def validate_rule_update(form: Mapping[str, Any]) -> RuleUpdate:
    """Return the validated change of a rule; pydantic ValidationError naming each bad field."""
    return RuleUpdate.model_validate(dict(form))


def set_rule_enabled(session: Session, rule_id: uuid.UUID, enabled: bool, *, now: datetime) -> AlertRule:
    """Enable or disable a rule and return it."""
    return rules_mod.set_rule_enabled(session=session, rule_id=rule_id, enabled=enabled, now=now)


def delete_rule(session: Session, rule_id: uuid.UUID, *, actor: str, now: datetime) -> None:
    """Delete a rule: its active incidents are resolved ("rule deleted"), all keep their history."""
    rules_mod.delete_rule(session=session, rule_id=rule_id, now=now, actor=actor)


def backtest(settings: Settings, rule: AlertRule, start: datetime, end: datetime) -> BacktestResult:
    """Return what an (unsaved) rule would have done over ``[start, end]`` of the lake."""
    return backtest_mod.backtest(rule, start, end, lake_url=settings.lake_url)


# ---------------------------------------------------------------------------
# Channels
# ---------------------------------------------------------------------------


def validate_channel(form: Mapping[str, Any]) -> ChannelCreate:
    """Return the validated new channel; pydantic ValidationError naming each bad field."""
    return ChannelCreate.model_validate(dict(form))


def list_channels(session: Session) -> list[NotificationChannel]:
    """Return every channel, oldest first."""
    return list(channels_mod.list_channels(session=session))


def create_channel(
    session: Session, data: ChannelCreate, *, now: datetime, allow_private: bool = True,
    smtp_url: str | None = None,
) -> NotificationChannel:
    """Create a channel from validated data and return it (ValidationError if not allowed)."""
    return channels_mod.create_channel(
        session=session, data=data, now=now, allow_private=allow_private, smtp_url=smtp_url
    )


def preview_channel(
    session: Session, data: ChannelCreate, *, now: datetime, dashboard_url: str
) -> dict[str, Any]:
    """Return what a channel of ``data`` (not saved) would receive for the latest incident.

    The template is checked first (ValidationError naming ``template`` and the line).
    """
    from workbench.alerting.preview import render_preview
    from workbench.catalog.templates import check_template

    if data.template:
        check_template(data.template)
    channel = NotificationChannel(
        type=data.type, name=data.name, target=data.target, template=data.template
    )
    return render_preview(session=session, channel=channel, now=now, dashboard_url=dashboard_url)


def set_channel_enabled(session: Session, channel_id: uuid.UUID, enabled: bool) -> NotificationChannel:
    """Enable or disable a channel and return it."""
    return channels_mod.set_channel_enabled(session=session, channel_id=channel_id, enabled=enabled)


def send_test(
    session: Session, channel: NotificationChannel, *, now: datetime, dashboard_url: str,
    client: Any = None, allow_private: bool | None = None,
) -> Delivery:
    """Send a test notification to ``channel`` now and return its recorded Delivery."""
    return notify_mod.send_test(
        session=session, channel=channel, now=now, dashboard_url=dashboard_url, client=client,
        allow_private=allow_private,
    )


# ---------------------------------------------------------------------------
# Lake
# ---------------------------------------------------------------------------


def services(settings: Settings) -> list[str]:
    """Return the service names present in the lake, sorted."""
    return query_services.services(settings.lake_url)


def error_trend(settings: Settings, *, service: str | None, range_: str, now: datetime) -> list[Any]:
    """Return error+fatal counts per bucket (zero-filled) of ``range_`` ending at ``now``."""
    return query_trends.error_trend(settings.lake_url, service=service or None, range=range_, now=now)


def search_logs(
    settings: Settings,
    *,
    service: str | None,
    levels: Sequence[str] | None,
    start: datetime | None,
    end: datetime | None,
    text: str | None,
    page: int,
    limit: int,
) -> Any:
    """Return one newest-first page of matching log events with the total.

    Text searches go through Elasticsearch when the mirror covers the range
    (``workbench.explorer``); the answer is the same either way.
    """
    result, _source = search_logs_anywhere(settings, SearchQuery(
        service=service or None, levels=list(levels) if levels else None,
        start=start, end=end, text=text or None, page=page, limit=limit,
    ))
    return result


def report_link(settings: Settings, incident_id: uuid.UUID) -> str | None:
    """Return the link to the incident's investigation report, or None if none exists yet."""
    from workbench.notebooks import report_url

    return report_url(settings, incident_id)


def investigate(settings: Settings, incident_id: uuid.UUID) -> None:
    """Execute the investigation notebook of an incident (papermill; seconds), writing its report."""
    from workbench.reports import investigate as run_investigation

    run_investigation(str(incident_id), settings=settings)


def window_bounds(now: datetime, span: timedelta | None) -> tuple[datetime | None, datetime]:
    """Return ``(start, end)`` of the last ``span`` before ``now`` (start None = no bound)."""
    return (None if span is None else now - span), now


__all__ = [
    "IncidentCounts",
    "acknowledge",
    "alert_services",
    "backtest",
    "count_incidents",
    "create_channel",
    "create_rule",
    "delete_rule",
    "error_trend",
    "get_incident",
    "incident_counts",
    "incident_deliveries",
    "incident_timeline",
    "investigate",
    "latest_run",
    "list_channels",
    "list_incidents",
    "list_rules",
    "prepare",
    "preview_channel",
    "report_link",
    "resolve",
    "search_logs",
    "send_test",
    "services",
    "session_for",
    "set_channel_enabled",
    "set_rule_enabled",
    "unsaved_rule",
    "update_rule",
    "validate_channel",
    "validate_rule",
    "validate_rule_update",
    "window_bounds",
]
