"""API models of the catalog (not tables): what comes in (``*Create``/``*Update``) and goes out (``*Public``).

Python names are snake_case; the HTTP edge sees camelCase through aliases
(``windowMinutes``), and either spelling is accepted on input. Timestamps go out
as ISO 8601 UTC with millisecond precision and a ``Z`` (``2026-01-01T10:00:00.000Z``,
as the original API); timestamps coming in must carry a time zone.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake
from pydantic_core import InitErrorDetails, PydanticCustomError

from workbench.catalog.webhook_targets import check_webhook_url

Level = Literal["debug", "info", "warn", "error", "fatal"]
Severity = Literal["critical", "warning", "info"]
IncidentStatus = Literal["open", "acknowledged", "resolved"]

DEFAULT_LEVELS: tuple[Level, ...] = ("error", "fatal")
MAX_WINDOW_MINUTES = 1440
# The threshold column is a SQL INTEGER (32-bit on PostgreSQL): larger values would fail in the
# database (a 500) instead of in validation (a 400).
MAX_THRESHOLD = 2**31 - 1
MAX_COOLDOWN_MINUTES = 10080


def format_utc(value: datetime) -> str:
    """Return ``value`` as ISO 8601 UTC with milliseconds and a ``Z`` suffix."""
    if value.tzinfo is None:  # the catalog never yields naive times; refuse to guess
        raise ValueError("naive datetime cannot be serialised as UTC")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+14:00 parses, but lies before year 1 in UTC: a 400, not a 500.
        raise ValueError("out of range: must be between 0001-01-01 and 9999-12-31 in UTC") from None


# Outgoing timestamps: kept as datetime in Python, rendered "...Z" in JSON.
UTCTimestamp = Annotated[datetime, PlainSerializer(format_utc, return_type=str, when_used="json")]
# Incoming timestamps: must carry a zone (naive times never enter), normalised to UTC.
AwareUTC = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class _Edge(BaseModel):
    """Base of every API model: camelCase aliases, snake_case names accepted too."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class _Input(_Edge):
    """Base of request bodies: unknown keys are an error naming the key (typos do not pass).

    Every field also refuses NUL characters in text (PostgreSQL cannot store them: a
    500 there instead of a 400) and ``true``/``false`` where a number is expected
    (pydantic would read ``true`` as 1).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul_no_bool_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            types = {annotation, *get_args(annotation)}
            if bool not in types and types & {int, float}:
                raise PydanticCustomError("number_type", "must be a number, not true or false")
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise PydanticCustomError("string_nul", "must not contain NUL (\\u0000) characters")
        return value


def _normalise_levels(value: Any) -> Any:
    # Levels are case-insensitive on input, like log events; stored lower-case, deduplicated.
    if isinstance(value, list):
        seen: list[Any] = []
        for v in value:
            v = v.lower() if isinstance(v, str) else v
            if v not in seen:
                seen.append(v)
        return seen
    return value


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


# ---------------------------------------------------------------- rules

RuleKind = Literal["threshold", "ratio", "absence", "match", "new_pattern", "anomaly"]
ALL_LEVELS: tuple[Level, ...] = ("debug", "info", "warn", "error", "fatal")
MAX_BASELINE_DAYS = 28
MAX_SENSITIVITY = 100.0

#: The kind-specific fields (snake_case) and which kinds use them; each kind refuses the others.
KIND_FIELDS: dict[str, frozenset[str]] = {
    "threshold": frozenset({"message_contains"}),
    "ratio": frozenset({"min_events"}),
    "absence": frozenset(),
    "match": frozenset({"match"}),
    "new_pattern": frozenset({"baseline_days"}),
    "anomaly": frozenset({"baseline_days", "sensitivity"}),
}
KIND_SPECIFIC: frozenset[str] = frozenset().union(*KIND_FIELDS.values())
#: Defaults of the kind-specific fields, filled in when the kind uses them and they are absent.
KIND_DEFAULTS: dict[str, Any] = {"min_events": 20, "baseline_days": 7, "sensitivity": 3.0}


def kind_problems(values: dict[str, Any], given: set[str]) -> tuple[dict[str, str], dict[str, Any]]:
    """Check a rule's kind against its fields; return ``(problems, kind fields to store)``.

    ``values`` holds the rule's fields after the change (snake_case), ``given`` the
    names the caller sent. ``problems`` maps the camelCase field name to what is
    wrong (empty when the rule is valid); the second dict holds every kind-specific
    field with its value to store: defaults filled in for the kind's own fields,
    None for the fields the kind does not use (cleared when the kind changes).
    """
    kind = values.get("kind") or "threshold"
    problems: dict[str, str] = {}
    store: dict[str, Any] = {}
    own = KIND_FIELDS.get(kind, frozenset())
    for name in sorted(KIND_SPECIFIC):
        value = values.get(name)
        if name in own:
            if value is None:
                if name == "match":
                    problems["match"] = "match is required for kind match"
                value = KIND_DEFAULTS.get(name)
            store[name] = value
            continue
        if value is not None and name in given:
            users = sorted(k for k, fields in KIND_FIELDS.items() if name in fields)
            problems[to_camel(name)] = (
                f"{to_camel(name)} is not allowed for kind {kind} "
                f"(only for kind {' or '.join(users)})"
            )
        store[name] = None
    if kind == "absence" and "levels" in given:
        levels = values.get("levels") or []
        if set(levels) != set(ALL_LEVELS):
            problems["levels"] = (
                "levels is not allowed for kind absence (it counts events of every level)"
            )
    if kind == "ratio" and (values.get("threshold") or 0) > 100:
        problems["threshold"] = "threshold is a percent for kind ratio: at most 100"
    problems.update(recovery_problems(kind, values))
    return problems, store


def recovery_problems(kind: str, values: dict[str, Any]) -> dict[str, str]:
    """Check ``recoveryThreshold`` against the threshold in the kind's direction.

    Breach means "at least ``threshold``" for every kind but ``absence`` ("fewer than
    ``threshold`` events"): the recovery threshold sits on the quiet side of the
    threshold, at or below it (resolved once the value is below it), for ``absence``
    at or above it (resolved once at least that many events arrive again).
    """
    recovery, threshold = values.get("recovery_threshold"), values.get("threshold")
    if recovery is None or threshold is None:
        return {}
    if kind == "absence" and recovery < threshold:
        return {
            "recoveryThreshold": (
                f"recoveryThreshold must be at least threshold ({threshold}) for kind absence "
                "(it breaches on fewer events; it recovers once at least recoveryThreshold arrive)"
            )
        }
    if kind != "absence" and recovery > threshold:
        return {
            "recoveryThreshold": (
                f"recoveryThreshold must be at most threshold ({threshold}) for kind {kind} "
                "(it breaches at threshold or more; it recovers once below recoveryThreshold)"
            )
        }
    return {}


def _field_errors(title: str, problems: dict[str, str], values: dict[str, Any]) -> ValidationError:
    """Return a pydantic ValidationError locating each problem at its field (a 400 naming it)."""
    return ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=PydanticCustomError("value_error", message),
                loc=(field,),
                input=values.get(to_snake(field)),
            )
            for field, message in problems.items()
        ],
    )


class RuleCreate(_Input):
    """A new alert rule: page when ``service`` logs >= ``threshold`` matching events in the window."""

    service: str = Field(min_length=1, max_length=128)
    threshold: int = Field(ge=1, le=MAX_THRESHOLD)
    window_minutes: int = Field(ge=1, le=MAX_WINDOW_MINUTES)
    cooldown_minutes: int = Field(default=0, ge=0, le=MAX_COOLDOWN_MINUTES)
    name: str = Field(default="", max_length=200)
    levels: list[Level] = Field(default_factory=lambda: list(DEFAULT_LEVELS), min_length=1)
    message_contains: str | None = Field(default=None, max_length=500)
    auto_resolve_minutes: int | None = Field(default=None, ge=1, le=MAX_COOLDOWN_MINUTES)
    severity: Severity = "warning"
    enabled: bool = True
    kind: RuleKind = "threshold"
    min_events: int | None = Field(default=None, ge=1, le=MAX_THRESHOLD)
    match: str | None = Field(default=None, max_length=500)
    baseline_days: int | None = Field(default=None, ge=1, le=MAX_BASELINE_DAYS)
    sensitivity: float | None = Field(default=None, gt=0, le=MAX_SENSITIVITY)
    pending_minutes: int | None = Field(default=None, ge=1, le=MAX_COOLDOWN_MINUTES)
    repeat_minutes: int | None = Field(default=None, ge=1, le=MAX_COOLDOWN_MINUTES)
    recovery_threshold: float | None = Field(default=None, ge=0, le=MAX_THRESHOLD)

    _levels = field_validator("levels", mode="before")(_normalise_levels)
    _message = field_validator("message_contains", "match", mode="before")(_blank_to_none)

    @model_validator(mode="after")
    def _kind_fields(self) -> RuleCreate:
        values = {name: getattr(self, name) for name in type(self).model_fields}
        problems, store = kind_problems(values, set(self.model_fields_set))
        if problems:
            raise _field_errors(type(self).__name__, problems, values)
        for name, value in store.items():
            object.__setattr__(self, name, value)
        if self.kind == "absence":
            object.__setattr__(self, "levels", list(ALL_LEVELS))
        return self


# Fields of RuleUpdate that may be set to null (meaning "clear it").
_RULE_NULLABLE = (
    frozenset(
        {
            "message_contains",
            "auto_resolve_minutes",
            "pending_minutes",
            "repeat_minutes",
            "recovery_threshold",
        }
    )
    | KIND_SPECIFIC
)


class RuleUpdate(_Input):
    """A partial change of a rule; only the keys present are applied (``{"enabled": false}`` toggles)."""

    service: str | None = Field(default=None, min_length=1, max_length=128)
    threshold: int | None = Field(default=None, ge=1, le=MAX_THRESHOLD)
    window_minutes: int | None = Field(default=None, ge=1, le=MAX_WINDOW_MINUTES)
    cooldown_minutes: int | None = Field(default=None, ge=0, le=MAX_COOLDOWN_MINUTES)
    name: str | None = Field(default=None, max_length=200)
    levels: list[Level] | None = Field(default=None, min_length=1)
    message_contains: str | None = Field(default=None, max_length=500)
    auto_resolve_minutes: int | None = Field(default=None, ge=1, le=MAX_COOLDOWN_MINUTES)
    severity: Severity | None = None
    enabled: bool | None = None
    kind: RuleKind | None = None
    min_events: int | None = Field(default=None, ge=1, le=MAX_THRESHOLD)
    match: str | None = Field(default=None, max_length=500)
    baseline_days: int | None = Field(default=None, ge=1, le=MAX_BASELINE_DAYS)
    sensitivity: float | None = Field(default=None, gt=0, le=MAX_SENSITIVITY)
    pending_minutes: int | None = Field(default=None, ge=1, le=MAX_COOLDOWN_MINUTES)
    repeat_minutes: int | None = Field(default=None, ge=1, le=MAX_COOLDOWN_MINUTES)
    recovery_threshold: float | None = Field(default=None, ge=0, le=MAX_THRESHOLD)

    _levels = field_validator("levels", mode="before")(_normalise_levels)
    _message = field_validator("message_contains", "match", mode="before")(_blank_to_none)

    @model_validator(mode="after")
    def _no_null_for_required(self) -> RuleUpdate:
        if not self.model_fields_set:
            raise ValueError("no field to update")
        for name in self.model_fields_set - _RULE_NULLABLE:
            if getattr(self, name) is None:
                raise ValueError(f"{to_camel(name)} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """Return the fields the caller set (snake_case names), nulls included for clearable ones."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class RulePublic(_Edge):
    """An alert rule as the API shows it."""

    id: uuid.UUID
    name: str
    service: str
    threshold: int
    window_minutes: int
    cooldown_minutes: int
    levels: list[str]
    message_contains: str | None
    auto_resolve_minutes: int | None
    severity: str
    enabled: bool
    kind: str = "threshold"
    min_events: int | None = None
    match: str | None = None
    baseline_days: int | None = None
    sensitivity: float | None = None
    pending_minutes: int | None = None
    repeat_minutes: int | None = None
    recovery_threshold: float | None = None
    last_triggered_at: UTCTimestamp | None
    created_at: UTCTimestamp
    updated_at: UTCTimestamp


# ---------------------------------------------------------------- channels


ChannelType = Literal["webhook", "slack", "email"]
MAX_TEMPLATE_CHARS = 8000


def check_email_address(value: str) -> str:
    """Return ``value`` if it is one plain email address (``name@host``), else raise ValueError."""
    if any(c.isspace() for c in value) or any(c in value for c in ',;<>"()'):
        raise ValueError("must be one email address (name@host), no spaces, commas or brackets")
    local, at, host = value.rpartition("@")
    if not at or not local or "." not in host or host.startswith(".") or host.endswith("."):
        raise ValueError("must be an email address (name@host)")
    return value


def check_channel_target(channel_type: str, target: str) -> str:
    """Return ``target`` if it suits ``channel_type`` (URL, or address for email); else ValueError."""
    if channel_type == "email":
        return check_email_address(target)
    return check_webhook_url(target)


class ChannelCreate(_Input):
    """A new notification channel: ``webhook`` or ``slack`` (a URL) or ``email`` (an address).

    ``template`` (optional) is a Jinja2 template of the notification text, checked
    when the channel is saved (``workbench.catalog.templates``).
    """

    type: ChannelType = "webhook"
    target: str = Field(max_length=2048)
    name: str = Field(default="", max_length=200)
    secret: str | None = Field(default=None, min_length=1, max_length=256)
    template: str | None = Field(default=None, max_length=MAX_TEMPLATE_CHARS)
    enabled: bool = True

    _secret = field_validator("secret", "template", mode="before")(_blank_to_none)

    @field_validator("target")
    @classmethod
    def _target_fits_type(cls, value: str, info: ValidationInfo) -> str:
        # ``type`` is declared first, so it is validated (or failed) before ``target``.
        return check_channel_target(str(info.data.get("type", "webhook")), value)


_CHANNEL_NULLABLE = frozenset({"secret", "template"})


class ChannelUpdate(_Input):
    """A partial change of a channel (``{"enabled": false}`` toggles; ``secret``/``template: null`` remove)."""

    type: ChannelType | None = None
    # Checked against the channel's (new or current) type by workbench.catalog.channels.
    target: str | None = Field(default=None, max_length=2048)
    name: str | None = Field(default=None, max_length=200)
    secret: str | None = Field(default=None, min_length=1, max_length=256)
    template: str | None = Field(default=None, max_length=MAX_TEMPLATE_CHARS)
    enabled: bool | None = None

    _template = field_validator("template", mode="before")(_blank_to_none)

    @model_validator(mode="after")
    def _no_null_for_required(self) -> ChannelUpdate:
        if not self.model_fields_set:
            raise ValueError("no field to update")
        for name in self.model_fields_set - _CHANNEL_NULLABLE:
            if getattr(self, name) is None:
                raise ValueError(f"{to_camel(name)} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """Return the fields the caller set (snake_case names)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class ChannelPublic(_Edge):
    """A channel as the API shows it: the secret never leaves, only whether there is one."""

    id: uuid.UUID
    type: str
    name: str
    target: str
    enabled: bool
    has_secret: bool
    template: str | None = None
    created_at: UTCTimestamp

    @model_validator(mode="before")
    @classmethod
    def _secret_to_flag(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return value
        # A table row: read the attributes we show, derive has_secret, drop the secret.
        return {
            "id": value.id,
            "type": value.type,
            "name": value.name,
            "target": value.target,
            "enabled": value.enabled,
            "has_secret": bool(value.secret),
            "template": value.template,
            "created_at": value.created_at,
        }


# ---------------------------------------------------------------- incidents


class IncidentPublic(_Edge):
    """An incident with the original API's keys plus rule, severity, timeline summary fields."""

    id: uuid.UUID
    service: str
    fingerprint: str
    error_count: int
    window_minutes: int
    triggered_at: UTCTimestamp
    last_seen_error_at: UTCTimestamp
    status: str
    acknowledged_at: UTCTimestamp | None
    resolved_at: UTCTimestamp | None
    rule_id: uuid.UUID | None
    severity: str
    threshold: int
    first_triggered_at: UTCTimestamp
    acknowledged_by: str | None
    resolved_by: str | None
    reopen_count: int
    kind: str = "threshold"
    observed_value: float | None = None
    baseline_value: float | None = None
    last_notified_at: UTCTimestamp | None = None


class IncidentEventPublic(_Edge):
    """One step of an incident's timeline."""

    id: uuid.UUID
    incident_id: uuid.UUID
    at: UTCTimestamp
    kind: str
    actor: str
    data: dict[str, Any]


class DeliveryPublic(_Edge):
    """One notification in the outbox and how its sending went."""

    id: uuid.UUID
    incident_id: uuid.UUID | None
    channel_id: uuid.UUID | None
    event_type: str
    url: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: UTCTimestamp
    last_error: str | None
    response_code: int | None
    created_at: UTCTimestamp
    sent_at: UTCTimestamp | None


class IncidentDetail(IncidentPublic):
    """An incident with its timeline (oldest first) and its notifications (newest first)."""

    timeline: list[IncidentEventPublic]
    deliveries: list[DeliveryPublic]


class IncidentAction(_Input):
    """Optional body of acknowledge/resolve: who did it (defaults to ``api``)."""

    actor: str | None = Field(default=None, min_length=1, max_length=200)


# ---------------------------------------------------------------- runs and decisions


class RunPublic(_Edge):
    """One evaluation run: the alerting heartbeat."""

    id: uuid.UUID
    now: UTCTimestamp
    started_at: UTCTimestamp
    finished_at: UTCTimestamp | None
    status: str
    dry_run: bool
    rules_evaluated: int
    outcomes: dict[str, int]
    error: str | None
    notebook_path: str | None


class DecisionPublic(_Edge):
    """Why a rule did or did not page at one evaluation."""

    id: uuid.UUID
    run_id: uuid.UUID | None
    rule_id: uuid.UUID | None
    incident_id: uuid.UUID | None
    at: UTCTimestamp
    fingerprint: str
    count: int
    threshold: int
    action: str
    reason: str


# ---------------------------------------------------------------- silences


class SilenceCreate(_Input):
    """A new silence for a service and/or a rule, or for everything (``matchAll: true``).

    It ends at ``endsAt`` or after ``durationMinutes``. A silence of everything (a
    maintenance window) must be asked for by name: a body that merely forgets
    ``service`` and ``ruleId`` is refused, so no typo mutes all alerting.
    """

    service: str | None = Field(default=None, min_length=1, max_length=128)
    rule_id: uuid.UUID | None = None
    match_all: bool = False
    starts_at: AwareUTC | None = None
    ends_at: AwareUTC | None = None
    duration_minutes: int | None = Field(default=None, ge=1, le=366 * 1440)
    reason: str = Field(default="", max_length=1000)
    created_by: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _scope_and_end(self) -> SilenceCreate:
        # Stored as neither service nor rule; only an explicit matchAll may ask for that.
        scoped = self.service is not None or self.rule_id is not None
        if self.match_all and scoped:
            raise ValueError("matchAll silences every rule: leave out service and ruleId")
        if not self.match_all and not scoped:
            raise ValueError(
                "a silence needs service or ruleId (or matchAll: true to silence every rule)"
            )
        if (self.ends_at is None) == (self.duration_minutes is None):
            raise ValueError("give exactly one of endsAt or durationMinutes")
        return self


class SilencePublic(_Edge):
    """A silence as the API shows it; ``matchAll`` when it has neither service nor rule."""

    id: uuid.UUID
    service: str | None
    rule_id: uuid.UUID | None
    starts_at: UTCTimestamp
    ends_at: UTCTimestamp
    reason: str
    created_by: str
    created_at: UTCTimestamp

    @computed_field  # type: ignore[prop-decorator]
    @property
    def match_all(self) -> bool:
        """Return True when the silence mutes every rule (neither service nor rule)."""
        return self.service is None and self.rule_id is None
