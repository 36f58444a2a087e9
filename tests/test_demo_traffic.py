"""Live demo traffic goes through the real ingest API and trips the seeded rule's service."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import polars as pl
import pytest

from tests.live_server import LiveServer
from workbench import demo_traffic
from workbench.demo import service_names
from workbench.lake.reader import scan


@pytest.mark.slow
def test_demo_traffic_lands_in_the_lake_with_a_burst(data_dir: Path) -> None:
    server = LiveServer(data_dir).start()
    try:
        stop = threading.Event()
        result: list[int] = []
        worker = threading.Thread(
            target=lambda: result.append(
                demo_traffic.run(server.url, rate=20, first_burst_after=0, stop=stop, seed=1)
            )
        )
        worker.start()
        time.sleep(5)
        stop.set()
        worker.join(timeout=10)
        assert result and result[0] > 20
        deadline = time.monotonic() + 15
        lake = str(data_dir / "lake")
        while time.monotonic() < deadline:
            frame = scan(lake).collect()
            if frame.height >= result[0]:
                break
            time.sleep(0.5)
        assert frame.height == result[0]
        burst = frame.filter(
            (pl.col("service") == service_names(8)[0]) & pl.col("level").is_in(["error", "fatal"])
        )
        assert burst.height >= 2
    finally:
        server.stop()
