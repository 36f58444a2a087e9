"""Two ingest nodes, one lake, one PostgreSQL (issue 13, item 2, with a local lake for S3).

Two real ``workbench serve`` processes on loopback, each with its own
``WORKBENCH_DATA_DIR`` (its WAL), the same ``WORKBENCH_LAKE_URL`` and the same
``DATABASE_URL``, take load at once; one is ``kill -9``-ed mid-load and started again.
Every event either node answered 202 must then be visible exactly once through
``GET /api/logs`` on both nodes within a bounded wait, with ids unique across nodes.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.lake.test_crash import Load
from tests.live_server import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

#: How long an acknowledged event may take to show on every node (flush interval 0.2 s).
VISIBLE_WITHIN_S = 20.0


def _all_logs(node: LiveServer) -> list[dict[str, Any]]:
    """Return every event of the load's service on ``node``, following the cursor."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"service": "crash", "limit": 100}
    with httpx.Client(base_url=node.url, timeout=30) as client:
        while True:
            response = client.get("/api/logs", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            found.extend(body["logs"])
            if not body["nextCursor"]:
                return found
            params["cursor"] = body["nextCursor"]


def _total(node: LiveServer) -> int:
    response = httpx.get(
        f"{node.url}/api/logs", params={"service": "crash", "limit": 1}, timeout=30
    )
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


def _start_all(nodes: list[LiveServer]) -> None:
    """Start the nodes at once (as a cluster does: they race for the catalog's migration)."""
    errors: list[BaseException] = []

    def start(node: LiveServer) -> None:
        try:
            node.start(timeout=60)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(n,)) for n in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_two_nodes_share_a_lake_and_a_catalog_and_lose_nothing_on_kill_9(
    tmp_path: Path, postgres_url: str
) -> None:
    env = {"WORKBENCH_LAKE_URL": str(tmp_path / "lake"), "DATABASE_URL": postgres_url}
    nodes = []
    for name in ("node-a", "node-b"):
        (tmp_path / name).mkdir()
        nodes.append(LiveServer(tmp_path / name / "data", env=env))
    for node in nodes:
        node.data_dir.mkdir()
    a, b = nodes
    try:
        _start_all(nodes)
        # Messages carry the node's index: "0-…" went to a, "1-…" to b.
        load = Load([a.url, b.url], threads_per_url=1).start()
        time.sleep(1.5)
        a.kill()
        time.sleep(0.5)
        a.start(timeout=60)
        time.sleep(1.0)
        load.stop()
        acked = set(load.acked)
        # The restarted node replayed what the killed one had acknowledged but not flushed.
        assert a.health()["wal"]["replayedEvents"] > 0
        assert sum(m.startswith("0-") for m in acked) > 100, "node a took no real load"
        assert sum(m.startswith("1-") for m in acked) > 100, "node b took no real load"

        started = time.monotonic()
        while time.monotonic() - started < VISIBLE_WITHIN_S:
            if all(_total(node) >= len(acked) for node in nodes):
                break
            time.sleep(0.2)
        visible_after = time.monotonic() - started
        print(f"{len(acked)} acknowledged; visible on both nodes after {visible_after:.1f}s")

        for node in nodes:
            logs = _all_logs(node)
            messages = [log["message"] for log in logs]
            ids = [log["id"] for log in logs]
            missing = acked - set(messages)
            twice = len(messages) - len(set(messages))
            assert not missing, f"{node.url}: {len(missing)} acknowledged events missing"
            assert twice == 0, f"{node.url}: {twice} events seen twice"
            assert len(set(ids)) == len(ids), f"{node.url}: an id appears twice"
            # ids carry a per-process node part (workbench/ids.py): a, restarted a, b.
            assert len({i[12:20] for i in ids}) >= 3
    finally:
        for node in nodes:
            node.stop()
