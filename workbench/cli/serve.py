"""CLI commands of the serve area: ``workbench serve`` runs the ingest/REST API under uvicorn."""

from __future__ import annotations

import os

import click

from workbench.config import get_settings
from workbench.security import bind_check


@click.command("serve")
@click.option("--host", default=None, help="Interface to bind (default WORKBENCH_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default PORT, 4000).")
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Worker processes; each owns its own write-ahead log.",
)
@click.option("--log-level", default="warning", show_default=True, help="uvicorn log level.")
def serve(host: str | None, port: int | None, workers: int, log_level: str) -> None:
    """Run the ingest and REST API (POST /api/logs, GET /health, queries, alerts)."""
    import uvicorn

    from ingest_api.lifecycle import GC_FREEZE_ENV
    from workbench.catalog.db import catalog_engine
    from workbench.logs_config import uvicorn_log_config

    settings = get_settings()
    bind_check(settings, host or settings.host)  # beyond loopback only with API keys
    catalog_engine(settings.database_url)  # a missing database: one line naming the fix
    os.environ.setdefault(GC_FREEZE_ENV, "1")  # inherited by worker processes
    uvicorn.run(
        "ingest_api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_level=log_level,
        # Access logs cost a large share of a tiny request's time; errors still log.
        access_log=False,
        log_config=uvicorn_log_config(),  # a client gone mid-request: one INFO line
        timeout_graceful_shutdown=30,
    )


COMMANDS: list[click.Command] = [serve]
