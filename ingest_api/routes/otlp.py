"""``POST /v1/logs``: OpenTelemetry OTLP/HTTP log exports (protobuf or JSON, optionally gzip).

Thin on purpose: read the body within the size limit, decode it with
``workbench.otlp`` into raw events, and queue them with
:func:`workbench.ingest.queue_items`, the general path of ``POST /api/logs``
(same validation, same ingestor). The
answer follows the OTLP/HTTP spec: 200 with an ``ExportLogsServiceResponse``
(``partialSuccess`` when records were rejected) once the accepted records are
fsynced in the WAL; 400 for a body that does not decode; 413 over a size limit;
503 with ``Retry-After`` when the ingestor pushes back (OTLP clients retry 503).
Error bodies are a ``google.rpc.Status`` in the request's encoding.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ingest_api.app import storage_unavailable_message
from ingest_api.routes.ingest import ingest_limits as _limits
from ingest_api.routes.ingest import read_body
from workbench import otlp
from workbench.errors import Overloaded, PayloadTooLarge, StorageError, ValidationError
from workbench.events import Limits
from workbench.ingest import encoding_of, queue_items
from workbench.ingest_body import inflate
from workbench.lake.ingestor import Ingestor

router = APIRouter()

_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"
# gRPC status codes carried in google.rpc.Status bodies.
_INVALID_ARGUMENT = 3
_RESOURCE_EXHAUSTED = 8
_UNAVAILABLE = 14


async def _read_body(request: Request, limits: Limits) -> bytes:
    """Return the (decompressed) body, refusing anything over ``max_body_bytes`` early."""
    encoding = encoding_of(request.headers.get("content-encoding", ""))
    if encoding is None:
        got = request.headers.get("content-encoding", "").strip().lower()
        raise ValidationError(
            f"Unsupported Content-Encoding {got!r}",
            {"body": ["Content-Encoding: gzip, deflate or identity"]},
        )
    return inflate(await read_body(request, limits), encoding, limits)


def _answer(
    body: bytes, status: int, *, protobuf: bool, retry_after: int | None = None
) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(
        body, status_code=status, media_type=_PROTOBUF if protobuf else _JSON, headers=headers
    )


@router.post(
    "/v1/logs",
    summary="Ingest an OpenTelemetry OTLP/HTTP logs export (protobuf or JSON)",
    responses={
        200: {"description": "ExportLogsServiceResponse; partialSuccess counts rejected records"},
        400: {"description": "Body does not decode as an ExportLogsServiceRequest"},
        413: {"description": "Body or batch over its limit"},
        415: {"description": "Content-Type is neither application/x-protobuf nor application/json"},
        503: {"description": "Ingest backlog full; retry after Retry-After seconds"},
    },
)
async def export_logs(request: Request) -> Response:
    """Queue the log records of an OTLP export durably; answer once they are fsynced in the WAL."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    protobuf = content_type == _PROTOBUF
    if not protobuf and content_type != _JSON:
        return _answer(
            otlp.status_body(
                _INVALID_ARGUMENT,
                f"Content-Type must be {_PROTOBUF} or {_JSON}, got {content_type or 'none'!r}",
                protobuf=False,
            ),
            415,
            protobuf=False,
        )
    limits = _limits(request)
    ingestor: Ingestor = request.app.state.ingestor
    try:
        body = await _read_body(request, limits)
        events = otlp.decode_protobuf(body) if protobuf else otlp.decode_json(body)
        result = await queue_items(events, now=ingestor.clock(), limits=limits, ingestor=ingestor)
        if result.accepted:
            request.state.ingested_events = len(result.accepted)  # the rate limit counts events
    except PayloadTooLarge as exc:
        return _answer(
            otlp.status_body(_RESOURCE_EXHAUSTED, exc.message, protobuf=protobuf),
            413,
            protobuf=protobuf,
        )
    except ValidationError as exc:
        return _answer(
            otlp.status_body(_INVALID_ARGUMENT, exc.message, protobuf=protobuf),
            400,
            protobuf=protobuf,
        )
    except Overloaded as exc:
        return _answer(
            otlp.status_body(_UNAVAILABLE, str(exc), protobuf=protobuf),
            503,
            protobuf=protobuf,
            retry_after=exc.retry_after,
        )
    except StorageError as exc:
        return _answer(
            otlp.status_body(_UNAVAILABLE, storage_unavailable_message(exc), protobuf=protobuf),
            503,
            protobuf=protobuf,
            retry_after=5,
        )
    message = otlp.partial_success_message(result.rejected)
    return _answer(
        otlp.export_response(len(result.rejected), message, protobuf=protobuf),
        200,
        protobuf=protobuf,
    )
