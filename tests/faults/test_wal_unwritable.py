"""Fault: the WAL directory becomes unwritable under a running server, then writable again.

The server runs as an unprivileged user (root ignores ``chmod``): as ``nobody``
through ``setpriv`` when the tests run as root, as the current user otherwise.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from tests.live_server import LiveServer
from workbench.lake import reader

NOBODY = 65534


@pytest.fixture
def unprivileged_data_dir() -> Iterator[Path]:
    """A data directory the server's user owns, outside root's private pytest folder."""
    base = Path(tempfile.mkdtemp(prefix="wb-wal-fault-"))
    os.chmod(base, 0o755)
    data = base / "data"
    data.mkdir()
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv is needed to run the server as nobody")
        os.chown(data, NOBODY, NOBODY)
    try:
        yield data
    finally:
        for path in [data, *data.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                os.chmod(path, 0o755)
        shutil.rmtree(base, ignore_errors=True)


def _set_wal_writable(wal_dir: Path, writable: bool) -> None:
    mode = 0o755 if writable else 0o555
    for folder in [wal_dir, *(p for p in wal_dir.iterdir() if p.is_dir())]:
        os.chmod(folder, mode)


def _post(url: str, message: str) -> httpx.Response:
    event = {"service": "client-a", "level": "info", "message": message}
    return httpx.post(f"{url}/api/logs", json=event, timeout=10)


def _health(server: LiveServer) -> dict[str, Any]:
    body = server.health()
    wal = body["wal"]
    assert wal["events"] >= 0 and wal["bytes"] >= 0, body
    return body


@pytest.mark.slow
def test_unwritable_wal_answers_503_degrades_health_and_recovers(
    unprivileged_data_dir: Path,
) -> None:
    """Injects: ``chmod 0555`` on the WAL directory and its writer folder mid-run, then 0755.

    Proves: no stale descriptor is ever written to (an idle TCP connection
    receives nothing, shutdown has no EBADF); while segments cannot be created,
    ``POST /api/logs`` answers 503 JSON with Retry-After and ``/health`` says
    ``degraded`` naming the WAL; the backlog is never negative; within 15 s of
    the directory being writable again ingest answers 202 and health is ``ok``;
    the server stops cleanly; every event answered 202 is in the lake exactly once.
    """
    data = unprivileged_data_dir
    server = LiveServer(
        data,
        flush_interval_s=0.2,
        env={"WORKBENCH_FLUSH_MAX_EVENTS": "5", "HOME": str(data)},
    )
    if os.geteuid() == 0:
        server._command = [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            *server._command,
        ]
    server.start(timeout=60)  # a loaded CI machine can take long to import everything
    accepted: list[str] = []
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        for i in range(12):
            r = _post(server.url, f"before-{i}")
            assert r.status_code == 202, r.text
            accepted.append(f"before-{i}")
        assert _health(server)["status"] == "ok"

        _set_wal_writable(data / "wal", False)
        refused = None
        deadline = time.monotonic() + 15
        i = 0
        while time.monotonic() < deadline:
            r = _post(server.url, f"during-{i}")
            assert r.status_code in (202, 503), r.text
            if r.status_code == 202:
                accepted.append(f"during-{i}")
            else:
                refused = r
                health = _health(server)
                if health["status"] != "ok":
                    break
            i += 1
        assert refused is not None, "ingest never refused while the WAL was unwritable"
        assert refused.headers.get("Retry-After")
        assert "write-ahead log" in refused.json()["error"]
        # The flusher's next round fails too (it cannot seal the segment): both are named.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            health = _health(server)
            if any(p.startswith("lake flush: ") for p in health["problems"]):
                break
            time.sleep(0.05)
        assert health["status"] == "degraded"
        assert any(p.startswith("wal: ") for p in health["problems"]), health
        assert any(p.startswith("lake flush: ") for p in health["problems"]), health
        for j in range(3):  # still refused, still JSON, still no stale descriptor
            r = _post(server.url, f"refused-{j}")
            assert r.status_code == 503 and r.json()["error"], r.text

        _set_wal_writable(data / "wal", True)
        restored = time.monotonic()
        ok = False
        deadline = restored + 15
        k = 0
        while time.monotonic() < deadline and not ok:
            r = _post(server.url, f"after-{k}")
            assert r.status_code in (202, 503), r.text
            if r.status_code == 202:
                accepted.append(f"after-{k}")
                ok = _health(server)["status"] == "ok"
            k += 1
            time.sleep(0.05)
        assert ok, f"not recovered 15 s after the WAL was writable: {_health(server)}"
        print(f"recovered {time.monotonic() - restored:.2f} s after chmod 0755")
        for j in range(6):
            r = _post(server.url, f"last-{j}")
            assert r.status_code == 202, r.text
            accepted.append(f"last-{j}")

        idle.setblocking(False)
        try:
            leaked = idle.recv(65536)
        except BlockingIOError:
            leaked = b""
        assert b"client-a" not in leaked, f"an event reached another connection: {leaked!r}"
    finally:
        idle.close()
        server.stop()
    log_text = server.log_path.read_text(errors="replace")
    # uvicorn re-raises the SIGTERM it handled once shut down: -15 is a clean stop.
    assert server.proc is not None and server.proc.returncode in (0, -15), log_text[-3000:]
    assert "Bad file descriptor" not in log_text, log_text[-3000:]
    assert not list((data / "wal").rglob("*.wal")), "the WAL was not drained at shutdown"
    frame = reader.scan(str(data / "lake")).collect()
    counts = frame.group_by("message").len()
    assert counts.filter(pl.col("len") > 1).height == 0, "duplicated events"
    assert sorted(frame["message"].to_list()) == sorted(accepted)
