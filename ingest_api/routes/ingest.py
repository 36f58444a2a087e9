"""Routes of the ingest area: ``POST /api/logs`` (one event, a JSON array, NDJSON) and ``GET /health``.

Thin on purpose: :func:`workbench.ingest.ingest` does the work (refused headers,
bounded inflation, formats, the Arrow lane or the general path, what a batch
with every event rejected means, the single-event reply) and returns the answer;
the route only reads the body within the size limit and sends that answer. The
202 is sent only once the events are fsynced in the write-ahead log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import fastapi.routing
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from workbench.events import Limits, check_body_size
from workbench.ingest import ingest
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

RECEIVED_BYTES_KEY = "received_bytes"  # what ingest_api.auth charges a refused body by


def _json(body: Any, status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def read_body(request: Request, limits: Limits) -> bytes:
    """Return the request body as sent; 413 for anything over ``max_body_bytes``.

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
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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
    limits = ingest_limits(request)
    ingestor: Ingestor = request.app.state.ingestor
    headers = request.headers
    outcome = await ingest(
        lambda: read_body(request, limits),
        content_type=headers.get("content-type", ""),
        content_encoding=headers.get("content-encoding", ""),
        limits=limits,
        now=ingestor.clock(),
        ingestor=ingestor,
    )
    if outcome.queued:
        request.state.ingested_events = outcome.queued  # the per-key rate limit counts events
    return Response(outcome.body, status_code=outcome.status, media_type="application/json")


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
