"""Durability end to end: real servers, ``kill -9`` mid-load, restart, exactly-once in the lake."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import polars as pl
import pytest

from tests.live_server import LiveServer
from workbench.config import Settings
from workbench.lake.reader import scan

pytestmark = pytest.mark.slow


class Load:
    """Threads posting uniquely-named events; remembers which ones got a 202."""

    def __init__(self, urls: list[str], threads_per_url: int = 2) -> None:
        self.acked: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(url, f"{n}-{k}"), daemon=True)
            for n, url in enumerate(urls)
            for k in range(threads_per_url)
        ]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, url: str, tag: str) -> None:
        i = 0
        with httpx.Client(base_url=url, timeout=10) as client:
            while not self._stop.is_set():
                # Alternate single events and small NDJSON batches.
                names = [f"{tag}-{i}"] if i % 2 == 0 else [f"{tag}-{i}-{j}" for j in range(20)]
                i += 1
                events = [{"service": "crash", "level": "info", "message": m} for m in names]
                try:
                    if len(events) == 1:
                        response = client.post("/api/logs", json=events[0])
                    else:
                        response = client.post(
                            "/api/logs",
                            content=b"\n".join(orjson.dumps(e) for e in events),
                            headers={"Content-Type": "application/x-ndjson"},
                        )
                except httpx.HTTPError:
                    time.sleep(0.01)  # the server is down: keep trying (it may come back)
                    continue
                if response.status_code == 202:
                    with self._lock:
                        self.acked.extend(names)


def _wait_until_drained(server: LiveServer, wal_dir: Path, timeout: float = 30.0) -> None:
    """Return once no other WAL folder is left and the server's backlog is flushed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = server.health()
        folders = [p for p in wal_dir.iterdir() if not p.name.startswith(".")]
        if len(folders) == 1 and health["wal"]["events"] == 0 and health["lastFlushAt"]:
            return
        time.sleep(0.1)
    raise AssertionError(f"WAL not drained: {list(wal_dir.iterdir())}")


def _assert_exactly_once(settings: Settings, acked: list[str]) -> pl.DataFrame:
    frame = scan(settings.lake_url).collect()
    assert frame["id"].n_unique() == frame.height, "an event id appears twice in the lake"
    counts = dict(frame.group_by("message").len().iter_rows())
    missing = [m for m in acked if m not in counts]
    duplicated = {m: n for m, n in counts.items() if n > 1}
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:3]}"
    assert not duplicated, f"duplicated: {list(duplicated.items())[:3]}"
    return frame


def test_kill_9_mid_load_then_restart_loses_and_duplicates_nothing(
    servers: Callable[[], LiveServer], settings: Settings
) -> None:
    first = servers()
    load = Load([first.url]).start()
    time.sleep(1.5)
    first.kill()
    load.stop()
    acked = list(load.acked)
    assert len(acked) > 100, "the load did not get going"
    assert any(settings.wal_dir.iterdir()), "the killed server left no WAL to replay"

    second = servers()
    _wait_until_drained(second, settings.wal_dir)
    # Continuous load with a 0.2 s flush interval: the killed WAL held unflushed events.
    assert second.health()["wal"]["replayedEvents"] > 0
    frame = _assert_exactly_once(settings, acked)
    assert frame.height >= len(acked)
    print(f"acked {len(acked)}, in lake {frame.height}")
    # And the restarted server ingests as usual.
    assert "Traceback" not in second.log_path.read_text(errors="replace")
    after = {"service": "s", "level": "info", "message": "after"}
    assert httpx.post(f"{second.url}/api/logs", json=after).status_code == 202


def test_two_servers_share_one_lake_and_a_survivor_adopts_a_killed_peer(
    servers: Callable[[], LiveServer], settings: Settings
) -> None:
    a, b = servers(), servers()
    load = Load([a.url, b.url]).start()
    time.sleep(1.5)
    b.kill()  # b's WAL is now an orphan that a (still under load) adopts
    time.sleep(0.5)
    load.stop()
    acked = list(load.acked)
    assert any(m.startswith("0-") for m in acked) and any(m.startswith("1-") for m in acked)
    _wait_until_drained(a, settings.wal_dir)
    assert a.health()["wal"]["replayedEvents"] > 0
    a.stop()  # graceful: flushes and removes its own WAL folder
    assert "Traceback" not in a.log_path.read_text(errors="replace")
    assert not [p for p in settings.wal_dir.iterdir() if not p.name.startswith(".")]
    frame = _assert_exactly_once(settings, acked)
    print(f"acked {len(acked)}, in lake {frame.height}")
