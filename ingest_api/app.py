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
from typing import Any

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
    _document_400(app)
    return app


def _document_400(app: FastAPI) -> None:
    """Make the OpenAPI schema say what the app answers: 400 ``{error, details}``, never 422.

    FastAPI documents a 422 for every operation with parameters or a body, but
    request validation errors are translated to 400 here (see the handlers
    below), so clients and schema-driven fuzzing (tests/fuzz) see the real code.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for path, path_item in schema.get("paths", {}).items():
            for operation in path_item.values():
                responses = operation.get("responses") if isinstance(operation, dict) else None
                if responses is None:
                    continue
                if responses.pop("422", None) is not None:
                    responses.setdefault("400", _error("Invalid request: {error, details}"))
                if "{" in path:
                    responses.setdefault("404", _error("No entity with that id"))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _error(description: str) -> dict[str, Any]:
    """Return an OpenAPI response object for a JSON error answer."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }


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
