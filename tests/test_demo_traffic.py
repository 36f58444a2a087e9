"""Live demo traffic goes through the real ingest API and trips the seeded rule's service."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.live_server import LiveServer
from workbench import demo_traffic
from workbench.catalog.db import dispose_engine, get_engine, init_db, session_scope
from workbench.config import Settings
from workbench.demo import service_names
from workbench.lake.reader import scan
from workbench.security.keys import create_key, list_keys


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


def _keyed(data_dir: Path) -> Settings:
    """Make the data directory's API keyed (an admin key exists) and return its settings."""
    settings = Settings(WORKBENCH_DATA_DIR=data_dir)  # type: ignore[call-arg]
    engine = get_engine(settings.database_url)
    init_db(engine)
    with session_scope(engine) as s:
        create_key(session=s, name="operator", scopes=["admin"], now=datetime.now(UTC))
    return settings


def _run_until(
    url: str, done: Callable[[], bool], **kwargs: Any
) -> int:
    """Run demo traffic against ``url`` until ``done()`` (at most 30 s); return events accepted."""
    stop = threading.Event()
    result: list[int] = []
    worker = threading.Thread(
        target=lambda: result.append(demo_traffic.run(url, rate=20, stop=stop, seed=2, **kwargs))
    )
    worker.start()
    deadline = time.monotonic() + 30
    try:
        while not done() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        worker.join(timeout=15)
    assert result, "demo traffic did not stop"
    return result[0]


@pytest.mark.slow
def test_demo_traffic_creates_its_own_key_once_the_api_is_keyed(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _keyed(data_dir)
    server = LiveServer(data_dir).start()
    caplog.set_level(logging.INFO, logger="workbench.demo_traffic")
    try:
        accepted = _run_until(
            server.url,
            lambda: "accepted with its key" in caplog.text,
            get_key=lambda: demo_traffic.ingest_key(settings, now=datetime.now(UTC)),
        )
        assert accepted > 0, caplog.text
        assert "the API requires keys: created ingest key" in caplog.text
        key_file = data_dir / "demo-traffic.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        # A restart reuses the stored key instead of creating another one.
        assert demo_traffic.ingest_key(settings, now=datetime.now(UTC)) == key_file.read_text().strip()
        with session_scope(get_engine(settings.database_url)) as s:
            names = [k.name for k in list_keys(session=s)]
        assert names.count("demo-traffic") == 1
    finally:
        server.stop()
        dispose_engine(settings.database_url)


@pytest.mark.slow
def test_demo_traffic_refused_says_so_once(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = _keyed(data_dir)
    server = LiveServer(data_dir).start()
    caplog.set_level(logging.INFO, logger="workbench.demo_traffic")
    try:
        posts: list[int] = []
        accepted = _run_until(
            server.url, lambda: len(posts) >= 3, on_response=lambda status: posts.append(status)
        )
        assert accepted == 0 and set(posts) == {401}
        refusals = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 1, caplog.text  # one clear line, not one per tick
        assert "401" in refusals[0].getMessage() and "API key required" in refusals[0].getMessage()
        assert refusals[0].levelno == logging.ERROR
    finally:
        server.stop()
        dispose_engine(settings.database_url)


@pytest.mark.slow
def test_the_demo_traffic_command_logs_and_uses_its_key(data_dir: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.live_server import stop_process

    settings = _keyed(data_dir)
    server = LiveServer(data_dir).start()
    log_path = data_dir.parent / "demo-traffic.log"
    env = {**os.environ, "WORKBENCH_DATA_DIR": str(data_dir)}
    try:
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "workbench", "demo-traffic", "--url", server.url],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while "accepted with its key" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        stop_process(proc)
        text = log_path.read_text()
        assert "the API requires keys: created ingest key" in text, text
        assert "accepted with its key" in text, text
        assert (data_dir / "demo-traffic.key").exists()
        # A line per POST every second would bury the scheduler's and the API's lines
        # in `workbench up`'s console: the traffic says only what changes.
        assert "HTTP Request:" not in text, text
    finally:
        server.stop()
        dispose_engine(settings.database_url)
