"""OTLP log exports -> raw events: the pure mapping, JSON and protobuf encodings."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from workbench import otlp
from workbench.errors import ValidationError
from workbench.events import Limits, validate_batch

T = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)
T_NANOS = int(T.timestamp()) * 1_000_000_000 + 123_456_789
TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"


def _json_request(records: list[dict[str, Any]], service: str | None = "checkout") -> bytes:
    attrs = [{"key": "host.name", "value": {"stringValue": "web-1"}}]
    if service is not None:
        attrs.insert(0, {"key": "service.name", "value": {"stringValue": service}})
    return orjson.dumps(
        {
            "resourceLogs": [
                {
                    "resource": {"attributes": attrs},
                    "scopeLogs": [
                        {"scope": {"name": "app.payments", "version": "1.2"}, "logRecords": records}
                    ],
                }
            ]
        }
    )


def test_json_record_maps_every_field() -> None:
    body = _json_request(
        [
            {
                "timeUnixNano": str(T_NANOS),
                "observedTimeUnixNano": "1",
                "severityNumber": 17,
                "severityText": "ERROR",
                "body": {"stringValue": "card declined for order 42"},
                "attributes": [
                    {"key": "order.id", "value": {"intValue": "42"}},
                    {"key": "retry", "value": {"boolValue": True}},
                    {"key": "amount", "value": {"doubleValue": 9.5}},
                    {
                        "key": "tags",
                        "value": {
                            "arrayValue": {"values": [{"stringValue": "a"}, {"intValue": 3}]}
                        },
                    },
                    {
                        "key": "http",
                        "value": {
                            "kvlistValue": {
                                "values": [{"key": "status", "value": {"intValue": 402}}]
                            }
                        },
                    },
                ],
                "traceId": TRACE.upper(),
                "spanId": SPAN,
            }
        ]
    )
    [event] = otlp.decode_json(body)
    assert event == {
        "service": "checkout",
        "level": "error",
        "message": "card declined for order 42",
        "timestamp": "2026-11-26T12:00:00.123456+00:00",
        "meta": {
            "order.id": 42,
            "retry": True,
            "amount": 9.5,
            "tags": ["a", 3],
            "http": {"status": 402},
            "resource": {"service.name": "checkout", "host.name": "web-1"},
            "trace_id": TRACE,
            "span_id": SPAN,
            "severity_text": "ERROR",
            "scope": {"name": "app.payments", "version": "1.2"},
        },
    }


@pytest.mark.parametrize(
    ("number", "text", "level"),
    [
        (1, "", "debug"),
        (4, "", "debug"),
        (5, "", "debug"),
        (8, "", "debug"),
        (9, "", "info"),
        (12, "", "info"),
        (13, "", "warn"),
        (16, "", "warn"),
        (17, "", "error"),
        (20, "", "error"),
        (21, "", "fatal"),
        (24, "", "fatal"),
        (0, "Warning", "warn"),  # unset number: the text decides
        (0, "CRITICAL", "fatal"),
        (0, "error2", "error"),
        (0, "", "info"),  # neither: info
        (0, "verbose-ish", "info"),
        (9, "ERROR", "info"),  # the number wins over the text
    ],
)
def test_severity_to_level(number: int, text: str, level: str) -> None:
    assert otlp.level_of(number, text) == level


def test_non_string_bodies_are_rendered() -> None:
    records: list[dict[str, Any]] = [
        {
            "body": {
                "kvlistValue": {
                    "values": [
                        {"key": "b", "value": {"intValue": "2"}},
                        {"key": "a", "value": {"stringValue": "x"}},
                    ]
                }
            }
        },
        {"body": {"intValue": "7"}},
        {"body": {"boolValue": False}},
        {"body": {"arrayValue": {"values": [{"doubleValue": 1.5}]}}},
        {"body": {"bytesValue": base64.b64encode(b"\x00\x01").decode()}},
        {"eventName": "user.login"},  # no body: the event name
    ]
    messages = [e["message"] for e in otlp.decode_json(_json_request(records))]
    assert messages == ['{"a":"x","b":2}', "7", "false", "[1.5]", "AAE=", "user.login"]


def test_time_falls_back_to_observed_then_receive_time() -> None:
    events = otlp.decode_json(
        _json_request(
            [
                {"observedTimeUnixNano": T_NANOS, "body": {"stringValue": "x"}},
                {"timeUnixNano": "0", "body": {"stringValue": "y"}},
            ]
        )
    )
    assert events[0]["timestamp"] == "2026-11-26T12:00:00.123456+00:00"
    assert "timestamp" not in events[1]


def test_missing_service_name_is_unknown_service_and_snake_case_accepted() -> None:
    body = orjson.dumps(
        {
            "resource_logs": [
                {
                    "scope_logs": [
                        {"log_records": [{"severity_number": 21, "body": {"string_value": "boom"}}]}
                    ]
                }
            ]
        }
    )
    [event] = otlp.decode_json(body)
    assert event["service"] == otlp.UNKNOWN_SERVICE
    assert event["level"] == "fatal" and event["message"] == "boom"
    assert event["meta"] is None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"resourceLogs": {}}',
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "soon"}]}]}]}',
        b'{"resourceLogs": [{"resource": {"attributes": [{"value": {}}]}}]}',
    ],
)
def test_undecodable_json_raises_validation_error(body: bytes) -> None:
    with pytest.raises(ValidationError):
        otlp.decode_json(body)


def test_empty_export_is_no_events() -> None:
    assert otlp.decode_json(b"{}") == []
    assert otlp.decode_protobuf(b"") == []


def _pb_request(records: list[LogRecord]) -> bytes:
    resource = Resource(
        attributes=[
            KeyValue(key="service.name", value=AnyValue(string_value="checkout")),
            KeyValue(key="host.name", value=AnyValue(string_value="web-1")),
        ]
    )
    request = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=records)])]
    )
    return request.SerializeToString()


def test_protobuf_record_maps_every_field() -> None:
    record = LogRecord(
        time_unix_nano=T_NANOS,
        severity_number=SeverityNumber.SEVERITY_NUMBER_WARN,
        severity_text="WARN",
        body=AnyValue(string_value="slow query 812 ms"),
        attributes=[
            KeyValue(key="db.rows", value=AnyValue(int_value=12)),
            KeyValue(key="blob", value=AnyValue(bytes_value=b"\x00\x01")),
            KeyValue(
                key="nested",
                value=AnyValue(
                    kvlist_value=KeyValueList(
                        values=[KeyValue(key="ok", value=AnyValue(bool_value=True))]
                    )
                ),
            ),
        ],
        trace_id=bytes.fromhex(TRACE),
        span_id=bytes.fromhex(SPAN),
    )
    [event] = otlp.decode_protobuf(_pb_request([record]))
    assert event == {
        "service": "checkout",
        "level": "warn",
        "message": "slow query 812 ms",
        "timestamp": "2026-11-26T12:00:00.123456+00:00",
        "meta": {
            "db.rows": 12,
            "blob": "AAE=",
            "nested": {"ok": True},
            "resource": {"service.name": "checkout", "host.name": "web-1"},
            "trace_id": TRACE,
            "span_id": SPAN,
            "severity_text": "WARN",
        },
    }


def test_protobuf_and_json_encodings_agree() -> None:
    record = LogRecord(
        time_unix_nano=T_NANOS,
        severity_number=SeverityNumber.SEVERITY_NUMBER_INFO,
        body=AnyValue(string_value="hello"),
        attributes=[KeyValue(key="k", value=AnyValue(string_value="v"))],
    )
    json_body = _json_request(
        [
            {
                "timeUnixNano": str(T_NANOS),
                "severityNumber": 9,
                "body": {"stringValue": "hello"},
                "attributes": [{"key": "k", "value": {"stringValue": "v"}}],
            }
        ]
    )
    from_json = otlp.decode_json(json_body)[0]
    from_json["meta"].pop("scope")  # the JSON fixture names a scope, the protobuf one not
    assert otlp.decode_protobuf(_pb_request([record]))[0] == from_json


def test_garbage_protobuf_raises_validation_error() -> None:
    with pytest.raises(ValidationError):
        otlp.decode_protobuf(b"\xff\xff\xff\xff")


def test_invalid_records_are_rejected_one_by_one_by_the_event_rules() -> None:
    events = otlp.decode_protobuf(
        _pb_request(
            [
                LogRecord(
                    severity_number=SeverityNumber.SEVERITY_NUMBER_ERROR,
                    body=AnyValue(string_value="ok"),
                ),
                LogRecord(
                    severity_number=SeverityNumber.SEVERITY_NUMBER_ERROR
                ),  # no body, no event name: no message
                LogRecord(time_unix_nano=1, body=AnyValue(string_value="1970")),  # too old
            ]
        )
    )
    result = validate_batch(events, now=T, limits=Limits())
    assert len(result.accepted) == 1
    assert [i for i, _ in result.rejected] == [1, 2]
    message = otlp.partial_success_message(result.rejected)
    assert message.startswith("logRecord 1: message:") and "logRecord 2: timestamp:" in message


def test_export_responses() -> None:
    assert otlp.export_response(0, "", protobuf=False) == b"{}"
    assert orjson.loads(otlp.export_response(2, "bad", protobuf=False)) == {
        "partialSuccess": {"rejectedLogRecords": "2", "errorMessage": "bad"}
    }
    response = ExportLogsServiceResponse()
    response.ParseFromString(otlp.export_response(2, "bad", protobuf=True))
    assert response.partial_success.rejected_log_records == 2
    assert response.partial_success.error_message == "bad"
    assert otlp.export_response(0, "", protobuf=True) == b""


def test_status_body_is_a_google_rpc_status() -> None:
    from google.rpc.status_pb2 import Status

    status = Status()
    status.ParseFromString(otlp.status_body(3, "bad request é" * 20, protobuf=True))
    assert status.code == 3 and status.message == "bad request é" * 20
    assert orjson.loads(otlp.status_body(14, "busy", protobuf=False)) == {
        "code": 14,
        "message": "busy",
    }
