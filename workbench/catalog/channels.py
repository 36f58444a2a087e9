"""Notification channels in the catalog: create, list, read, change, toggle, delete.

A save checks what the channel's type needs: a URL the webhook rule allows
(``webhook`` and ``slack``), an address and a configured ``WORKBENCH_SMTP_URL``
(``email``), and a template that compiles (``workbench.catalog.templates``).
Each refusal is a ValidationError naming the field (or the setting).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from workbench.catalog._common import load, require_aware
from workbench.catalog.models import AlertIncident, Delivery, NotificationChannel
from workbench.catalog.schemas import ChannelCreate, ChannelUpdate, check_channel_target
from workbench.catalog.webhook_targets import check_webhook_target
from workbench.errors import ValidationError

SMTP_SETTING = "WORKBENCH_SMTP_URL"


def _check_channel(
    channel_type: str,
    target: str,
    template: str | None,
    allow_private: bool,
    smtp_url: str | None,
) -> None:
    """Return if a channel of ``channel_type`` may be saved as given; ValidationError otherwise."""
    from workbench.catalog.templates import check_template

    try:
        check_channel_target(channel_type, target)
    except ValueError as exc:
        raise ValidationError("Invalid channel", {"target": [str(exc)]}) from None
    if channel_type == "email":
        if smtp_url is None:
            from workbench.config import get_settings

            smtp_url = get_settings().smtp_url
        if not smtp_url:
            raise ValidationError(
                "Invalid channel",
                {SMTP_SETTING: [f"email channels need {SMTP_SETTING} (the SMTP server) to be set"]},
            )
        from workbench.smtp import parse_smtp_url

        parse_smtp_url(smtp_url)
    else:
        _check_target(target, allow_private)
    if template:
        check_template(template)


def _check_target(url: str, allow_private: bool) -> None:
    """Return if ``url`` may be a channel target; ValidationError naming ``target`` otherwise.

    The one rule lives in :func:`workbench.catalog.webhook_targets.check_webhook_target`;
    a save applies it without DNS (the notifier applies it again, resolving the
    name, before every send); here it only gets the channel's error message.
    """
    try:
        check_webhook_target(url, allow_private=allow_private, resolver=None)
    except ValidationError as exc:
        raise ValidationError("Invalid channel", exc.details) from None


def create_channel(
    *,
    session: Session,
    data: ChannelCreate,
    now: datetime,
    allow_private: bool = True,
    smtp_url: str | None = None,
) -> NotificationChannel:
    """Return a new channel stored from ``data``; ValidationError if it may not be saved.

    ``smtp_url`` (default: ``WORKBENCH_SMTP_URL``) must be set for an email channel.
    """
    now = require_aware(now)
    _check_channel(data.type, data.target, data.template, allow_private, smtp_url)
    channel = NotificationChannel(**data.model_dump(), created_at=now)
    session.add(channel)
    session.flush()
    return channel


def list_channels(
    *, session: Session, enabled: bool | None = None
) -> Sequence[NotificationChannel]:
    """Return the channels (optionally only enabled or disabled ones), oldest first."""
    stmt = select(NotificationChannel)
    if enabled is not None:
        stmt = stmt.where(NotificationChannel.enabled == enabled)
    return session.exec(
        stmt.order_by(col(NotificationChannel.created_at), col(NotificationChannel.id))
    ).all()


def get_channel(*, session: Session, channel_id: uuid.UUID) -> NotificationChannel:
    """Return the channel ``channel_id``; raise NotFound if there is none."""
    return load(session, NotificationChannel, channel_id, "channel")


def update_channel(
    *,
    session: Session,
    channel_id: uuid.UUID,
    data: ChannelUpdate,
    allow_private: bool = True,
    smtp_url: str | None = None,
) -> NotificationChannel:
    """Return the channel after applying the fields set in ``data``; raise NotFound if unknown."""
    channel = load(session, NotificationChannel, channel_id, "channel", lock=True)
    changes = data.changes()
    if {"type", "target", "template"} & set(changes):
        _check_channel(
            changes.get("type", channel.type),
            changes.get("target", channel.target),
            changes.get("template", channel.template) if "template" in changes else None,
            allow_private,
            smtp_url,
        )
    for name, value in changes.items():
        setattr(channel, name, value)
    session.add(channel)
    session.flush()
    return channel


def set_channel_enabled(
    *, session: Session, channel_id: uuid.UUID, enabled: bool
) -> NotificationChannel:
    """Return the channel after enabling or disabling it; raise NotFound if unknown."""
    return update_channel(
        session=session, channel_id=channel_id, data=ChannelUpdate(enabled=enabled)
    )


def delete_channel(*, session: Session, channel_id: uuid.UUID) -> None:
    """Delete the channel; past deliveries stay (their ``channel_id`` becomes null). NotFound if unknown."""
    channel = load(session, NotificationChannel, channel_id, "channel")
    session.delete(channel)
    session.flush()


#: Notification types that page a channel: a channel that got one hears the resolve.
PAGING_TYPES: tuple[str, ...] = ("error_alert", "error_alert_reopened", "error_alert_repeat")
RESOLVED_TYPE = "error_alert_resolved"


def paged_channels(*, session: Session, incident_id: uuid.UUID) -> list[NotificationChannel]:
    """Return the enabled channels that were paged for the incident (any delivery of a page)."""
    paged = (
        select(Delivery.channel_id)
        .where(
            Delivery.incident_id == incident_id,
            col(Delivery.event_type).in_(PAGING_TYPES),
            col(Delivery.channel_id).is_not(None),
        )
        .distinct()
    )
    return list(
        session.exec(
            select(NotificationChannel)
            .where(col(NotificationChannel.id).in_(paged), col(NotificationChannel.enabled))
            .order_by(col(NotificationChannel.created_at), col(NotificationChannel.id))
        ).all()
    )


def queue_resolved(
    *,
    session: Session,
    incident: AlertIncident,
    now: datetime,
    reason: str,
    dashboard_url: str | None = None,
) -> int:
    """Queue an ``error_alert_resolved`` (with ``reason``) to each channel paged for ``incident``.

    Written in the caller's transaction, so the resolve and its notifications commit
    together (the outbox then delivers at least once). Returns how many were queued.
    ``dashboard_url`` defaults to ``WORKBENCH_DASHBOARD_URL``.
    """
    from workbench.catalog.payload import incident_payload

    targets = paged_channels(session=session, incident_id=incident.id)
    if not targets:
        return 0
    if dashboard_url is None:
        from workbench.config import get_settings

        dashboard_url = get_settings().dashboard_url
    payload = incident_payload(
        incident,
        event_type=RESOLVED_TYPE,
        status="resolved",
        dashboard_url=dashboard_url,
        reason=reason,
    )
    for channel in targets:
        session.add(
            Delivery(
                incident_id=incident.id,
                channel_id=channel.id,
                event_type=RESOLVED_TYPE,
                url=channel.target,
                payload=payload,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    session.flush()
    return len(targets)
