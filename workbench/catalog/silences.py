"""Silences in the catalog: mute a service or a rule for a span of time."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from workbench.catalog._common import load, require_aware
from workbench.catalog.models import Silence
from workbench.catalog.schemas import SilenceCreate
from workbench.errors import ValidationError


def create_silence(*, session: Session, data: SilenceCreate, now: datetime) -> Silence:
    """Return a new silence from ``data`` (starting at ``now`` unless ``starts_at`` is given).

    Raises ValidationError if it would end before it starts or is already over.
    """
    now = require_aware(now)
    starts_at = data.starts_at or now
    if data.ends_at is not None:
        ends_at = data.ends_at
    else:
        assert data.duration_minutes is not None  # the schema requires one of the two
        try:
            ends_at = starts_at + timedelta(minutes=data.duration_minutes)
        except OverflowError:
            raise ValidationError(
                "Invalid silence",
                {"durationMinutes": ["ends after 9999-12-31 (UTC); give a shorter duration"]},
            ) from None
    if ends_at <= starts_at:
        raise ValidationError("Invalid silence", {"endsAt": ["must be after startsAt"]})
    if ends_at <= now:
        raise ValidationError("Invalid silence", {"endsAt": ["must be in the future"]})
    silence = Silence(
        service=data.service,
        rule_id=data.rule_id,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=data.reason,
        created_by=data.created_by,
        created_at=now,
    )
    session.add(silence)
    session.flush()
    return silence


def list_silences(*, session: Session, limit: int = 100) -> Sequence[Silence]:
    """Return at most ``limit`` silences, the latest ending first."""
    stmt = select(Silence).order_by(col(Silence.ends_at).desc(), col(Silence.id))
    return session.exec(stmt.limit(limit)).all()


def active_silences(*, session: Session, now: datetime) -> Sequence[Silence]:
    """Return the silences in force at ``now`` (``starts_at <= now < ends_at``)."""
    now = require_aware(now)
    stmt = select(Silence).where(col(Silence.starts_at) <= now, col(Silence.ends_at) > now)
    return session.exec(stmt.order_by(col(Silence.ends_at), col(Silence.id))).all()


def get_silence(*, session: Session, silence_id: uuid.UUID) -> Silence:
    """Return the silence ``silence_id``; raise NotFound if there is none."""
    return load(session, Silence, silence_id, "silence")


def delete_silence(*, session: Session, silence_id: uuid.UUID) -> None:
    """Delete the silence (ends it at once); raise NotFound if unknown."""
    silence = load(session, Silence, silence_id, "silence")
    session.delete(silence)
    session.flush()
