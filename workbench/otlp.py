"""Map OpenTelemetry OTLP/HTTP log exports to raw log events: pure functions, no I/O.

The result of :func:`decode_json` / :func:`decode_protobuf` is a list of raw
event dicts (``service, level, message, timestamp, meta``), exactly what a client
would POST to ``/api/logs``; :func:`workbench.ingest.queue_items` validates them
(``workbench.events``) and hands them to the same ingestor, so limits and
durability are identical.

Mapping (one event per ``LogRecord``):

==============  =============================================================
event field     from
==============  =============================================================
``service``     resource attribute ``service.name``; ``unknown_service`` when
                absent (the OpenTelemetry default name)
``level``       ``severityNumber``: 1-8 (TRACE, DEBUG) -> debug, 9-12 info,
                13-16 warn, 17-20 error, 21-24 fatal; when it is 0 (unset),
                ``severityText`` (trace/debug/info/warn/warning/error/fatal/
                critical...); else ``info``
``message``     ``body``: a string as is; any other value rendered (numbers
                and booleans as text, maps and arrays as JSON, bytes as base64);
                an empty body falls back to ``eventName``
``timestamp``   ``timeUnixNano``, else ``observedTimeUnixNano``, else the
                receive time (ISO 8601, UTC, microseconds)
``meta``        the record's ``attributes`` (nested maps kept), plus the
                reserved keys ``resource`` (resource attributes), ``trace_id``
                and ``span_id`` (lower-case hex), ``severity_text`` and
                ``scope`` (``{"name", "version"}``) when present. A reserved
                key replaces an attribute of the same name.
==============  =============================================================

The JSON encoding follows the OTLP spec: camelCase field names (snake_case is
accepted too), ids as hex strings, 64-bit integers as strings or numbers, enums
as integers. Bodies that do not decode raise :class:`~workbench.errors.ValidationError`
(answered 400); records that decode but break an event rule are rejected one by
one by the validation (answered as ``partialSuccess``).
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from workbench.errors import ValidationError

UNKNOWN_SERVICE = "unknown_service"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# gRPC status codes carried in google.rpc.Status bodies.
INVALID_ARGUMENT = 3
RESOURCE_EXHAUSTED = 8
UNAVAILABLE = 14

_SEVERITY_TEXT = {
    "trace": "debug",
    "debug": "debug",
    "info": "info",
    "information": "info",
    "informational": "info",
    "notice": "info",
    "warn": "warn",
    "warning": "warn",
    "error": "error",
    "err": "error",
    "fatal": "fatal",
    "critical": "fatal",
    "crit": "fatal",
    "alert": "fatal",
    "emerg": "fatal",
    "emergency": "fatal",
    "panic": "fatal",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def level_of(severity_number: int, severity_text: str | None) -> str:
    """Return the workbench level of an OTLP severity number (0 = unset) and text."""
    if 1 <= severity_number <= 8:
        return "debug"
    if 9 <= severity_number <= 12:
        return "info"
    if 13 <= severity_number <= 16:
        return "warn"
    if 17 <= severity_number <= 20:
        return "error"
    if 21 <= severity_number <= 24:
        return "fatal"
    if severity_text:
        # "WARN2", "Error" and the like: the text without its trailing digit.
        key = severity_text.strip().lower().rstrip("0123456789")
        if key in _SEVERITY_TEXT:
            return _SEVERITY_TEXT[key]
    return "info"


def timestamp_of(time_unix_nano: int, observed_unix_nano: int) -> str | None:
    """Return the ISO 8601 UTC time of the record (event time, else observed time), or None."""
    nanos = time_unix_nano or observed_unix_nano
    if not nanos:
        return None
    # Microseconds: the lake's precision. Out-of-range values become a time the
    # validation rejects by its past/future limits rather than an exception here.
    try:
        moment = _EPOCH + timedelta(microseconds=nanos // 1000)
    except OverflowError:
        moment = datetime.max.replace(tzinfo=UTC)
    return moment.isoformat()


def render_body(value: Any) -> str:
    """Return the message text of a decoded body: strings as is, other values as text or JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def event_of(
    *,
    resource: dict[str, Any],
    scope: dict[str, str] | None,
    time_unix_nano: int,
    observed_unix_nano: int,
    severity_number: int,
    severity_text: str,
    body: Any,
    attributes: dict[str, Any],
    trace_id: str,
    span_id: str,
    event_name: str,
) -> dict[str, Any]:
    """Return the raw event dict of one decoded log record (see the module's mapping table)."""
    service = resource.get("service.name")
    meta: dict[str, Any] = dict(attributes)
    if resource:
        meta["resource"] = resource
    if trace_id:
        meta["trace_id"] = trace_id
    if span_id:
        meta["span_id"] = span_id
    if severity_text:
        meta["severity_text"] = severity_text
    if scope:
        meta["scope"] = scope
    event: dict[str, Any] = {
        "service": service if isinstance(service, str) and service else UNKNOWN_SERVICE,
        "level": level_of(severity_number, severity_text),
        "message": render_body(body) or event_name,
        "meta": meta or None,
    }
    ts = timestamp_of(time_unix_nano, observed_unix_nano)
    if ts is not None:
        event["timestamp"] = ts
    return event


# -- JSON encoding ----------------------------------------------------------


def _invalid(message: str) -> ValidationError:
    return ValidationError(f"Invalid OTLP logs request: {message}", {"body": [message]})


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    """Return a field by its OTLP JSON (camelCase) or proto (snake_case) name."""
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _list(obj: dict[str, Any], camel: str, snake: str, where: str) -> list[Any]:
    value = _get(obj, camel, snake)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _invalid(f"{where}.{camel} must be an array")
    return value


def _obj(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be an object")
    return value


def _int(value: Any, where: str) -> int:
    """Return a 64-bit integer field given as a JSON number or a decimal string."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise _invalid(f"{where} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise _invalid(f"{where} must be an integer")


def _json_any(value: Any, where: str) -> Any:
    """Return the plain Python value of a JSON-encoded ``AnyValue``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be an AnyValue object")
    if "stringValue" in value or "string_value" in value:
        return _get(value, "stringValue", "string_value")
    if "boolValue" in value or "bool_value" in value:
        return bool(_get(value, "boolValue", "bool_value"))
    if "intValue" in value or "int_value" in value:
        return _int(_get(value, "intValue", "int_value"), where)
    if "doubleValue" in value or "double_value" in value:
        raw = _get(value, "doubleValue", "double_value")
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise _invalid(f"{where}.doubleValue must be a number") from None
        # JSON has no NaN/Infinity: keep them as text rather than fail the record.
        return number if math.isfinite(number) else str(number)
    if "arrayValue" in value or "array_value" in value:
        arr = _obj(_get(value, "arrayValue", "array_value"), where)
        return [_json_any(v, f"{where}[]") for v in _list(arr, "values", "values", where)]
    if "kvlistValue" in value or "kvlist_value" in value:
        kv = _obj(_get(value, "kvlistValue", "kvlist_value"), where)
        return _json_attributes(_list(kv, "values", "values", where), where)
    if "bytesValue" in value or "bytes_value" in value:
        # Already base64 in the JSON encoding: keep it as that text.
        return _get(value, "bytesValue", "bytes_value")
    return None  # an empty AnyValue


def _json_attributes(items: list[Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise _invalid(f"{where}: each attribute must be an object with a string key")
        out[item["key"]] = _json_any(item.get("value"), f"{where}.{item['key']}")
    return out


def _hex_id(value: Any, where: str) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise _invalid(f"{where} must be a hex string")
    return value.lower()


def decode_json(body: bytes) -> list[dict[str, Any]]:
    """Return the raw events of a JSON-encoded ``ExportLogsServiceRequest``; ValidationError if malformed."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _invalid(f"not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise _invalid("the body must be a JSON object with resourceLogs")
    events: list[dict[str, Any]] = []
    for r_index, rl in enumerate(_list(doc, "resourceLogs", "resource_logs", "body")):
        where = f"resourceLogs[{r_index}]"
        rl = _obj(rl, where)
        res = _obj(rl.get("resource"), f"{where}.resource")
        resource = _json_attributes(
            _list(res, "attributes", "attributes", f"{where}.resource"), f"{where}.resource"
        )
        for s_index, sl in enumerate(_list(rl, "scopeLogs", "scope_logs", where)):
            swhere = f"{where}.scopeLogs[{s_index}]"
            sl = _obj(sl, swhere)
            scope_obj = _obj(sl.get("scope"), f"{swhere}.scope")
            scope = _scope(scope_obj.get("name"), scope_obj.get("version"))
            for l_index, rec in enumerate(_list(sl, "logRecords", "log_records", swhere)):
                lwhere = f"{swhere}.logRecords[{l_index}]"
                rec = _obj(rec, lwhere)
                text = _get(rec, "severityText", "severity_text")
                name = _get(rec, "eventName", "event_name")
                events.append(
                    event_of(
                        resource=resource,
                        scope=scope,
                        time_unix_nano=_int(_get(rec, "timeUnixNano", "time_unix_nano"), lwhere),
                        observed_unix_nano=_int(
                            _get(rec, "observedTimeUnixNano", "observed_time_unix_nano"), lwhere
                        ),
                        severity_number=_severity_number(
                            _get(rec, "severityNumber", "severity_number"), lwhere
                        ),
                        severity_text=text if isinstance(text, str) else "",
                        body=_json_any(rec.get("body"), f"{lwhere}.body"),
                        attributes=_json_attributes(
                            _list(rec, "attributes", "attributes", lwhere), lwhere
                        ),
                        trace_id=_hex_id(_get(rec, "traceId", "trace_id"), f"{lwhere}.traceId"),
                        span_id=_hex_id(_get(rec, "spanId", "span_id"), f"{lwhere}.spanId"),
                        event_name=name if isinstance(name, str) else "",
                    )
                )
    return events


def _severity_number(value: Any, where: str) -> int:
    # The spec says integers; proto3 JSON also allows the enum's name.
    if isinstance(value, str) and value.startswith("SEVERITY_NUMBER_"):
        from opentelemetry.proto.logs.v1 import logs_pb2

        try:
            return int(logs_pb2.SeverityNumber.Value(value))
        except ValueError:
            return 0
    return _int(value, f"{where}.severityNumber")


def _scope(name: Any, version: Any) -> dict[str, str] | None:
    out = {}
    if isinstance(name, str) and name:
        out["name"] = name
    if isinstance(version, str) and version:
        out["version"] = version
    return out or None


# -- protobuf encoding ------------------------------------------------------


def _pb_any(value: Any) -> Any:
    """Return the plain Python value of a protobuf ``AnyValue``."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else str(number)
    if kind == "array_value":
        return [_pb_any(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _pb_attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None  # string_value_strindex: only meaningful with a dictionary, unused by OTLP/HTTP


def _pb_attributes(items: Any) -> dict[str, Any]:
    return {kv.key: _pb_any(kv.value) for kv in items}


def decode_protobuf(body: bytes) -> list[dict[str, Any]]:
    """Return the raw events of a protobuf ``ExportLogsServiceRequest``; ValidationError if malformed."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError) as exc:
        raise _invalid(f"not a protobuf ExportLogsServiceRequest: {exc}") from exc
    events: list[dict[str, Any]] = []
    for rl in request.resource_logs:
        resource = _pb_attributes(rl.resource.attributes)
        for sl in rl.scope_logs:
            scope = _scope(sl.scope.name, sl.scope.version)
            for rec in sl.log_records:
                events.append(
                    event_of(
                        resource=resource,
                        scope=scope,
                        time_unix_nano=rec.time_unix_nano,
                        observed_unix_nano=rec.observed_time_unix_nano,
                        severity_number=int(rec.severity_number),
                        severity_text=rec.severity_text,
                        body=_pb_any(rec.body) if rec.HasField("body") else None,
                        attributes=_pb_attributes(rec.attributes),
                        trace_id=rec.trace_id.hex(),
                        span_id=rec.span_id.hex(),
                        event_name=rec.event_name,
                    )
                )
    return events


# -- responses --------------------------------------------------------------


def media_type(content_type: str) -> str | None:
    """Return :data:`PROTOBUF` or :data:`JSON` for a ``Content-Type`` value, None if refused."""
    media = content_type.split(";")[0].strip().lower()
    return media if media in (PROTOBUF, JSON) else None


def partial_success_message(
    rejected: list[tuple[int, dict[str, list[str]]]], limit: int = 5
) -> str:
    """Return the ``errorMessage`` of a partial success: the first rejections, by record index."""
    parts = []
    for index, errors in rejected[:limit]:
        first = "; ".join(msg for msgs in errors.values() for msg in msgs)
        parts.append(f"logRecord {index}: {first}")
    more = len(rejected) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def export_response(rejected: int, error_message: str, *, protobuf: bool) -> bytes:
    """Return an ``ExportLogsServiceResponse`` body (partialSuccess only when something was rejected)."""
    if protobuf:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceResponse,
        )

        response = ExportLogsServiceResponse()
        if rejected:
            response.partial_success.rejected_log_records = rejected
            response.partial_success.error_message = error_message
        return response.SerializeToString()
    if not rejected:
        return b"{}"
    # int64 as a string: the proto3 JSON mapping OTLP/JSON follows.
    return orjson.dumps(
        {"partialSuccess": {"rejectedLogRecords": str(rejected), "errorMessage": error_message}}
    )


def status_body(code: int, message: str, *, protobuf: bool) -> bytes:
    """Return a ``google.rpc.Status`` body (what OTLP/HTTP error responses carry).

    ``code`` is the gRPC code (3 INVALID_ARGUMENT, 8 RESOURCE_EXHAUSTED,
    14 UNAVAILABLE). The protobuf form is encoded by hand (two fields) so the
    server does not need the googleapis protos for it.
    """
    if not protobuf:
        return orjson.dumps({"code": code, "message": message})
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
