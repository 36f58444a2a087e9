"""``POST /v1/logs``: OpenTelemetry OTLP/HTTP log exports (protobuf or JSON, optionally gzip).

Thin on purpose: :func:`workbench.ingest.ingest_otlp` does the work (the
``Content-Type``, inflation, decoding with ``workbench.otlp``, the general path
of ``POST /api/logs`` for validation and the ingestor) and returns the answer;
the route reads the body within the size limit, sends that answer, and turns
what the library raises into OTLP error answers. The answer follows the
OTLP/HTTP spec: 200 with an ``ExportLogsServiceResponse``
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
from workbench.ingest import ingest_otlp
from workbench.lake.ingestor import Ingestor

router = APIRouter()


def _error(
    status: int, code: int, message: str, *, protobuf: bool, retry_after: int | None = None
) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(
        otlp.status_body(code, message, protobuf=protobuf),
        status_code=status,
        media_type=otlp.PROTOBUF if protobuf else otlp.JSON,
        headers=headers,
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
    limits = _limits(request)
    ingestor: Ingestor = request.app.state.ingestor
    headers = request.headers
    content_type = headers.get("content-type", "")
    protobuf = otlp.media_type(content_type) == otlp.PROTOBUF
    try:
        outcome = await ingest_otlp(
            lambda: read_body(request, limits),
            content_type=content_type,
            content_encoding=headers.get("content-encoding", ""),
            limits=limits,
            now=ingestor.clock(),
            ingestor=ingestor,
        )
    except PayloadTooLarge as exc:
        return _error(413, otlp.RESOURCE_EXHAUSTED, exc.message, protobuf=protobuf)
    except ValidationError as exc:
        return _error(400, otlp.INVALID_ARGUMENT, exc.message, protobuf=protobuf)
    except Overloaded as exc:
        return _error(
            503, otlp.UNAVAILABLE, str(exc), protobuf=protobuf, retry_after=exc.retry_after
        )
    except StorageError as exc:
        message = storage_unavailable_message(exc)
        return _error(503, otlp.UNAVAILABLE, message, protobuf=protobuf, retry_after=5)
    if outcome.queued:
        request.state.ingested_events = outcome.queued  # the rate limit counts events
    return Response(outcome.body, status_code=outcome.status, media_type=outcome.media_type)
