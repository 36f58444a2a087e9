"""API key authentication, scopes and per-key ingest rate limits for the whole HTTP API.

One ASGI middleware guards every request, whatever route serves it (including the
lean ingest routes, which skip FastAPI's dependency solving, and paths that have
no route at all). :func:`required_scope` maps a request to the scope it needs:

=====================================  ==========
``POST /api/logs``, ``POST /v1/logs``  ``ingest``
``GET``/``HEAD`` under ``/api/``       ``read``
``/``, ``/health``, ``/docs``, OpenAPI  open (with the docs' assets)
anything else                          ``admin``
=====================================  ==========

Keys come from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. With no
key ever created and the server bound to loopback, the API is open (first try).
Otherwise: no key or an unknown/revoked one -> 401 ``{"error"}`` with
``WWW-Authenticate``; a key without the scope -> 403 ``{"error", "requiredScope"}``;
an ingest key over its rate -> 429 with ``Retry-After``. Bodies of every route
but the ingest ones (which bound their own) are limited to
``WORKBENCH_MAX_API_BODY_BYTES`` -> 413 ``{"error", "details"}``.

Work is bounded before any of that: request headers over :data:`MAX_HEADER_BYTES`
in all -> 431. In open mode (no key) a request that is not open must name a
loopback host or one of ``WORKBENCH_ALLOWED_HOSTS`` in ``Host`` (DNS rebinding)
-> 400, and a write (``POST``, ``PUT``, ``PATCH``, ``DELETE``) whose ``Origin`` is
neither the request's own nor one of ``WORKBENCH_CORS_ORIGINS`` -> 403. With keys,
the key is what a rebinding or cross-site page lacks, so neither is checked. A
catalog outage during the key check -> 503 ``{"error": "catalog unavailable"}``
(the driver's message, which names host, port and role, goes to the log only).

The authenticated key is left in ``request.state.api_key`` (a
:class:`~workbench.security.keys.Grant`). Ingest routes report how many events a
request carried in ``request.state.ingested_events`` so the rate limit counts
events; a route that does not (a refused body, say) is charged by the bytes it
reported in ``request.state.received_bytes``: one event per
:data:`REFUSED_BYTES_PER_EVENT`, at least one.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workbench.config import Settings
from workbench.errors import RateLimited, StorageError
from workbench.security import host_header_allowed, host_header_name, is_loopback_host
from workbench.security.keys import Grant, KeyCache
from workbench.security.ratelimit import IngestRateLimiter

log = logging.getLogger(__name__)

OPEN_PATHS: frozenset[str] = frozenset(
    {"/", "/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
# The Swagger UI / ReDoc files /docs and /redoc load (served from a package, not a CDN).
DOCS_ASSETS_PREFIX = "/docs-assets/"
INGEST_PATHS: frozenset[str] = frozenset({"/api/logs", "/v1/logs"})
READ_METHODS: frozenset[str] = frozenset({"GET", "HEAD"})
BODY_METHODS: frozenset[str] = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EVENTS_STATE_KEY = "ingested_events"
KEY_STATE_KEY = "api_key"
_REALM = 'Bearer realm="workbench"'
RATE_LIMIT_FILE = "ratelimit.buckets"
# All request headers together (names and values); a browser sends a few KB, a 16 MB
# "Authorization" would otherwise be decoded, hashed and looked up before any limit.
MAX_HEADER_BYTES = 16 * 1024
# A refused ingest body (413, 400, 415) is charged one event per this many bytes.
REFUSED_BYTES_PER_EVENT = 256
BYTES_STATE_KEY = "received_bytes"
WRITE_METHODS: frozenset[str] = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CATALOG_UNAVAILABLE = "catalog unavailable"


def required_scope(method: str, path: str) -> str | None:
    """Return the scope a request needs (``ingest``, ``read``, ``admin``), or None if it is open."""
    trimmed = path.rstrip("/") or "/"
    if trimmed in OPEN_PATHS:
        return None
    if method in READ_METHODS and path.startswith(DOCS_ASSETS_PREFIX):
        return None
    if method == "POST" and trimmed in INGEST_PATHS:
        return "ingest"
    if method in READ_METHODS and path.startswith("/api/"):
        return "read"
    # Default deny: a path or method nobody classified needs the strongest scope.
    return "admin"


def presented_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """Return the key from ``Authorization: Bearer`` or ``X-API-Key``, or None if neither is set."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key" and value.strip():
            return value.decode("latin-1").strip()
    return None


def header_bytes(headers: list[tuple[bytes, bytes]]) -> int:
    """Return the size of the request headers: names and values, as received."""
    return sum(len(name) + len(value) for name, value in headers)


def _header(headers: list[tuple[bytes, bytes]], wanted: bytes) -> str | None:
    for name, value in headers:
        if name == wanted:
            return value.decode("latin-1")
    return None


def _arrived_on_loopback(scope: Scope) -> bool:
    # The interface the connection came in on: a server told "127.0.0.1" but
    # actually listening on 0.0.0.0 must not be open to the network.
    server = scope.get("server")
    if not server:
        return True
    return _is_loopback_address(str(server[0]))


@functools.lru_cache(maxsize=64)
def _is_loopback_address(address: str) -> bool:
    # Cached: a server has a handful of interface addresses, and this runs per request.
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return True  # a name (the test client's "testserver"), not an interface address


@functools.lru_cache(maxsize=64)
def _is_interface_address(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _over_a_socket(scope: Scope) -> bool:
    # uvicorn names the interface by its IP address; an in-process client (the test
    # client's "testserver") has no socket a browser page could reach by rebinding.
    server = scope.get("server")
    return server is not None and _is_interface_address(str(server[0]))


class ApiKeyMiddleware:
    """Admit a request only with a key that has its scope (or in open mode); rate-limit ingest."""

    def __init__(
        self, app: ASGIApp, *, settings: Settings, cache: KeyCache, limiter: IngestRateLimiter
    ) -> None:
        self.app = app
        self.loopback = is_loopback_host(settings.host)
        self.cache = cache
        self.limiter = limiter
        self.max_api_body_bytes = settings.max_api_body_bytes
        # Besides WORKBENCH_ALLOWED_HOSTS: the names the operator gave this server
        # (WORKBENCH_HOST, WORKBENCH_API_URL), which clients are told to use.
        own = (host_header_name(settings.host), host_header_name(urlsplit(settings.api_url).netloc))
        self.allowed_hosts = frozenset(settings.allowed_host_list) | {n for n in own if n}
        self.cors_origins = frozenset(settings.cors_origin_list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request if it may be served; answer 401/403/429/503 otherwise."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if header_bytes(scope["headers"]) > MAX_HEADER_BYTES:
            await _answer(
                send,
                431,
                {
                    "error": f"request headers larger than {MAX_HEADER_BYTES} bytes",
                    "details": {"headers": [f"at most {MAX_HEADER_BYTES} bytes in all"]},
                },
            )
            return
        need = required_scope(scope["method"], scope["path"])
        if need is None:
            await self._serve(scope, receive, send)
            return
        cache = self.cache
        token = presented_token(scope["headers"])
        grant: Grant | None = None
        try:
            configured = cache.cached_keys_configured()
            if configured is None:
                configured = await anyio.to_thread.run_sync(cache.keys_configured)
            open_mode = not configured and self.loopback and _arrived_on_loopback(scope)
            if not open_mode and token is not None:
                hit, grant = cache.cached_grant(token)
                if not hit:
                    grant = await anyio.to_thread.run_sync(cache.grant, token)
        except StorageError as exc:
            log.warning("API key check failed: %s", exc, exc_info=exc.__cause__ or exc)
            await _answer(send, 503, {"error": CATALOG_UNAVAILABLE}, {"Retry-After": "5"})
            return
        if open_mode:
            refusal = self._open_mode_refusal(scope)
            if refusal is not None:
                await _answer(send, refusal[0], {"error": refusal[1]})
                return
            await self._serve(scope, receive, send)
            return
        if token is None:
            await _answer(send, 401, {"error": "API key required"}, {"WWW-Authenticate": _REALM})
            return
        if grant is None:
            await _answer(
                send,
                401,
                {"error": "invalid or revoked API key"},
                {"WWW-Authenticate": f'{_REALM}, error="invalid_token"'},
            )
            return
        if not grant.allows(need):
            await _answer(
                send,
                403,
                {"error": f"this API key lacks the {need!r} scope", "requiredScope": need},
            )
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        state[KEY_STATE_KEY] = grant
        if need != "ingest":
            await self._serve(scope, receive, send)
            return
        await self._ingest(grant, state, scope, receive, send)

    def _open_mode_refusal(self, scope: Scope) -> tuple[int, str] | None:
        """Return (status, error) if an unauthenticated request must be refused, else None.

        Open mode trusts "whoever reaches 127.0.0.1": a browser page on a rebinding
        domain (``Host``) or on any other site (``Origin``) must not count as that.
        """
        if not _over_a_socket(scope):
            return None
        headers = scope["headers"]
        host = _header(headers, b"host")
        if host is not None and not host_header_allowed(host, self.allowed_hosts):
            return 400, (
                f"Host {host_header_name(host)!r} is not allowed: without API keys only loopback "
                "names (127.0.0.1, localhost) and WORKBENCH_ALLOWED_HOSTS are served"
            )
        if scope["method"] in WRITE_METHODS:
            origin = _header(headers, b"origin")
            if origin is not None and origin not in self.cors_origins:
                same = host is not None and origin.lower().partition("://")[2] == host.lower()
                if not same:
                    return 403, (
                        f"cross-site write from Origin {origin!r} refused: without an API key "
                        "only the API's own origin and WORKBENCH_CORS_ORIGINS may write"
                    )
        return None

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The ingest routes stream and bound their own (much larger) bodies; every
        # other body is a small JSON document, read here within its limit.
        if scope["method"] not in BODY_METHODS or scope["path"].rstrip("/") in INGEST_PATHS:
            await self.app(scope, receive, send)
            return
        body = await _read_bounded(scope, receive, self.max_api_body_bytes)
        if body is None:
            limit = self.max_api_body_bytes
            await _answer(
                send,
                413,
                {
                    "error": "Request body too large",
                    "details": {"body": [f"at most {limit} bytes (WORKBENCH_MAX_API_BODY_BYTES)"]},
                },
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later calls wait for the disconnect, as usual

        await self.app(scope, replay, send)

    async def _ingest(
        self, grant: Grant, state: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        try:
            self.limiter.admit(grant.key_id)
        except RateLimited as exc:
            await _answer(
                send, 429, {"error": str(exc)}, {"Retry-After": str(exc.retry_after)}
            )
            return
        try:
            await self.app(scope, receive, send)
        finally:
            events = state.get(EVENTS_STATE_KEY)
            if not isinstance(events, int):
                # Refused (413, 400, 415...): the work was reading and parsing the body.
                received = state.get(BYTES_STATE_KEY)
                size = received if isinstance(received, int) else 0
                events = max(1, size // REFUSED_BYTES_PER_EVENT)
            self.limiter.charge(grant.key_id, events)


async def _read_bounded(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """Return the whole request body, or None as soon as it exceeds ``limit`` bytes."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            return None  # refused before reading a byte
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away; the route will see an empty body
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _answer(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def install(app: FastAPI, settings: Settings) -> None:
    """Guard ``app`` with API keys, scopes and rate limits; add CORS when origins are configured."""
    from workbench.catalog.db import get_engine

    # On app.state so tests (and an admin endpoint, one day) can reach them.
    app.state.key_cache = KeyCache(get_engine(settings.database_url))  # connects on first use
    # Buckets in a file of the data directory: every worker and every server on
    # it draws from the same bucket per key.
    app.state.ingest_limiter = IngestRateLimiter(
        rate=settings.ingest_rate_per_key,
        burst=settings.ingest_burst_per_key,
        path=settings.data_dir / RATE_LIMIT_FILE,
    )
    app.add_middleware(
        ApiKeyMiddleware,
        settings=settings,
        cache=app.state.key_cache,
        limiter=app.state.ingest_limiter,
    )
    origins = settings.cors_origin_list
    if origins:
        # Added last, so it runs first: preflights are answered without a key and
        # 401/403 answers still carry the CORS headers a browser needs to read them.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Content-Encoding"],
            expose_headers=["Retry-After"],
        )
    app.openapi = _openapi_with_security(app, app.openapi)  # type: ignore[method-assign]


def _openapi_with_security(
    app: FastAPI, build: Callable[[], dict[str, Any]]
) -> Callable[[], dict[str, Any]]:
    """Return an OpenAPI builder that documents the key schemes and each operation's scope."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {}).update(
            {
                "bearerKey": {"type": "http", "scheme": "bearer", "description": "an API key"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
        )
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                scope = required_scope(method.upper(), path)
                if scope is None or not isinstance(operation, dict):
                    continue
                operation["security"] = [{"bearerKey": []}, {"apiKeyHeader": []}]
                operation["x-required-scope"] = scope
                operation.setdefault("responses", {}).setdefault(
                    "401", {"description": "No API key, or an unknown or revoked one"}
                )
                operation["responses"].setdefault(
                    "403", {"description": f"The API key lacks the {scope!r} scope"}
                )
                if scope == "ingest":
                    operation["responses"].setdefault(
                        "429", {"description": "This key's ingest rate is exceeded; see Retry-After"}
                    )
        app.openapi_schema = schema
        return schema

    return openapi
