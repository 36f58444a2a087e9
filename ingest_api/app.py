"""The FastAPI application: routers, lifespan (ingestor, catalog), and error translation.

Library errors (``workbench.errors``) are translated to HTTP here and only here:
ValidationError -> 400 ``{"error", "details"}``; PayloadTooLarge -> 413;
NotFound -> 404; InvalidTransition -> 409 with the current state;
Overloaded -> 503 with ``Retry-After``; RateLimited -> 429 with ``Retry-After``;
StorageError -> 503 naming only the failed part (``catalog unavailable`` for the
catalog database; the driver's message, with host, port and role, goes to the
log), as does a SQLAlchemy connection error raised inside a route. API keys,
scopes, ingest rate limits, Host/Origin checks and CORS: ``ingest_api.auth``.

``/docs`` and ``/redoc`` load Swagger UI and ReDoc from the ``fastapi-offline``
package's files (served under ``/docs-assets/``), so they work without internet;
``/`` points at them, ``/health`` and the dashboard.
"""

from __future__ import annotations

import html
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi_offline
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

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

log = logging.getLogger(__name__)

# Swagger UI 5 and ReDoc 2 as files of a package: /docs works without internet.
DOCS_ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"


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
        docs_url=None,  # served below from local files instead of a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    _install_error_handlers(app)
    _install_pages(app, settings)
    auth.install(app, settings)

    from ingest_api.routes import alerts, ingest, otlp, query

    app.include_router(ingest.router)
    app.include_router(otlp.router)
    app.include_router(query.router)
    app.include_router(alerts.router)
    _document_400(app)
    return app


def _install_pages(app: FastAPI, settings: Settings) -> None:
    """Serve ``/`` (where to go next), ``/docs`` and ``/redoc`` with their assets from disk."""
    assets = auth.DOCS_ASSETS_PREFIX.rstrip("/")
    app.mount(assets, StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")
    title = app.title

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> Response:
        links = {
            "docs": "/docs",
            "redoc": "/redoc",
            "openapi": "/openapi.json",
            "health": "/health",
            "dashboard": settings.dashboard_url,
        }
        if "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"name": title, **links})
        items = "".join(
            f'<li><a href="{html.escape(url)}">{html.escape(name)}</a> {html.escape(url)}</li>'
            for name, url in links.items()
        )
        return HTMLResponse(
            f"<!doctype html><title>{html.escape(title)}</title>"
            f"<h1>{html.escape(title)}</h1><ul>{items}</ul>"
        )

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{title} - Swagger UI",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
            # Swagger UI would otherwise ask validator.swagger.io about the schema.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon.png",
            with_google_fonts=False,
        )


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
        return storage_unavailable(exc)

    @app.exception_handler(sa.exc.OperationalError)
    async def _catalog_down(_: Request, exc: sa.exc.OperationalError) -> JSONResponse:
        return storage_unavailable(exc)

    @app.exception_handler(sa.exc.InterfaceError)
    async def _catalog_gone(_: Request, exc: sa.exc.InterfaceError) -> JSONResponse:
        return storage_unavailable(exc)


def storage_unavailable_message(exc: BaseException) -> str:
    """Return what a client may read about a storage failure: the part, not the driver's text.

    A catalog failure (a SQLAlchemy error, or a StorageError caused by one) is
    ``catalog unavailable``: psycopg's message names host, port and role. The
    lake's and the WAL's own messages (``No space left on device``) say what to fix.
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, sa.exc.SQLAlchemyError):
            return auth.CATALOG_UNAVAILABLE
        cause = cause.__cause__
    if str(exc).startswith("catalog"):
        return auth.CATALOG_UNAVAILABLE
    return f"storage unavailable: {exc}"


def storage_unavailable(exc: BaseException) -> JSONResponse:
    """Return the 503 for a storage failure; the full error goes to the server log."""
    message = storage_unavailable_message(exc)
    if message == auth.CATALOG_UNAVAILABLE:
        log.warning("catalog unavailable: %s", exc, exc_info=exc)
    return JSONResponse({"error": message}, status_code=503, headers={"Retry-After": "5"})
