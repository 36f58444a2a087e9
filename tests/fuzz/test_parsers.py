"""Hypothesis tests of the parsers: events, NDJSON over HTTP, OTLP JSON and protobuf.

Every input either parses or is refused with ``ValidationError`` (400 over HTTP)
whose details name a field; no other exception escapes, no 5xx, and the events
the API answered 202 for are all in the lake afterwards.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest_api.app import create_app
from tests import strategies
from workbench.config import Settings
from workbench.errors import ValidationError
from workbench.events import Limits, parse_json, parse_ndjson, validate_batch, validate_event
from workbench.lake import reader
from workbench.otlp import decode_json, decode_protobuf

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LIMITS = Limits()
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = strategies.json_values(json_scalars, max_size=4, key_size=10, max_leaves=20)
timestamps = st.one_of(
    st.text(max_size=40),
    st.integers(),
    st.floats(),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "2026-11-20T12:00:00Z",
            "2026-11-20T12:00:00",
            "2026-02-30T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "2026-11-20T12:00:00+14:00",
            "2026-11-20T12:00:00-23:59",
            "NaN",
            "2026-11-20T25:61:61Z",
            "",
            " ",
            "1e309",
            "2026-11-20T12:00:00.1234567890123Z",
        ]
    ),
)
events = (
    st.fixed_dictionaries(
        {},
        optional={
            "timestamp": timestamps,
            "service": json_values,
            "level": st.sampled_from(["info", "warn", "error", "debug", "INFO", "fatal", ""])
            | json_values,
            "message": st.text(max_size=200) | json_values,
            "meta": json_values,
        },
    )
    | json_values
)


def _named_field(exc: ValidationError) -> None:
    assert exc.details, f"no field named: {exc.message}"
    assert all(isinstance(k, str) and v for k, v in exc.details.items())


@FUZZ
@given(raw=events)
def test_validate_event_accepts_or_names_the_field(raw: Any) -> None:
    """Any JSON value: an Event, or a ValidationError naming the field."""
    try:
        validate_event(raw, now=NOW, limits=LIMITS)
    except ValidationError as exc:
        _named_field(exc)


@FUZZ
@given(items=st.lists(events, max_size=20))
def test_validate_batch_partitions_every_item(items: list[Any]) -> None:
    """A batch: every item is either accepted or rejected with its index, none lost."""
    result = validate_batch(items, now=NOW, limits=LIMITS)
    assert len(result.accepted) + len(result.rejected) == len(items)


@FUZZ
@given(body=st.binary(max_size=2000))
def test_raw_bytes_parse_or_validation_error(body: bytes) -> None:
    """Arbitrary bytes (non-UTF-8 included) as JSON or NDJSON: a value or ValidationError."""
    for parse in (parse_json, parse_ndjson):
        try:
            parse(body)
        except ValidationError as exc:
            _named_field(exc)


@pytest.mark.parametrize("depth", [50, 2_000, 100_000])
def test_deep_nesting_is_refused_cleanly(depth: int) -> None:
    """Deeply nested meta / bodies: refused with a ValidationError, no RecursionError."""
    body = (
        b'{"service":"s","level":"info","message":"m","meta":' + b"[" * depth + b"]" * depth + b"}"
    )
    try:
        raw = parse_json(body)
        validate_event(raw, now=NOW, limits=LIMITS)
    except ValidationError as exc:
        _named_field(exc)
    else:
        pytest.fail("a meta deeper than the limit was accepted")


def test_huge_message_is_refused_naming_message() -> None:
    """A message over ``max_message_chars``: refused, the error names ``message``."""
    raw = {"service": "s", "level": "info", "message": "x" * (LIMITS.max_message_chars + 1)}
    with pytest.raises(ValidationError) as info:
        validate_event(raw, now=NOW, limits=LIMITS)
    assert "message" in json.dumps(info.value.details)


@FUZZ
@given(value=json_values)
def test_otlp_json_shapes(value: Any) -> None:
    """Any JSON document (including garbage shapes) sent as OTLP JSON: events or ValidationError."""
    try:
        decode_json(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
    except ValidationError as exc:
        _named_field(exc)
    except orjson.JSONEncodeError:
        pass  # hypothesis made something JSON cannot hold (NaN is fine; ints > 64 bit are not)


def _otlp_doc(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceLogs": [{"resource": {"attributes": []}, "scopeLogs": [{"logRecords": [record]}]}]
    }


@FUZZ
@given(
    record=st.dictionaries(
        st.sampled_from(
            [
                "timeUnixNano",
                "observedTimeUnixNano",
                "severityNumber",
                "severityText",
                "body",
                "attributes",
                "traceId",
                "spanId",
            ]
        ),
        json_values,
        max_size=8,
    )
)
def test_otlp_json_log_records(record: dict[str, Any]) -> None:
    """A structurally valid export with fuzzed record fields: events or ValidationError."""
    try:
        decode_json(orjson.dumps(_otlp_doc(record), option=orjson.OPT_NON_STR_KEYS))
    except ValidationError as exc:
        _named_field(exc)
    except orjson.JSONEncodeError:
        pass


@FUZZ
@given(body=st.binary(max_size=2000))
def test_otlp_protobuf_garbage(body: bytes) -> None:
    """Arbitrary bytes as OTLP protobuf: events or ValidationError, nothing else."""
    try:
        decode_protobuf(body)
    except ValidationError as exc:
        _named_field(exc)


def _line() -> st.SearchStrategy[bytes]:
    valid = st.builds(
        lambda m: orjson.dumps({"service": "fuzz", "level": "info", "message": m}),
        st.text(max_size=50),
    )
    junk = st.binary(max_size=60).filter(lambda b: b"\n" not in b)
    other = events.map(
        lambda v: orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS) if _encodable(v) else b"{"
    )
    return valid | junk | other


def _encodable(v: Any) -> bool:
    try:
        orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return False
    return True


def test_http_bodies_never_5xx_and_nothing_accepted_is_lost(tmp_path: Path) -> None:
    """NDJSON, JSON and OTLP bodies of fuzzed lines over HTTP (TestClient, whole app).

    Proves: only 200/202/400/413/415 answers; every 4xx body of ``/api/logs`` has
    an error message; the rows in the lake after a flush equal the events
    answered accepted (at least that many when a fuzzed OTLP body was accepted).
    """
    data = tmp_path / "data"
    data.mkdir()
    app_settings = Settings(WORKBENCH_DATA_DIR=data)  # type: ignore[call-arg]
    accepted = {"n": 0, "otlp_ok": 0}
    with TestClient(create_app(app_settings)) as client:

        @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            lines=st.lists(_line(), min_size=0, max_size=15),
            kind=st.sampled_from(["ndjson", "json", "otlp-json", "otlp-pb"]),
        )
        def post(lines: list[bytes], kind: str) -> None:
            if kind == "ndjson":
                r = client.post(
                    "/api/logs",
                    content=b"\n".join(lines),
                    headers={"Content-Type": "application/x-ndjson"},
                )
            elif kind == "json":
                r = client.post(
                    "/api/logs",
                    content=b"[" + b",".join(lines) + b"]",
                    headers={"Content-Type": "application/json"},
                )
            elif kind == "otlp-json":
                r = client.post(
                    "/v1/logs",
                    content=b"".join(lines),
                    headers={"Content-Type": "application/json"},
                )
            else:
                r = client.post(
                    "/v1/logs",
                    content=b"".join(lines),
                    headers={"Content-Type": "application/x-protobuf"},
                )
            assert r.status_code in (200, 202, 400, 413, 415), (r.status_code, r.text[:300])
            if kind in ("ndjson", "json"):
                if r.status_code == 202:
                    body = r.json()
                    accepted["n"] += body.get("accepted", 1)
                else:
                    assert r.json()["error"]
            elif r.status_code == 200:
                accepted["otlp_ok"] += 1

        post()
        client.app.state.ingestor.flush()  # type: ignore[attr-defined]
        rows = reader.scan(app_settings.lake_url).collect()
    if accepted["otlp_ok"] == 0:
        assert rows.height == accepted["n"]
    else:  # fuzzed OTLP bodies that decoded to events add rows we do not count exactly
        assert rows.height >= accepted["n"]


@pytest.mark.parametrize("level", [["error"], {"x": 1}, 3, None])
def test_non_string_level_is_a_400_naming_level(settings: Settings, level: Any) -> None:
    """Regression (found by the fuzzing above): a list/object ``level`` raised TypeError -> 500."""
    with TestClient(create_app(settings)) as client:
        r = client.post("/api/logs", json={"service": "s", "level": level, "message": "m"})
    assert r.status_code == 400 and "level" in r.json()["details"]
