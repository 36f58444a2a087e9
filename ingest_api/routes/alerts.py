"""Routes of the alerts area: rules, channels, incidents, services, silences, runs, decisions.

The original API's contract is kept exactly (paths, status codes, camelCase keys,
``{"status": "updated"}`` / ``{"status": "deleted"}`` / ``{"ok": true}`` bodies).
Each route parses input, calls ``workbench.catalog`` in one transaction, and
renders the result. The transaction is opened in the route body (not in a yield
dependency) so that it commits before the response is built: a failed commit is
an error answer, never a success that did not happen. An id that is not a UUID
is answered ``400 {"error", "details": {"id": [...]}}`` like any other invalid
input; a well-formed id that does not exist is ``404``. See ``docs/catalog.md``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi import status as http_status
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy.engine import Engine

from workbench import clock
from workbench.catalog import channels, incidents, rules, runs, silences
from workbench.catalog.db import catalog_engine, session_scope
from workbench.catalog.schemas import (
    ChannelCreate,
    ChannelPublic,
    ChannelUpdate,
    DecisionPublic,
    DeliveryPublic,
    IncidentAction,
    IncidentDetail,
    IncidentEventPublic,
    IncidentPublic,
    RuleCreate,
    RulePublic,
    RuleUpdate,
    RunPublic,
    SilenceCreate,
    SilencePublic,
)
from workbench.config import Settings
from workbench.errors import NotFound
from workbench.notebooks import report_path
from workbench.security.keys import Grant
from workbench.security.webhooks import mask_target

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

UPDATED = {"status": "updated"}
DELETED = {"status": "deleted"}
OK = {"ok": True}


def request_engine(request: Request) -> Engine:
    """Return the catalog engine of the app's settings, migrated once per process."""
    # The lifespan normally migrates at start-up; catalog_engine keeps the routes
    # correct when the app is built without it (tests, embedding).
    return catalog_engine(request.app.state.settings.database_url)


EngineDep = Annotated[Engine, Depends(request_engine)]


def _shows_targets(request: Request) -> bool:
    """Return True if the caller may see webhook URLs whole: an ``admin`` key, or the open mode.

    Webhook URLs often hold their secret in the path or query, so a ``read`` key
    sees them masked (:func:`~workbench.security.webhooks.mask_target`).
    """
    grant: Grant | None = getattr(request.state, "api_key", None)
    # No grant: the API is open (no keys, loopback), where everyone is admin anyway.
    return grant is None or grant.allows("admin")


def _channel_view(channel: ChannelPublic, whole: bool) -> ChannelPublic:
    return channel if whole else channel.model_copy(update={"target": mask_target(channel.target)})


def _delivery_view(delivery: DeliveryPublic, whole: bool) -> DeliveryPublic:
    return delivery if whole else delivery.model_copy(update={"url": mask_target(delivery.url)})


# ---------------------------------------------------------------- rules


@router.get("/rules", response_model=list[RulePublic])
def list_rules(engine: EngineDep) -> list[RulePublic]:
    """List all alert rules."""
    with session_scope(engine) as session:
        return [RulePublic.model_validate(r) for r in rules.list_rules(session=session)]


@router.post("/rules", response_model=RulePublic, status_code=http_status.HTTP_201_CREATED)
def create_rule(engine: EngineDep, body: RuleCreate) -> RulePublic:
    """Create an alert rule; answers 201 with the rule."""
    with session_scope(engine) as session:
        return RulePublic.model_validate(
            rules.create_rule(session=session, data=body, now=clock.now())
        )


@router.get("/rules/{id}", response_model=RulePublic)
def get_rule(engine: EngineDep, id: uuid.UUID) -> RulePublic:
    """Return one alert rule."""
    with session_scope(engine) as session:
        return RulePublic.model_validate(rules.get_rule(session=session, rule_id=id))


@router.patch("/rules/{id}")
def update_rule(engine: EngineDep, id: uuid.UUID, body: RuleUpdate) -> dict[str, str]:
    """Toggle (``{"enabled": bool}``) or change an alert rule."""
    with session_scope(engine) as session:
        rules.update_rule(session=session, rule_id=id, data=body, now=clock.now())
    return UPDATED


@router.delete("/rules/{id}")
def delete_rule(engine: EngineDep, id: uuid.UUID) -> dict[str, str]:
    """Delete an alert rule; its active incidents are resolved, all its incidents stay."""
    with session_scope(engine) as session:
        rules.delete_rule(session=session, rule_id=id, now=clock.now())
    return DELETED


@router.get("/services", response_model=list[str])
def list_services(engine: EngineDep) -> list[str]:
    """List the services that have alert rules (or incidents), sorted."""
    with session_scope(engine) as session:
        return rules.list_services(session=session)


# ---------------------------------------------------------------- channels


@router.get("/channels", response_model=list[ChannelPublic])
def list_channels(request: Request, engine: EngineDep) -> list[ChannelPublic]:
    """List notification channels (secrets are never shown, only ``hasSecret``).

    ``target`` is whole for ``admin`` keys, ``scheme://host/***`` for ``read`` keys.
    """
    whole = _shows_targets(request)
    with session_scope(engine) as session:
        return [
            _channel_view(ChannelPublic.model_validate(c), whole)
            for c in channels.list_channels(session=session)
        ]


@router.post("/channels", response_model=ChannelPublic, status_code=http_status.HTTP_201_CREATED)
def create_channel(request: Request, engine: EngineDep, body: ChannelCreate) -> ChannelPublic:
    """Create a channel (webhook, slack or email); answers 201 with the channel.

    400 naming the field for a bad target or template (with its line), or naming
    ``WORKBENCH_SMTP_URL`` for an email channel while that setting is unset.
    """
    settings: Settings = request.app.state.settings
    with session_scope(engine) as session:
        channel = channels.create_channel(
            session=session,
            data=body,
            now=clock.now(),
            allow_private=settings.allow_private_webhooks,
            smtp_url=settings.smtp_url,
        )
        return ChannelPublic.model_validate(channel)


@router.patch("/channels/{id}")
def update_channel(
    request: Request, engine: EngineDep, id: uuid.UUID, body: ChannelUpdate
) -> dict[str, str]:
    """Toggle (``{"enabled": bool}``) or change a channel."""
    settings: Settings = request.app.state.settings
    with session_scope(engine) as session:
        channels.update_channel(
            session=session,
            channel_id=id,
            data=body,
            allow_private=settings.allow_private_webhooks,
            smtp_url=settings.smtp_url,
        )
    return UPDATED


@router.delete("/channels/{id}")
def delete_channel(engine: EngineDep, id: uuid.UUID) -> dict[str, str]:
    """Delete a channel (past deliveries stay)."""
    with session_scope(engine) as session:
        channels.delete_channel(session=session, channel_id=id)
    return DELETED


@router.post("/channels/{id}/test", response_model=None)
def test_channel(request: Request, engine: EngineDep, id: uuid.UUID) -> Any:
    """Send a test notification to the channel now; 502 with the error if it fails."""
    # Imported here: the notifier is a separate edge and pulls in the HTTP client.
    from workbench.alerting.notify import send_test

    settings: Settings = request.app.state.settings
    with session_scope(engine) as session:
        channel = channels.get_channel(session=session, channel_id=id)
        delivery = send_test(
            session=session,
            channel=channel,
            now=clock.now(),
            dashboard_url=settings.dashboard_url,
            allow_private=settings.allow_private_webhooks,
        )
        public = DeliveryPublic.model_validate(delivery)
    body: dict[str, Any] = {
        "ok": public.status == "sent",
        "delivery": public.model_dump(mode="json", by_alias=True),
    }
    if public.status != "sent":
        body["error"] = public.last_error or f"delivery {public.status}"
        return JSONResponse(body, status_code=502)
    return body


@router.post("/channels/{id}/preview")
def preview_channel(request: Request, engine: EngineDep, id: uuid.UUID) -> dict[str, Any]:
    """Render the channel's notification for the most recent incident (or a sample); sends nothing."""
    from workbench.alerting.preview import preview_channel as preview

    settings: Settings = request.app.state.settings
    with session_scope(engine) as session:
        return preview(
            session=session, channel_id=id, now=clock.now(), dashboard_url=settings.dashboard_url
        )


# ---------------------------------------------------------------- incidents


@router.get("/incidents", response_model=list[IncidentPublic])
def list_incidents(
    engine: EngineDep,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    service: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[IncidentPublic]:
    """List incidents, newest first (the last 100 unless ``limit``), optionally filtered."""
    with session_scope(engine) as session:
        found = incidents.list_incidents(
            session=session, limit=limit, status=status, service=service
        )
        return [IncidentPublic.model_validate(i) for i in found]


@router.get("/incidents/{id}", response_model=IncidentDetail)
def get_incident(request: Request, engine: EngineDep, id: uuid.UUID) -> IncidentDetail:
    """Return one incident with its timeline (oldest first) and deliveries (newest first).

    Delivery URLs are masked for ``read`` keys, as channel targets are.
    """
    whole = _shows_targets(request)
    with session_scope(engine) as session:
        incident = incidents.get_incident(session=session, incident_id=id)
        timeline = incidents.incident_timeline(session=session, incident_id=id)
        deliveries = runs.list_deliveries(session=session, incident_id=id)
        return IncidentDetail(
            **IncidentPublic.model_validate(incident).model_dump(),
            timeline=[IncidentEventPublic.model_validate(e) for e in timeline],
            deliveries=[
                _delivery_view(DeliveryPublic.model_validate(d), whole) for d in deliveries
            ],
        )


@router.get(
    "/incidents/{id}/report",
    response_class=FileResponse,
    responses={200: {"content": {"text/html": {}}, "description": "The HTML report"}},
)
def get_incident_report(request: Request, engine: EngineDep, id: uuid.UUID) -> FileResponse:
    """Return the incident's investigation report (HTML), written by ``workbench investigate ID``.

    404 when the incident does not exist, or has no report yet (the message says how to make one).
    """
    with session_scope(engine) as session:
        incidents.get_incident(session=session, incident_id=id)
    page = report_path(str(id), settings=request.app.state.settings)
    if page is None:
        raise NotFound(
            "investigation report of incident", f"{id} (run: workbench investigate {id})"
        )
    return FileResponse(page, media_type="text/html")


ActionBody = Annotated[IncidentAction | None, Body()]


@router.post("/incidents/{id}/acknowledge")
def acknowledge_incident(
    engine: EngineDep, id: uuid.UUID, body: ActionBody = None
) -> dict[str, bool]:
    """Acknowledge an open incident (idempotent); 409 with the current status if resolved."""
    actor = (body.actor if body else None) or "api"
    with session_scope(engine) as session:
        incidents.acknowledge_incident(
            session=session, incident_id=id, actor=actor, now=clock.now()
        )
    return OK


@router.post("/incidents/{id}/resolve")
def resolve_incident(
    request: Request, engine: EngineDep, id: uuid.UUID, body: ActionBody = None
) -> dict[str, bool]:
    """Resolve an open or acknowledged incident (idempotent); the paged channels hear it."""
    actor = (body.actor if body else None) or "api"
    dashboard_url = request.app.state.settings.dashboard_url
    with session_scope(engine) as session:
        incidents.resolve_incident(
            session=session,
            incident_id=id,
            actor=actor,
            now=clock.now(),
            dashboard_url=dashboard_url,
        )
    return OK


# ---------------------------------------------------------------- silences


@router.get("/silences", response_model=list[SilencePublic])
def list_silences(
    engine: EngineDep, active: bool = False, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[SilencePublic]:
    """List silences, latest ending first; ``?active=true`` for those in force now."""
    with session_scope(engine) as session:
        found = (
            silences.active_silences(session=session, now=clock.now())
            if active
            else silences.list_silences(session=session, limit=limit)
        )
        return [SilencePublic.model_validate(s) for s in found]


@router.post("/silences", response_model=SilencePublic, status_code=http_status.HTTP_201_CREATED)
def create_silence(engine: EngineDep, body: SilenceCreate) -> SilencePublic:
    """Create a silence; answers 201 with it."""
    with session_scope(engine) as session:
        return SilencePublic.model_validate(
            silences.create_silence(session=session, data=body, now=clock.now())
        )


@router.delete("/silences/{id}")
def delete_silence(engine: EngineDep, id: uuid.UUID) -> dict[str, str]:
    """Delete (end) a silence."""
    with session_scope(engine) as session:
        silences.delete_silence(session=session, silence_id=id)
    return DELETED


# ---------------------------------------------------------------- runs, decisions, deliveries


@router.get("/runs", response_model=list[RunPublic])
def list_runs(
    engine: EngineDep, limit: Annotated[int, Query(ge=1, le=1000)] = 20
) -> list[RunPublic]:
    """List the latest evaluation runs, newest first (the alerting heartbeat)."""
    with session_scope(engine) as session:
        return [RunPublic.model_validate(r) for r in runs.list_runs(session=session, limit=limit)]


@router.get("/runs/latest", response_model=RunPublic | None)
def latest_run(engine: EngineDep) -> RunPublic | None:
    """Return the latest evaluation run, or null before the first one."""
    with session_scope(engine) as session:
        run = runs.latest_run(session=session)
        return None if run is None else RunPublic.model_validate(run)


@router.get("/decisions", response_model=list[DecisionPublic])
def list_decisions(
    engine: EngineDep,
    rule_id: Annotated[uuid.UUID | None, Query(alias="ruleId")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DecisionPublic]:
    """List evaluation decisions, newest first, optionally of one rule (``?ruleId=``)."""
    with session_scope(engine) as session:
        found = runs.list_decisions(session=session, rule_id=rule_id, limit=limit)
        return [DecisionPublic.model_validate(d) for d in found]


@router.get("/deliveries", response_model=list[DeliveryPublic])
def list_deliveries(
    request: Request,
    engine: EngineDep,
    incident_id: Annotated[uuid.UUID | None, Query(alias="incidentId")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryPublic]:
    """List notification deliveries (the outbox), newest first, optionally of one incident.

    ``url`` is masked for ``read`` keys, as channel targets are.
    """
    whole = _shows_targets(request)
    with session_scope(engine) as session:
        found = runs.list_deliveries(session=session, incident_id=incident_id, limit=limit)
        return [_delivery_view(DeliveryPublic.model_validate(d), whole) for d in found]
