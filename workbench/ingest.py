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

:func:`queue_items` is the general path's last step on its own (validate raw
events, queue the accepted), for decoders of other wire formats (OTLP).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

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
        return Outcome(202, QUEUED, 1)
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
