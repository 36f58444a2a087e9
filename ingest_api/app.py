"""The FastAPI application: routers, lifespan (ingestor, catalog), and error translation.

Library errors (``workbench.errors``) are translated to HTTP here and only here:
ValidationError -> 400 ``{"error", "details"}``; PayloadTooLarge -> 413;
NotFound -> 404; InvalidTransition -> 409 with the current state;
Overloaded -> 503 with ``Retry-After``; RateLimited -> 429 with ``Retry-After``;
StorageError -> 503. API keys, scopes, ingest rate limits and CORS: ``ingest_api.auth``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ingest_api import auth
from workbench.config import Settings, get_settings
from workbench.errors import (
    InvalidTransition,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    StorageError,
    ValidationError,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (the environment's when None)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from ingest_api import lifecycle

        async with lifecycle.running(app, settings):
            yield

    app = FastAPI(
        title="Log Workbench API",
        version="0.1.0",
        lifespan=lifespan,
        description="Ingest logs, query them, manage alert rules, channels and incidents.",
    )
    app.state.settings = settings
    _install_error_handlers(app)
    auth.install(app, settings)

    from ingest_api.routes import alerts, ingest, otlp, query

    app.include_router(ingest.router)
    app.include_router(otlp.router)
    app.include_router(query.router)
    app.include_router(alerts.router)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PayloadTooLarge)
    async def _too_large(_: Request, exc: PayloadTooLarge) -> JSONResponse:
        return JSONResponse({"error": exc.message, "details": exc.details}, status_code=413)

    @app.exception_handler(ValidationError)
    async def _invalid(_: Request, exc: ValidationError) -> JSONResponse:
        return JSONResponse({"error": exc.message, "details": exc.details}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details: dict[str, list[str]] = {}
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
            details.setdefault(".".join(loc) or "body", []).append(str(err.get("msg")))
        return JSONResponse({"error": "Invalid request", "details": details}, status_code=400)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=404)

    @app.exception_handler(InvalidTransition)
    async def _conflict(_: Request, exc: InvalidTransition) -> JSONResponse:
        return JSONResponse({"error": str(exc), "status": exc.current_state}, status_code=409)

    @app.exception_handler(Overloaded)
    async def _overloaded(_: Request, exc: Overloaded) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc)}, status_code=503, headers={"Retry-After": str(exc.retry_after)}
        )

    @app.exception_handler(RateLimited)
    async def _rate_limited(_: Request, exc: RateLimited) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)}
        )

    @app.exception_handler(StorageError)
    async def _storage(_: Request, exc: StorageError) -> JSONResponse:
        return JSONResponse(
            {"error": f"storage unavailable: {exc}"}, status_code=503, headers={"Retry-After": "5"}
        )
