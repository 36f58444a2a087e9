"""Notification channels in the catalog: create, list, read, change, toggle, delete."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from workbench.catalog._common import load, require_aware
from workbench.catalog.models import NotificationChannel
from workbench.catalog.schemas import ChannelCreate, ChannelUpdate
from workbench.errors import ValidationError


def is_private_host(url: str) -> bool:
    """Return True if the URL's host is ``localhost`` or a loopback/private/link-local IP literal."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: resolved at send time by the notifier, not here
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_unspecified


def _check_target(url: str, allow_private: bool) -> None:
    if not allow_private and is_private_host(url):
        raise ValidationError(
            "Invalid channel", {"target": ["webhooks to private or loopback hosts are not allowed"]}
        )


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
