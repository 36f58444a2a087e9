"""Start and stop what the API process runs beside the routes (ingestor, catalog engine)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from workbench.config import Settings


@asynccontextmanager
async def running(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """Run the app's background parts for the lifetime of the server."""
    yield
