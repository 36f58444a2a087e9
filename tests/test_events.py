"""Validation and parsing of incoming events (pure: ``now`` is passed in)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from workbench.errors import PayloadTooLarge, ValidationError
from workbench.events import (
    Limits,
    NotJson,
    check_body_size,
    parse_json,
    parse_ndjson,
    validate_batch,
    validate_event,
)
from workbench.lake.records import from_us, to_us

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
LIMITS = Limits()
GOOD: dict[str, Any] = {"service": "auth-service", "level": "error", "message": "boom"}


def _with(**changes: Any) -> dict[str, Any]:
    event = dict(GOOD)
    for key, value in changes.items():
        if value is _DROP:
            event.pop(key, None)
        else:
            event[key] = value
    return event


_DROP = object()


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


# (case name, raw event, HTTP status over POST /api/logs, field, message fragment)
BAD_EVENTS: list[tuple[str, object, int, str, str]] = [
    ("not an object", ["a"], 400, "body", "must be a JSON object"),
    ("service missing", _with(service=_DROP), 400, "service", "service: required"),
    ("service empty", _with(service="  "), 400, "service", "non-empty string"),
    ("service not a string", _with(service=5), 400, "service", "non-empty string"),
    (
        "service too long",
        _with(service="s" * 129),
        400,
        "service",
        "service: longer than 128 characters (max_service_chars)",
    ),
    ("level missing", _with(level=_DROP), 400, "level", "one of debug, info, warn, error, fatal"),
    ("level unknown", _with(level="loud"), 400, "level", "level: required, one of"),
    ("level alias with a space", _with(level="warning "), 400, "level", "also warning"),
    ("level not a string", _with(level=3), 400, "level", "level: required, one of"),
    ("message missing", _with(message=_DROP), 400, "message", "message: required"),
    ("message empty", _with(message=""), 400, "message", "non-empty string"),
    (
        "message too long",
        _with(message="m" * 32_769),
        400,
        "message",
        "message: longer than 32768 characters (max_message_chars)",
    ),
    ("timestamp garbage", _with(timestamp="yesterday"), 400, "timestamp", "not an ISO 8601"),
    (
        "timestamp number",
        _with(timestamp=1700000000),
        400,
        "timestamp",
        "ISO 8601 date-time string",
    ),
    (
        "timestamp in the future",
        _with(timestamp="2026-11-26T12:05:01Z"),
        400,
        "timestamp",
        "timestamp: more than 300 s in the future (max_future_skew_s)",
    ),
    (
        "timestamp too old",
        _with(timestamp="2025-01-01T00:00:00Z"),
        400,
        "timestamp",
        "timestamp: older than 34560000 s (max_past_age_s)",
    ),
    ("meta not an object", _with(meta=[1, 2]), 400, "meta", "meta: must be a JSON object"),
    ("meta a string", _with(meta="x"), 400, "meta", "meta: must be a JSON object"),
    (
        "meta too deep",
        _with(meta=_nested(9)),
        400,
        "meta",
        "meta: nested deeper than 8 levels (max_meta_depth)",
    ),
    (
        "meta nested 300 deep",
        _with(meta=_nested(300)),
        400,
        "meta",
        "meta: nested deeper than 8 levels (max_meta_depth)",
    ),
    (
        "meta too large",
        _with(meta={"blob": "x" * 16_400}),
        400,
        "meta",
        "meta: larger than 16384 bytes as JSON (max_meta_bytes)",
    ),
]


@pytest.mark.parametrize(
    ("raw", "field", "fragment"),
    [pytest.param(raw, f, frag, id=name) for name, raw, _status, f, frag in BAD_EVENTS],
)
def test_bad_event_is_rejected_naming_field_and_limit(
    raw: object, field: str, fragment: str
) -> None:
    with pytest.raises(ValidationError) as info:
        validate_event(raw, now=NOW, limits=LIMITS)
    assert field in info.value.details
    assert any(fragment in msg for msg in info.value.details[field]), info.value.details


# Levels as shippers spell them (Python's logging, syslog, many SDKs): stored as ours.
LEVEL_ALIASES = [
    ("warning", "warn"),
    ("WARNING", "warn"),
    ("Warning", "warn"),
    ("wArNiNg", "warn"),
    ("critical", "fatal"),
    ("CRITICAL", "fatal"),
    ("Critical", "fatal"),
    ("err", "error"),
    ("ERR", "error"),
    ("Err", "error"),
]


@pytest.mark.parametrize(("spelling", "stored"), LEVEL_ALIASES)
def test_levels_as_shippers_spell_them_are_stored_as_ours(spelling: str, stored: str) -> None:
    assert validate_event(_with(level=spelling), now=NOW, limits=LIMITS)[2] == stored
    batch = validate_batch([_with(level=spelling)], now=NOW, limits=LIMITS)
    assert batch.rejected == []
    assert [event[2] for event in batch.accepted] == [stored]


def test_an_unknown_level_is_rejected_naming_the_levels_and_their_aliases() -> None:
    with pytest.raises(ValidationError) as info:
        validate_event(_with(level="loud"), now=NOW, limits=LIMITS)
    assert info.value.details["level"] == [
        "level: required, one of debug, info, warn, error, fatal "
        "(also warning, critical, err; any case)"
    ]


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as info:
        validate_event({"level": "nope", "meta": 1}, now=NOW, limits=LIMITS)
    assert set(info.value.details) == {"service", "level", "message", "meta"}


def test_good_event_is_normalised() -> None:
    event = validate_event(
        {
            **GOOD,
            "level": "WaRn",
            "timestamp": "2026-11-26T13:30:00+02:00",
            "meta": {"a": [1, {"b": 2}]},
        },
        now=NOW,
        limits=LIMITS,
    )
    ts_us, service, level, message, meta = event
    assert from_us(ts_us) == datetime(2026, 11, 26, 11, 30, tzinfo=UTC)
    assert (service, level, message) == ("auth-service", "warn", "boom")
    assert meta is not None and orjson.loads(meta) == {"a": [1, {"b": 2}]}


def test_timestamp_defaults_to_receive_time_and_naive_means_utc() -> None:
    assert validate_event(GOOD, now=NOW, limits=LIMITS)[0] == to_us(NOW)
    naive = validate_event({**GOOD, "timestamp": "2026-11-26T10:00:00"}, now=NOW, limits=LIMITS)
    assert from_us(naive[0]) == datetime(2026, 11, 26, 10, tzinfo=UTC)


def test_limits_at_the_edge_are_accepted() -> None:
    edge = {
        **GOOD,
        "service": "s" * 128,
        "message": "m" * 32_768,
        "meta": _nested(8),
        "timestamp": (NOW + timedelta(seconds=300)).isoformat(),
    }
    assert validate_event(edge, now=NOW, limits=LIMITS)[1] == "s" * 128


def test_limits_come_from_settings(settings: Any) -> None:
    limits = Limits.from_settings(settings.model_copy(update={"max_message_chars": 5}))
    with pytest.raises(ValidationError, match="longer than 5 characters"):
        validate_event({**GOOD, "message": "123456"}, now=NOW, limits=limits)


def test_batch_keeps_good_items_and_indexes_bad_ones() -> None:
    result = validate_batch([GOOD, {"service": "x"}, GOOD, 7], now=NOW, limits=LIMITS)
    assert len(result.accepted) == 2
    assert [i for i, _ in result.rejected] == [1, 3]


def test_batch_over_the_event_limit_is_413() -> None:
    with pytest.raises(PayloadTooLarge, match="max_batch_events"):
        validate_batch([GOOD] * 3, now=NOW, limits=Limits(max_batch_events=2))


def test_body_size_check_names_the_limit() -> None:
    check_body_size(10, Limits(max_body_bytes=10))
    with pytest.raises(PayloadTooLarge, match=r"larger than 10 bytes \(max_body_bytes\)"):
        check_body_size(11, Limits(max_body_bytes=10))


def test_ndjson_bad_line_is_an_item_and_blank_lines_are_skipped() -> None:
    items = parse_ndjson(b'{"a":1}\n\nnot json\n{"b":2}\n')
    assert items[0] == {"a": 1} and items[2] == {"b": 2}
    assert isinstance(items[1], NotJson)
    result = validate_batch(items, now=NOW, limits=LIMITS)
    assert result.rejected[1][0] == 1 and "not valid JSON" in result.rejected[1][1]["body"][0]


def test_ndjson_lines_are_parsed_one_by_one() -> None:
    # Joined into one array, a value running over a line break and two values on
    # one line made up for each other: three broken lines came out as three events.
    event = b'{"service":"a","level":"info","message":"m"}'
    items = parse_ndjson(event[:-2] + b'\ny"}\n' + event + b"," + event)
    assert len(items) == 3 and all(isinstance(item, NotJson) for item in items)


def test_invalid_json_body_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as info:
        parse_json(b"{nope")
    assert "body" in info.value.details
