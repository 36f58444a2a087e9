"""Notification channels in the catalog: create, list, read, change, toggle, delete."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from workbench.catalog._common import load, require_aware
from workbench.catalog.models import NotificationChannel
from workbench.catalog.schemas import ChannelCreate, ChannelUpdate
from workbench.catalog.webhook_targets import check_webhook_target
from workbench.errors import ValidationError


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
    *, session: Session, data: ChannelCreate, now: datetime, allow_private: bool = True
) -> NotificationChannel:
    """Return a new channel stored from ``data``; ValidationError if the target is not allowed."""
    now = require_aware(now)
    _check_target(data.target, allow_private)
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
    *, session: Session, channel_id: uuid.UUID, data: ChannelUpdate, allow_private: bool = True
) -> NotificationChannel:
    """Return the channel after applying the fields set in ``data``; raise NotFound if unknown."""
    channel = load(session, NotificationChannel, channel_id, "channel", lock=True)
    changes = data.changes()
    if "target" in changes:
        _check_target(changes["target"], allow_private)
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
