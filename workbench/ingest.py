"""Ingest: one call from a request's body to events durably queued, and the answer to give.

:func:`ingest` is what ``POST /api/logs`` does, without HTTP: it refuses a
``Content-Type`` or ``Content-Encoding`` it does not take (before the body is
read), reads and inflates the body within ``max_body_bytes``, decodes it
(:mod:`workbench.ingest_body`: the Arrow lane for batches of plain events, the
general path of :mod:`workbench.events` for the rest; bodies over
:data:`~workbench.ingest_body.OFF_LOOP_BYTES` in a worker thread), hands the
accepted events to the ingestor, and returns the :class:`Outcome`: once they are
fsynced in the WAL, 202 (exactly ``{"status":"queued"}`` for one event, the
original contract; ``accepted``/``rejected`` for a batch); 400 when a batch's
every event is rejected (nothing is queued); 415 for refused headers.

Anything else refused is raised for the HTTP edge to answer like every error
of the library: :class:`~workbench.errors.ValidationError` (400: not JSON, not
an event, an empty batch), :class:`~workbench.errors.PayloadTooLarge` (413),
:class:`~workbench.errors.Overloaded` and
:class:`~workbench.errors.StorageError` (503) from the ingestor.

:func:`ingest_otlp` is the same for ``POST /v1/logs`` (an OpenTelemetry export,
protobuf or JSON, decoded by :mod:`workbench.otlp`): the records are judged and
queued by :func:`queue_items`, the general path's last step, and the answer is
an ``ExportLogsServiceResponse`` (``partialSuccess`` counts rejected records) or
a 415 ``google.rpc.Status``; what it raises, the edge answers as a Status too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from workbench import otlp
from workbench.errors import ValidationError
from workbench.events import BatchResult, Limits, check_body_size, validate_batch
from workbench.ingest_body import ENCODINGS, OFF_LOOP_BYTES, body_format, decode_body, inflate
from workbench.lake.ingestor import Ingestor

QUEUED = b'{"status":"queued"}'


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to an ingest request: HTTP status, JSON body, and how many events were queued
    (what the per-key rate limit counts; 0 when nothing was)."""

    status: int
    body: bytes
    queued: int = 0
    media_type: str = "application/json"


# The single-event answer, built once: the hottest path of all.
_QUEUED_ONE = Outcome(202, QUEUED, 1)


def encoding_of(content_encoding: str) -> str | None:
    """Return the ``Content-Encoding`` header's encoding (``identity`` if none), None if refused."""
    encoding = content_encoding.strip().lower() or "identity"
    return encoding if encoding in ENCODINGS else None


async def ingest(
    read: Callable[[], Awaitable[bytes]],
    *,
    content_type: str,
    content_encoding: str,
    limits: Limits,
    now: datetime,
    ingestor: Ingestor,
) -> Outcome:
    """Return the answer to a body of log events, once its accepted events are in the WAL.

    ``read`` returns the body as sent (still compressed); it is called only if
    the headers are accepted. Raises ValidationError, PayloadTooLarge, Overloaded
    or StorageError for the caller to answer (see the module docstring).
    """
    fmt = body_format(content_type)
    if fmt is None:
        return _unsupported(
            "Content-Type", content_type, "application/json or application/x-ndjson"
        )
    encoding = encoding_of(content_encoding)
    if encoding is None:
        return _unsupported("Content-Encoding", content_encoding, "gzip, deflate or none")
    body = await read()
    check_body_size(len(body), limits)
    body = inflate(body, encoding, limits)
    ndjson = fmt == "ndjson"
    if len(body) >= OFF_LOOP_BYTES:
        decoded = await asyncio.to_thread(decode_body, body, ndjson, now, limits)
    else:
        decoded = decode_body(body, ndjson, now, limits)
    if isinstance(decoded, pa.RecordBatch):
        accepted = await ingestor.accept_columns(decoded, now)
        return _queued(accepted, [])
    if isinstance(decoded, tuple):
        # The original contract: one event in, exactly {"status":"queued"} out.
        await ingestor.accept([decoded], now)
        return _QUEUED_ONE
    rejected = [{"index": i, "errors": errs} for i, errs in decoded.rejected]
    if not decoded.accepted:
        return Outcome(
            400,
            orjson.dumps(
                {
                    "error": "Invalid log events",
                    "details": {"events": ["every event was rejected"]},
                    "accepted": 0,
                    "rejected": rejected,
                }
            ),
        )
    await ingestor.accept(decoded.accepted, now)
    return _queued(len(decoded.accepted), rejected)


async def ingest_otlp(
    read: Callable[[], Awaitable[bytes]],
    *,
    content_type: str,
    content_encoding: str,
    limits: Limits,
    now: datetime,
    ingestor: Ingestor,
) -> Outcome:
    """Return the answer to an OTLP/HTTP logs export, once its accepted records are in the WAL.

    ``read`` as for :func:`ingest`; raises ValidationError (not decodable, or a
    refused ``Content-Encoding``), PayloadTooLarge, Overloaded or StorageError.
    """
    media = otlp.media_type(content_type)
    if media is None:
        got = content_type.split(";")[0].strip().lower()
        message = f"Content-Type must be {otlp.PROTOBUF} or {otlp.JSON}, got {got or 'none'!r}"
        return Outcome(415, otlp.status_body(otlp.INVALID_ARGUMENT, message, protobuf=False))
    encoding = encoding_of(content_encoding)
    if encoding is None:
        raise ValidationError(
            f"Unsupported Content-Encoding {content_encoding.strip().lower()!r}",
            {"body": ["Content-Encoding: gzip, deflate or identity"]},
        )
    protobuf = media == otlp.PROTOBUF
    body = inflate(await read(), encoding, limits)
    events = otlp.decode_protobuf(body) if protobuf else otlp.decode_json(body)
    result = await queue_items(events, now=now, limits=limits, ingestor=ingestor)
    answer = otlp.export_response(
        len(result.rejected), otlp.partial_success_message(result.rejected), protobuf=protobuf
    )
    return Outcome(200, answer, len(result.accepted), media)


async def queue_items(
    items: Sequence[object], *, now: datetime, limits: Limits, ingestor: Ingestor
) -> BatchResult:
    """Return a batch of raw events judged, once its accepted events are fsynced in the WAL."""
    result = validate_batch(items, now=now, limits=limits)
    if result.accepted:
        await ingestor.accept(result.accepted, now)
    return result


def _queued(accepted: int, rejected: list[dict[str, Any]]) -> Outcome:
    body = {"status": "queued", "accepted": accepted, "rejected": rejected}
    return Outcome(202, orjson.dumps(body), accepted)


def _unsupported(header: str, got: str, accepted: str) -> Outcome:
    message = f"{header} {got!r} is not accepted; send {accepted}"
    return Outcome(415, orjson.dumps({"error": message, "details": {header: [message]}}))
