"""The catalog tables (SQLModel): rules, channels, incidents and everything around them.

Python attribute names are snake_case; camelCase exists only at the HTTP edge.
Every timestamp is timezone-aware UTC (``UTCDateTime``). Ids are UUIDs.
The partial unique index ``uq_incident_active_fingerprint`` holds the invariant
"at most one open or acknowledged incident per fingerprint" in the database.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from workbench import clock
from workbench.catalog.locks import node_name
from workbench.catalog.types import UTCDateTime

ACTIVE_STATUSES: tuple[str, ...] = ("open", "acknowledged")
INCIDENT_STATUSES: tuple[str, ...] = ("open", "acknowledged", "resolved")
SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


RULE_KINDS: tuple[str, ...] = ("threshold", "ratio", "absence", "match", "new_pattern", "anomaly")


class AlertRule(SQLModel, table=True):
    """An alert rule of one ``kind`` (default ``threshold``: ``service`` logs >= ``threshold``
    matching events in the window; the other kinds in ``docs/alerting.md``, "Rule kinds")."""

    __tablename__ = "alert_rules"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(default="", max_length=200)
    service: str = Field(index=True, max_length=128)
    threshold: int
    window_minutes: int
    cooldown_minutes: int = 0
    levels: list[str] = Field(
        default_factory=lambda: ["error", "fatal"], sa_column=sa.Column(sa.JSON, nullable=False)
    )
    message_contains: str | None = Field(default=None, max_length=500)
    auto_resolve_minutes: int | None = None
    severity: str = Field(default="warning", max_length=16)
    enabled: bool = True
    #: threshold | ratio | absence | match | new_pattern | anomaly (migration 0005).
    kind: str = Field(
        default="threshold",
        sa_column=sa.Column(sa.String(16), nullable=False, server_default="threshold"),
    )
    min_events: int | None = None  # ratio
    match: str | None = Field(default=None, max_length=500)  # match (case-insensitive)
    baseline_days: int | None = None  # new_pattern, anomaly
    sensitivity: float | None = None  # anomaly
    #: Flap control and re-notify (migration 0006; ``docs/alerting.md``, "Flap control"):
    #: the breach must hold this long before an incident opens (None: at once) ...
    pending_minutes: int | None = None
    #: ... re-page an open, unacknowledged incident every N minutes (None: never) ...
    repeat_minutes: int | None = None
    #: ... and resolve only once the value is past this (None: the threshold).
    recovery_threshold: float | None = None
    #: Pending state: the tick the current unbroken breach was first seen (None: no breach
    #: pending). In the catalog, so a restarted or another (HA) scheduler carries it on.
    pending_since: datetime | None = _ts()
    last_triggered_at: datetime | None = _ts()
    created_at: datetime = Field(
        default_factory=clock.now, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=clock.now, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


class NotificationChannel(SQLModel, table=True):
    """Where notifications go: ``type`` webhook or slack (a URL, ``target``) or email (an address)."""

    __tablename__ = "notification_channels"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    type: str = Field(default="webhook", max_length=32)
    name: str = Field(default="", max_length=200)
    target: str = Field(max_length=2048)  # the webhook URL (column name as the original)
    secret: str | None = Field(default=None, max_length=256)
    enabled: bool = True
    #: Optional Jinja2 template (sandboxed) of the notification text; its first line is
    #: the email subject (``workbench.catalog.templates``).
    template: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    created_at: datetime = Field(
        default_factory=clock.now, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


class AlertIncident(SQLModel, table=True):
    """One incident of a fingerprint ``{service}:{rule_id}``: open -> acknowledged -> resolved."""

    __tablename__ = "alert_incidents"
    __table_args__ = (
        sa.Index(
            "uq_incident_active_fingerprint",
            "fingerprint",
            unique=True,
            sqlite_where=sa.text("status IN ('open', 'acknowledged')"),
            postgresql_where=sa.text("status IN ('open', 'acknowledged')"),
        ),
        sa.Index("ix_incident_fingerprint_triggered", "fingerprint", "triggered_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    rule_id: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("alert_rules.id", ondelete="SET NULL"), nullable=True
        ),
    )
    service: str = Field(max_length=128, index=True)
    fingerprint: str = Field(max_length=300)
    status: str = Field(default="open", max_length=16, index=True)
    severity: str = Field(default="warning", max_length=16)
    error_count: int = 0
    threshold: int = 0
    window_minutes: int = 0
    first_triggered_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    triggered_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    last_seen_error_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    acknowledged_at: datetime | None = _ts()
    acknowledged_by: str | None = Field(default=None, max_length=200)
    resolved_at: datetime | None = _ts()
    resolved_by: str | None = Field(default=None, max_length=200)
    reopen_count: int = 0
    #: The rule's kind, what it observed (count, or percent for ratio) and, for ratio and
    #: anomaly, the baseline it was compared with (migration 0005).
    kind: str = Field(
        default="threshold",
        sa_column=sa.Column(sa.String(16), nullable=False, server_default="threshold"),
    )
    observed_value: float | None = None
    baseline_value: float | None = None
    #: When the last firing/reopened/repeat page was queued (repeats count from it; 0006).
    last_notified_at: datetime | None = _ts()
    created_at: datetime = Field(
        default_factory=clock.now, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


class IncidentEvent(SQLModel, table=True):
    """One step of an incident's timeline: created, seen, acknowledged, resolved, reopened, notified."""

    __tablename__ = "incident_events"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    incident_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("alert_incidents.id", ondelete="CASCADE"), nullable=False,
            index=True,
        )
    )
    at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    kind: str = Field(max_length=32)
    actor: str = Field(default="evaluator", max_length=200)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))


class Delivery(SQLModel, table=True):
    """A notification in the outbox: written with the incident change, then sent and retried."""

    __tablename__ = "notification_deliveries"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    incident_id: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("alert_incidents.id", ondelete="CASCADE"), nullable=True,
            index=True,
        ),
    )
    channel_id: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("notification_channels.id", ondelete="SET NULL"),
            nullable=True,
        ),
    )
    event_type: str = Field(max_length=64)
    url: str = Field(max_length=2048)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    status: str = Field(default="pending", max_length=16, index=True)  # pending|sent|failed
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    last_error: str | None = Field(default=None, max_length=2000)
    response_code: int | None = None
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    sent_at: datetime | None = _ts()


class EvaluationRun(SQLModel, table=True):
    """One evaluation tick: the heartbeat the dashboard shows ("alerting ran 40 s ago")."""

    __tablename__ = "evaluation_runs"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    now: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    started_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    finished_at: datetime | None = _ts()
    status: str = Field(default="running", max_length=16)  # running|ok|error
    dry_run: bool = False
    rules_evaluated: int = 0
    outcomes: dict[str, int] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    error: str | None = Field(default=None, max_length=4000)
    notebook_path: str | None = Field(default=None, max_length=1000)
    #: Which scheduler evaluated (``WORKBENCH_NODE_NAME``, default ``hostname:pid``).
    node: str | None = Field(default_factory=node_name, max_length=200)


class Decision(SQLModel, table=True):
    """Why a rule did or did not page at one tick: the answer to "why was I not paged?"."""

    __tablename__ = "evaluation_decisions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    run_id: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("evaluation_runs.id", ondelete="CASCADE"), nullable=True,
            index=True,
        ),
    )
    rule_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid, index=True))
    incident_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid))
    at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    fingerprint: str = Field(max_length=300)
    count: int
    threshold: int
    action: str = Field(max_length=32)  # none|create|update|reopen|suppress|auto_resolve
    reason: str = Field(max_length=64)


class Silence(SQLModel, table=True):
    """Mute notifications and incident creation for a service or a rule during a time span."""

    __tablename__ = "silences"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    service: str | None = Field(default=None, max_length=128)
    rule_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid, nullable=True))
    starts_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    ends_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    reason: str = Field(default="", max_length=1000)
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(
        default_factory=clock.now, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


API_KEY_SCOPES: tuple[str, ...] = ("ingest", "read", "admin")


class ApiKey(SQLModel, table=True):
    """An API key: a name, the scopes it grants, and the hash of its secret (never the secret).

    ``hash`` is the SHA-256 of the whole token. A fast hash is right here, unlike
    for passwords: tokens are 256-bit random strings (``secrets.token_urlsafe(32)``),
    so there is nothing to brute-force, and an unsalted digest can be looked up by
    index on every request. The hot path compares digests with ``hmac.compare_digest``.
    """

    __tablename__ = "api_keys"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    prefix: str = Field(max_length=16, index=True)  # first characters, shown in lists
    hash: str = Field(max_length=64, unique=True, index=True)
    scopes: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = _ts()
    last_used_at: datetime | None = _ts()
