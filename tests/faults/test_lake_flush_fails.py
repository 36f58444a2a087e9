"""Fault: every lake flush fails for a while (EMFILE from the Parquet writer), then works."""

from __future__ import annotations

import errno
import os
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingest_api.app import create_app
from workbench.config import Settings
from workbench.lake import ingestor as ingestor_module
from workbench.lake import reader


def _wait_for_health(client: TestClient, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        body: dict[str, Any] = client.get("/health").json()
        assert body["wal"]["events"] >= 0 and body["wal"]["bytes"] >= 0, body
        if body["status"] == status or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_failing_flushes_degrade_health_and_lose_nothing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Injects: ``OSError(EMFILE)`` from every lake write of the flusher.

    Proves: ``/health`` turns ``degraded`` naming ``lake flush: …`` (it said ok
    through 36 s of failed flushes), ingest keeps answering 202 (the WAL holds the
    events) with a backlog that is never negative; once writes work, health is ok
    again and every 202 event is in the lake once.
    """
    real_write_batch = ingestor_module.write_batch
    failing = {"on": False}

    def write_batch(*args: Any, **kwargs: Any) -> list[str]:
        if failing["on"]:
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        return real_write_batch(*args, **kwargs)

    monkeypatch.setattr(ingestor_module, "write_batch", write_batch)
    fast = settings.model_copy(update={"flush_interval_s": 0.05})
    accepted = []
    with TestClient(create_app(fast)) as client:
        failing["on"] = True
        for i in range(5):
            event = {"service": "s", "level": "info", "message": f"m{i}"}
            assert client.post("/api/logs", json=event).status_code == 202
            accepted.append(f"m{i}")
        body = _wait_for_health(client, "degraded")
        assert body["status"] == "degraded", body
        assert any(
            p.startswith("lake flush: ") and "Too many open files" in p for p in body["problems"]
        )
        assert body["wal"]["events"] == 5
        failing["on"] = False
        body = _wait_for_health(client, "ok")
        assert body["status"] == "ok" and body["problems"] == [], body
        client.app.state.ingestor.flush()  # type: ignore[attr-defined]
        assert client.get("/health").json()["wal"]["events"] == 0
    messages = reader.scan(settings.lake_url).collect()["message"].to_list()
    assert sorted(messages) == sorted(accepted)
