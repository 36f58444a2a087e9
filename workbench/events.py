"""Validate and parse incoming log events: pure functions over bytes and plain data.

Nothing here reads the clock or touches the disk: ``now`` is passed in. The hot
path is plain ``dict``/``isinstance`` checks and ``orjson`` (no pydantic per
event), because the ingestor must keep up with hundreds of thousands of events
per second.

An accepted event is an :data:`~workbench.lake.records.Event` tuple
``(timestamp_us, service, level, message, meta_json)``: the event time in UTC
microseconds since the epoch, the lower-cased level, and ``meta`` already
serialized as JSON text (or None). The ingestor adds ``id`` and ``received_at``
and frames them as WAL records (:mod:`workbench.lake.records`); this module only
judges them, and imports from the lake, never the other way round.

Every rejection names the field and the limit, e.g.
``"message: longer than 32768 characters (max_message_chars)"``; errors are
reported as ``{field: [messages]}`` like the original API's ``details``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from workbench.config import Settings
from workbench.errors import PayloadTooLarge, ValidationError
from workbench.lake.records import Event, to_us
from workbench.lake.schema import LEVEL_ALIASES, LEVEL_NAMES, LEVELS

Errors = dict[str, list[str]]


# The spellings clients send, mapped straight to the stored level; others are lower-cased.
LEVEL_SPELLINGS: dict[str, str] = {
    spelling: level
    for name, level in LEVEL_NAMES.items()
    for spelling in (name, name.upper(), name.capitalize())
}
_LEVEL_OF = LEVEL_SPELLINGS
_LEVELS_TEXT = f"{', '.join(LEVELS)} (also {', '.join(LEVEL_ALIASES)}; any case)"


@dataclass(frozen=True, slots=True)
class Limits:
    """The ingest limits of :class:`~workbench.config.Settings`, copied for fast access."""

    max_body_bytes: int = 10 * 1024 * 1024
    max_batch_events: int = 10_000
    max_service_chars: int = 128
    max_message_chars: int = 32_768
    max_meta_depth: int = 8
    max_meta_bytes: int = 16_384
    max_future_skew_s: int = 300
    max_past_age_s: int = 400 * 86400

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """Return the limits configured in ``settings``."""
        return cls(
            max_body_bytes=settings.max_body_bytes,
            max_batch_events=settings.max_batch_events,
            max_service_chars=settings.max_service_chars,
            max_message_chars=settings.max_message_chars,
            max_meta_depth=settings.max_meta_depth,
            max_meta_bytes=settings.max_meta_bytes,
            max_future_skew_s=settings.max_future_skew_s,
            max_past_age_s=settings.max_past_age_s,
        )


@dataclass(slots=True)
class BatchResult:
    """Outcome of validating a batch: accepted events and ``(index, errors)`` of rejected items."""

    accepted: list[Event] = field(default_factory=list)
    rejected: list[tuple[int, Errors]] = field(default_factory=list)


class NotJson:
    """Stands for an NDJSON line that is not JSON; validation rejects it with its reason."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class Checker:
    """Validates many events against one ``now``; bounds are computed once per batch."""

    __slots__ = ("limits", "now_us", "lo_us", "hi_us")

    def __init__(self, limits: Limits, now: datetime) -> None:
        self.limits = limits
        self.now_us = to_us(now)
        self.lo_us = self.now_us - limits.max_past_age_s * 1_000_000
        self.hi_us = self.now_us + limits.max_future_skew_s * 1_000_000

    def check(self, raw: object) -> tuple[Event | None, Errors | None]:
        """Return ``(event, None)`` if ``raw`` is a valid event, else ``(None, errors)``."""
        if type(raw) is not dict:
            if isinstance(raw, NotJson):
                return None, {"body": [f"not valid JSON: {raw.reason}"]}
            return None, {"body": ["an event must be a JSON object"]}
        lim = self.limits
        errors: Errors | None = None

        service = raw.get("service")
        if type(service) is not str or not service.strip():
            errors = {"service": ["service: required, a non-empty string"]}
        elif len(service) > lim.max_service_chars:
            errors = {
                "service": [
                    f"service: longer than {lim.max_service_chars} characters (max_service_chars)"
                ]
            }

        level = raw.get("level")
        if type(level) is str:
            level = LEVEL_NAMES.get(level.lower())
        if type(level) is not str:
            errors = errors or {}
            errors["level"] = [f"level: required, one of {_LEVELS_TEXT}"]

        message = raw.get("message")
        if type(message) is not str or not message:
            errors = errors or {}
            errors["message"] = ["message: required, a non-empty string"]
        elif len(message) > lim.max_message_chars:
            errors = errors or {}
            errors["message"] = [
                f"message: longer than {lim.max_message_chars} characters (max_message_chars)"
            ]

        ts = raw.get("timestamp")
        ts_us = self.now_us
        if ts is not None:
            ts_us, ts_error = self.timestamp(ts)
            if ts_error:
                errors = errors or {}
                errors["timestamp"] = [ts_error]

        meta = raw.get("meta")
        meta_json: str | None = None
        if meta is not None:
            meta_json, meta_error = self.meta(meta)
            if meta_error:
                errors = errors or {}
                errors["meta"] = [meta_error]

        if errors:
            return None, errors
        return (ts_us, service, level, message, meta_json), None  # type: ignore[return-value]

    def timestamp(self, ts: object) -> tuple[int, str | None]:
        """Return ``(epoch microseconds, None)`` for a valid timestamp, else ``(0, error)``."""
        if type(ts) is not str:
            return 0, "timestamp: must be an ISO 8601 date-time string"
        try:
            moment = datetime.fromisoformat(ts)
        except ValueError:
            return 0, f"timestamp: not an ISO 8601 date-time: {ts[:40]!r}"
        us = to_us(moment)
        lim = self.limits
        if us > self.hi_us:
            return 0, (
                f"timestamp: more than {lim.max_future_skew_s} s in the future (max_future_skew_s)"
            )
        if us < self.lo_us:
            return 0, f"timestamp: older than {lim.max_past_age_s} s (max_past_age_s)"
        return us, None

    def meta(self, meta: object) -> tuple[str | None, str | None]:
        """Return ``(JSON text, None)`` for a valid meta, else ``(None, error)``."""
        if type(meta) is not dict:
            return None, "meta: must be a JSON object"
        lim = self.limits
        try:
            text = orjson.dumps(meta)
        except orjson.JSONEncodeError as exc:
            if _too_deep(meta, lim.max_meta_depth):  # orjson stops at 255 levels
                return (
                    None,
                    f"meta: nested deeper than {lim.max_meta_depth} levels (max_meta_depth)",
                )
            return None, f"meta: not serializable as JSON: {exc}"
        if len(text) > lim.max_meta_bytes:
            return None, f"meta: larger than {lim.max_meta_bytes} bytes as JSON (max_meta_bytes)"
        # A flat meta is one level deep; otherwise nesting needs one "{" or "[" per
        # level, so few brackets prove the depth without walking the object.
        if (
            (lim.max_meta_depth < 1 or not _is_flat(meta))
            and text.count(b"{") + text.count(b"[") > lim.max_meta_depth
            and _too_deep(meta, lim.max_meta_depth)
        ):
            return None, f"meta: nested deeper than {lim.max_meta_depth} levels (max_meta_depth)"
        return text.decode(), None


def _too_deep(value: Any, budget: int) -> bool:
    """Return True if ``value`` (a dict or list) nests more than ``budget`` levels."""
    if budget <= 0:
        return True
    children = value.values() if type(value) is dict else value
    for child in children:
        t = type(child)
        if (t is dict or t is list) and _too_deep(child, budget - 1):
            return True
    return False


def validate_event(raw: object, *, now: datetime, limits: Limits) -> Event:
    """Return the accepted event for ``raw``, or raise ValidationError naming each bad field."""
    event, errors = Checker(limits, now).check(raw)
    if errors is not None or event is None:
        errors = errors or {}
        first = next(iter(errors.values()), ["invalid"])[0]
        raise ValidationError(f"Invalid log event: {first}", errors)
    return event


def validate_batch(items: Sequence[object], *, now: datetime, limits: Limits) -> BatchResult:
    """Return the accepted events and the rejected items (by index) of a batch.

    Bad items never block good ones. Raises PayloadTooLarge when the batch holds
    more than ``max_batch_events`` items.
    """
    if len(items) > limits.max_batch_events:
        raise PayloadTooLarge(
            f"batch: more than {limits.max_batch_events} events (max_batch_events)",
            {
                "batch": [
                    f"batch: {len(items)} events, more than {limits.max_batch_events} (max_batch_events)"
                ]
            },
        )
    checker = Checker(limits, now)
    check = checker.check
    timestamp = checker.timestamp
    nested_meta = checker.meta
    dumps = orjson.dumps
    now_us = checker.now_us
    max_service = limits.max_service_chars
    max_message = limits.max_message_chars
    max_meta_bytes = limits.max_meta_bytes
    flat_fits = limits.max_meta_depth >= 1  # a flat meta is one level deep
    level_of = _LEVEL_OF
    result = BatchResult()
    accepted = result.accepted
    append = accepted.append
    rejected = result.rejected
    # The loop below is check() inlined for events that are plainly valid (about a
    # quarter fewer instructions per event, no bracket counting for flat metas);
    # anything unusual, valid or not, goes through check() itself, so every event
    # is judged, and every rejection worded, alike.
    for index, raw in enumerate(items):
        if type(raw) is dict:
            try:
                service = raw["service"]
                level = level_of[raw["level"]]  # only str spellings are keys
                message = raw["message"]
            except (KeyError, TypeError):  # missing, or an unhashable level
                level = None
            if (
                level is not None
                and type(service) is str
                and type(message) is str
                and 0 < len(service) <= max_service
                and 0 < len(message) <= max_message
                and not service.isspace()  # "not service.strip()", once non-empty
            ):
                ts = raw.get("timestamp")
                meta = raw.get("meta")
                ts_error = meta_error = None
                if ts is None:
                    ts_us = now_us
                else:
                    ts_us, ts_error = timestamp(ts)
                if meta is None:
                    meta_text = None
                elif type(meta) is not dict:
                    meta_error = "not an object"
                elif flat_fits and _is_flat(meta):
                    # Within the depth limit, so only the size is left to check.
                    try:
                        text = dumps(meta)
                    except orjson.JSONEncodeError:
                        text = None
                    if text is None or len(text) > max_meta_bytes:
                        meta_error = "too large or not serializable"
                    else:
                        meta_text = text.decode()
                else:
                    meta_text, meta_error = nested_meta(meta)
                if ts_error is None and meta_error is None:
                    append((ts_us, service, level, message, meta_text))
                    continue
        event, errors = check(raw)
        if event is not None:
            append(event)
        else:
            rejected.append((index, errors or {}))
    return result


def _is_flat(meta: dict[str, Any]) -> bool:
    """Return True if no value of ``meta`` is an object or an array."""
    for value in meta.values():
        kind = type(value)
        if kind is dict or kind is list:
            return False
    return True


def parse_json(body: bytes) -> object:
    """Return the JSON value of ``body``, or raise ValidationError (field ``body``)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError("Invalid JSON body", {"body": [f"not valid JSON: {exc}"]}) from exc


def ndjson_lines(body: bytes) -> list[bytes]:
    """Return the non-blank lines of an NDJSON body; item indexes count them from 0."""
    # bytes.isspace() is bytes.strip()'s notion of blank, without copying the line.
    return [line for line in body.split(b"\n") if line and not line.isspace()]


def parse_ndjson(body: bytes) -> list[object]:
    """Return the items of an NDJSON body, one per non-blank line; bad lines become NotJson.

    Item indexes count non-blank lines from 0, so they match the array form.
    """
    return parse_lines(ndjson_lines(body))


def parse_lines(lines: Sequence[bytes]) -> list[object]:
    """Return the JSON value of each line (see :func:`ndjson_lines`), NotJson where it has none.

    Each line is parsed on its own: parsing them joined into one array costs
    about the same, and a value running over a line break could then make up
    for a line holding two values.
    """
    items: list[object] = []
    loads = orjson.loads
    for line in lines:
        try:
            items.append(loads(line))
        except orjson.JSONDecodeError as exc:
            items.append(NotJson(str(exc)))
    return items


def check_body_size(size: int, limits: Limits) -> None:
    """Raise PayloadTooLarge if a body of ``size`` bytes is over ``max_body_bytes``."""
    if size > limits.max_body_bytes:
        raise PayloadTooLarge(
            f"body: larger than {limits.max_body_bytes} bytes (max_body_bytes)",
            {"body": [f"body: larger than {limits.max_body_bytes} bytes (max_body_bytes)"]},
        )
