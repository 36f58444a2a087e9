"""Routes of the ingest area: ``POST /api/logs`` (one event, a JSON array, NDJSON) and ``GET /health``.

Thin on purpose: read the body within the size limit, parse and validate with
``workbench.events``, hand accepted events to the process's ingestor, answer.
The 202 is sent only once the events are fsynced in the write-ahead log.

What a body may be, before any parsing: ``Content-Type`` JSON (``application/json``,
``*/*+json``), NDJSON (:data:`NDJSON_TYPES`), none, or
``application/x-www-form-urlencoded`` (what ``curl -d`` sends without ``-H``; a
browser form percent-encodes ``{`` and ``"``, so it cannot forge JSON that way);
anything else, ``text/plain`` above all (a cross-site form can send that), is 415.
``Content-Encoding`` gzip or deflate is inflated within ``max_body_bytes``, as
for ``/v1/logs``; another encoding is 415. NDJSON lines are counted before any is
split off or parsed, so a body of more than ``max_batch_events`` items is 413
without an object per line; bodies over :data:`OFF_LOOP_BYTES` are parsed in a
worker thread, so the event loop (``/health``, other requests) keeps answering.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import zlib
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

import fastapi.routing
import orjson
import pyarrow as pa
from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from workbench.errors import PayloadTooLarge, ValidationError
from workbench.events import (
    BatchResult,
    Event,
    Limits,
    check_body_size,
    parse_json,
    parse_lines,
    validate_batch,
    validate_event,
)
from workbench.events_arrow import decode_plain_array, decode_plain_lines
from workbench.lake.ingestor import Ingestor


class LeanRoute(APIRoute):
    """A route listed in OpenAPI whose handler is the endpoint itself, ``endpoint(request)``.

    The ingest endpoints take only the raw ``Request`` (they parse bodies
    themselves, with orjson), so FastAPI's per-request dependency solving and
    body handling are pure overhead: skipping them gives about 20 % more
    single-event POSTs per CPU second. Library errors still reach the app's
    exception handlers. As soon as the route has any dependency (an API-key
    check on the router or the app, say), FastAPI's own handler is used, so
    nothing added later is ever skipped.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Return the endpoint itself, or FastAPI's handler when dependencies must run."""
        if _has_dependencies(self):
            return super().get_route_handler()
        return self.endpoint  # type: ignore[return-value]


def _has_dependencies(route: APIRoute) -> bool:
    """Return True unless ``route`` (as included into the app) provably has no dependency."""
    # FastAPI builds included routes under a context holding the app's and the
    # routers' dependencies; when that internal is missing, assume the worst.
    context_var = getattr(fastapi.routing, "_effective_route_context_var", None)
    if context_var is None:
        return True
    context = context_var.get()
    dependant: Any = route.dependant
    if context is not None and getattr(context, "original_route", None) is route:
        dependant = getattr(context, "dependant", None)
    return dependant is None or bool(dependant.dependencies)


router = APIRouter(route_class=LeanRoute)

_QUEUED = b'{"status":"queued"}'
NDJSON_TYPES = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
)
# Treated as JSON: curl's default for -d; browsers' forms cannot produce JSON in it.
_JSON_TYPES = frozenset({"", "application/json", "application/x-www-form-urlencoded"})
ENCODINGS = ("identity", "gzip", "deflate")
# Bodies at least this large are parsed and validated in a worker thread (a 10 MB
# body holds the loop for about a second); smaller ones stay on the loop, where a
# thread hop would cost more than the parse.
OFF_LOOP_BYTES = 256 * 1024
# One match per non-blank line (ASCII whitespace, as bytes.isspace()).
_NON_BLANK_LINE = re.compile(rb"[^\s][^\n]*")
# Strings (skipped whole, escapes included) and the structural characters of JSON.
_JSON_STRUCTURE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')
_ARRAY_START = re.compile(rb"\s*\[")
_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")
_COMMA = ord(",")
RECEIVED_BYTES_KEY = "received_bytes"  # what ingest_api.auth charges a refused body by


def _json(body: Any, status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def body_format(content_type: str) -> str | None:
    """Return ``"json"`` or ``"ndjson"`` for a ``Content-Type`` value, None if it is refused."""
    media = content_type.partition(";")[0].strip().lower()
    if media in NDJSON_TYPES:
        return "ndjson"
    if media in _JSON_TYPES or (media.startswith("application/") and media.endswith("+json")):
        return "json"
    return None


def content_encoding(request: Request) -> str | None:
    """Return the request's ``Content-Encoding`` (``identity`` if none), None if unsupported."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower() or "identity"
    return encoding if encoding in ENCODINGS else None


def _unsupported(header: str, got: str, accepted: str) -> Response:
    message = f"{header} {got!r} is not accepted; send {accepted}"
    return _json({"error": message, "details": {header: [message]}}, 415)


async def read_body(request: Request, limits: Limits, encoding: str = "identity") -> bytes:
    """Return the request body, inflated per ``encoding``; 413 for anything over ``max_body_bytes``.

    The bytes read are left in ``request.state.received_bytes`` (refused or not),
    so the rate limit can charge a refused body by its size.
    """
    state = request.state
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        setattr(state, RECEIVED_BYTES_KEY, int(declared))
        check_body_size(int(declared), limits)
    chunks: list[bytes] = []
    size = 0
    # Counted while streaming too: a chunked body has no Content-Length to trust.
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            setattr(state, RECEIVED_BYTES_KEY, size)
            check_body_size(size, limits)
        chunks.append(chunk)
    setattr(state, RECEIVED_BYTES_KEY, size)
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return body if encoding == "identity" else inflate(body, encoding, limits)


def inflate(body: bytes, encoding: str, limits: Limits) -> bytes:
    """Return ``body`` decompressed (gzip or deflate), at most ``max_body_bytes`` of it (else 413)."""
    # Bounded inflation: a small gzip bomb must not get past the body limit.
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limits.max_body_bytes + 1)
    except zlib.error as exc:
        raise ValidationError(
            f"Body is not valid {encoding}", {"body": [f"not valid {encoding}: {exc}"]}
        ) from exc
    check_body_size(len(out), limits)
    return out


def bounded_lines(body: bytes, limits: Limits) -> list[bytes]:
    """Return the non-blank lines of an NDJSON body; 413 past ``max_batch_events`` of them.

    Counted before anything is split off or parsed: line breaks in C
    (``bytes.count``), and only when there are more than the limit allows, the
    non-blank lines up to one past it. A body of a million ``{}`` lines never
    becomes a million objects.
    """
    most = limits.max_batch_events
    if body.count(b"\n") >= most:
        counted = sum(1 for _ in itertools.islice(_NON_BLANK_LINE.finditer(body), most + 1))
        if counted > most:
            raise _too_many(most)
    # bytes.isspace() is bytes.strip()'s notion of blank, without copying the line.
    return [line for line in body.split(b"\n") if line and not line.isspace()]


def ingest_limits(request: Request) -> Limits:
    """Return the ingest limits of the app's settings (built once, shared by the ingest routes)."""
    limits: Limits | None = getattr(request.app.state, "ingest_limits", None)
    if limits is None:
        limits = Limits.from_settings(request.app.state.settings)
        request.app.state.ingest_limits = limits
    return limits


@router.post(
    "/api/logs",
    status_code=202,
    summary="Ingest one log event, a JSON array of events, or NDJSON",
    responses={
        202: {"description": "Durably queued: in the write-ahead log"},
        400: {"description": "Invalid event(s): {error, details}"},
        413: {"description": "Body or batch over its limit"},
        503: {"description": "Ingest backlog full; retry after Retry-After seconds"},
    },
)
async def ingest_logs(request: Request) -> Response:
    """Queue log events durably; answer 202 once they are fsynced in the WAL."""
    fmt = body_format(request.headers.get("content-type", ""))
    if fmt is None:
        return _unsupported(
            "Content-Type",
            request.headers.get("content-type", ""),
            "application/json or application/x-ndjson",
        )
    encoding = content_encoding(request)
    if encoding is None:
        return _unsupported(
            "Content-Encoding", request.headers.get("content-encoding", ""), "gzip, deflate or none"
        )
    limits = ingest_limits(request)
    body = await read_body(request, limits, encoding)
    ingestor: Ingestor = request.app.state.ingestor
    now = ingestor.clock()
    if len(body) >= OFF_LOOP_BYTES:
        decoded = await asyncio.to_thread(decode_body, body, fmt == "ndjson", now, limits)
    else:
        decoded = decode_body(body, fmt == "ndjson", now, limits)
    if isinstance(decoded, pa.RecordBatch):
        request.state.ingested_events = decoded.num_rows
        accepted = await ingestor.accept_columns(decoded, now)
        return _json({"status": "queued", "accepted": accepted, "rejected": []}, 202)
    if isinstance(decoded, tuple):
        # The original contract: one event in, exactly {"status":"queued"} out.
        request.state.ingested_events = 1
        await ingestor.accept([decoded], now)
        return Response(_QUEUED, status_code=202, media_type="application/json")
    rejected = [{"index": i, "errors": errs} for i, errs in decoded.rejected]
    if not decoded.accepted:
        return _json(
            {
                "error": "Invalid log events",
                "details": {"events": ["every event was rejected"]},
                "accepted": 0,
                "rejected": rejected,
            },
            400,
        )
    request.state.ingested_events = len(decoded.accepted)  # the per-key rate limit counts events
    await ingestor.accept(decoded.accepted, now)
    return _json({"status": "queued", "accepted": len(decoded.accepted), "rejected": rejected}, 202)


def check_array_items(body: bytes, limits: Limits) -> None:
    """Raise PayloadTooLarge (413) if a JSON array body holds more than ``max_batch_events`` items.

    Counts the top-level commas of a token scan (strings skipped whole) and stops
    one past the limit, so ``[{},{},...]`` is refused after ``max_batch_events``
    tokens instead of becoming millions of dicts. Only the general path calls
    it, and only when the body has that many commas at all.
    """
    most = limits.max_batch_events
    depth = 0
    items = 1
    for token in _JSON_STRUCTURE.finditer(body):
        char = token.group()[0]
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth -= 1
        elif char == _COMMA and depth == 1:
            items += 1
            if items > most:
                raise _too_many(most)


def _too_many(most: int) -> PayloadTooLarge:
    message = f"batch: more than {most} events (max_batch_events)"
    return PayloadTooLarge(message, {"batch": [message]})


def decode_body(
    body: bytes, ndjson: bool, now: datetime, limits: Limits
) -> pa.RecordBatch | Event | BatchResult:
    """Return a body's events: Arrow columns (every one plain and valid), one event (a JSON
    object), or the batch's accepted and rejected items; ValidationError/PayloadTooLarge if none."""
    lines = bounded_lines(body, limits) if ndjson else []
    # The fast lane: a batch of plain events goes straight into Arrow columns;
    # anything unusual (including every rejection) takes the general path below.
    if ndjson:
        columns = decode_plain_lines(lines, now=now, limits=limits)
    else:
        columns = decode_plain_array(body, now=now, limits=limits) if body[:1] == b"[" else None
    if columns is not None:
        return columns
    if ndjson:
        items = parse_lines(lines)
    else:
        if body.count(b",") >= limits.max_batch_events and _ARRAY_START.match(body):
            check_array_items(body, limits)
        parsed = parse_json(body)
        if type(parsed) is dict:
            return validate_event(parsed, now=now, limits=limits)
        if type(parsed) is not list:
            raise ValidationError(
                "Invalid log event",
                {"body": ["body: must be a JSON object (one event) or an array of events"]},
            )
        items = parsed
    if not items:
        raise ValidationError("Empty batch", {"body": ["body: the batch holds no events"]})
    return validate_batch(items, now=now, limits=limits)


async def _api_mode(request: Request) -> str:
    """Return ``"open"`` (no API key created yet), ``"keyed"``, or ``"unknown"`` (catalog down)."""
    from workbench.errors import StorageError

    try:  # revoked keys count: revoking the last key keeps the API keyed (docs/security.md)
        keyed = await asyncio.to_thread(request.app.state.key_cache.keys_configured)
    except StorageError:
        return "unknown"
    return "keyed" if keyed else "open"


@router.get("/health", summary="Liveness and ingest figures")
async def health(request: Request) -> Response:
    """Return ``{"status":"ok"}`` (``"degraded"`` while ``problems`` is not empty) with the WAL
    backlog, last flush time, lake size and mirror lag."""
    ingestor: Ingestor = request.app.state.ingestor
    stats = ingestor.stats()
    body: dict[str, Any] = {"status": "degraded" if stats["problems"] else "ok", **stats}
    body["mode"] = await _api_mode(request)
    settings = request.app.state.settings
    if settings.elastic_url:
        from workbench.mirror.status import mirror_health

        body["mirror"] = await asyncio.to_thread(mirror_health, settings)
    return _json(body, 200)
