"""Start and stop what the API process runs beside the routes (ingestor, catalog engine)."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from workbench.config import Settings
from workbench.lake.ingestor import Ingestor

GC_FREEZE_ENV = "WORKBENCH_GC_FREEZE"


@asynccontextmanager
async def running(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """Run the app's background parts for the lifetime of the server.

    The ingestor claims its WAL folder on start; on graceful shutdown it flushes
    every accepted event to the lake and removes its folder.
    """
    ingestor = Ingestor(settings)
    ingestor.start()
    app.state.ingestor = ingestor
    if os.environ.get(GC_FREEZE_ENV) == "1":
        # Move everything alive at start-up (modules, app, routes) out of the
        # cyclic GC's reach: collections then scan only per-request garbage
        # (about +25 % single-event POSTs per CPU second). Only for real servers
        # (`workbench serve` sets it): test processes build many apps and would
        # keep every frozen one alive.
        gc.freeze()
    try:
        yield
    finally:
        # The final flush writes Parquet: keep it off the event loop.
        await asyncio.to_thread(ingestor.stop)
        limiter = getattr(app.state, "ingest_limiter", None)
        if limiter is not None:
            limiter.close()
