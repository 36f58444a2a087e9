"""A real ``workbench serve`` and ``workbench evaluate`` on an S3 lake (issue 13 item 1).

The S3 server is moto's standalone server, a stand-in started by the test on 127.0.0.1
(``tests/s3_helpers.py``; a real S3/MinIO when ``WORKBENCH_TEST_S3_URL`` is set). The
processes get only ``WORKBENCH_LAKE_URL=s3://…`` and the standard AWS variables, as a
deployment does; the write-ahead log stays in the node's local data directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.alerting.conftest import add_rule
from tests.live_server import LiveServer
from tests.s3_helpers import s3_lake
from workbench.catalog.db import get_engine
from workbench.config import Settings

pytestmark = pytest.mark.slow

EVENTS = 60
VISIBLE_WITHIN_S = 20.0


def _total(client: httpx.Client, service: str) -> int:
    response = client.get("/api/logs", params={"service": service, "limit": 1})
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


def test_s3_standin_serve_flushes_to_the_lake_and_evaluate_reads_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    now = datetime.now(UTC).replace(microsecond=0)
    with s3_lake() as (url, aws):
        env = {**aws, "WORKBENCH_LAKE_URL": url}
        server = LiveServer(data_dir, env=env).start(timeout=60)
        try:
            events = [
                {
                    "service": "s3-auth",
                    "level": "error" if i % 2 else "info",
                    "message": f"login failed {i}",
                    "timestamp": (
                        now - timedelta(seconds=30) + timedelta(seconds=i / 10)
                    ).isoformat(),
                }
                for i in range(EVENTS)
            ]
            with httpx.Client(base_url=server.url, timeout=30) as client:
                for event in events:
                    assert client.post("/api/logs", json=event).status_code == 202
                deadline = time.monotonic() + VISIBLE_WITHIN_S
                while _total(client, "s3-auth") < EVENTS and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert _total(client, "s3-auth") == EVENTS
                errors = client.get(
                    "/api/logs", params={"service": "s3-auth", "level": "error", "limit": 5}
                ).json()
                assert errors["total"] == EVENTS // 2 and len(errors["logs"]) == 5
        finally:
            server.stop()
        # Nothing of the lake is on the local disk: only the WAL is.
        assert not (data_dir / "lake").exists() or not list((data_dir / "lake").rglob("*.parquet"))

        settings = Settings(WORKBENCH_DATA_DIR=data_dir, WORKBENCH_LAKE_URL=url)  # type: ignore[call-arg]
        engine = get_engine(settings.database_url)
        add_rule(engine, service="s3-auth", name="s3 auth errors", threshold=10)
        engine.dispose()
        at = (now + timedelta(minutes=1)).replace(second=0)
        result = subprocess.run(
            [sys.executable, "-m", "workbench", "evaluate", "--now", at.isoformat()],
            env={**os.environ, "WORKBENCH_DATA_DIR": str(data_dir), **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ok; created=1" in result.stdout, result.stdout + result.stderr
        assert "s3 auth errors" in result.stdout
