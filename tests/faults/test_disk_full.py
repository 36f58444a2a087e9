"""Fault: the disk fills up under ingestion (ENOSPC at the WAL write seam)."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingest_api.app import create_app
from workbench.config import Settings
from workbench.lake import reader, wal


def test_enospc_answers_503_keeps_data_and_recovers(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Injects: ``OSError(ENOSPC)`` from every WAL ``write`` after a partial write of 10 bytes.

    Proves: the API answers 503 with ``Retry-After`` and a message saying the
    storage is full; the events accepted before are intact in the lake; the
    half-written group is cut off so it cannot hide later records from replay;
    once space returns, ingestion accepts again and every 202 event is in the
    lake exactly once (the refused ones are not).
    """
    real_write = os.write
    full = {"on": False}

    def write(fd: int, data: Any) -> int:
        if full["on"]:
            real_write(fd, bytes(data)[:10])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(wal.os, "write", write)
    with TestClient(create_app(settings)) as client:
        for i in range(3):
            assert (
                client.post(
                    "/api/logs", json={"service": "ok", "level": "info", "message": f"before-{i}"}
                ).status_code
                == 202
            )
        full["on"] = True
        r = client.post("/api/logs", json={"service": "ok", "level": "info", "message": "during"})
        assert r.status_code in (503, 507)
        assert "No space left on device" in r.json()["error"]
        assert r.headers.get("Retry-After")
        batch = [{"service": "ok", "level": "info", "message": "during-batch"}] * 5
        assert client.post("/api/logs", json=batch).status_code in (503, 507)
        full["on"] = False
        for i in range(2):
            assert (
                client.post(
                    "/api/logs", json={"service": "ok", "level": "info", "message": f"after-{i}"}
                ).status_code
                == 202
            )
        client.app.state.ingestor.flush()  # type: ignore[attr-defined]
        messages = sorted(reader.scan(settings.lake_url).collect()["message"].to_list())
    assert messages == ["after-0", "after-1", "before-0", "before-1", "before-2"]


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted under ``tmp_path`` (root only; skipped otherwise); unmounted after."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_real_full_filesystem(tiny_fs: Path) -> None:
    """Injects: a real full filesystem (tmpfs of 4 MiB, filled by a ballast file).

    Proves: ingest answers 503 naming the full disk (no 500, no hang); every
    event answered 202 before and after is in the lake once space returns
    (the ballast deleted) and the server flushes.
    """
    data = tiny_fs / "data"
    data.mkdir()
    app_settings = Settings(WORKBENCH_DATA_DIR=data)  # type: ignore[call-arg]
    accepted: list[str] = []
    with TestClient(create_app(app_settings)) as client:
        for i in range(5):
            r = client.post("/api/logs", json={"service": "s", "level": "info", "message": f"a{i}"})
            assert r.status_code == 202
            accepted.append(f"a{i}")
        client.app.state.ingestor.flush()  # type: ignore[attr-defined]
        ballast = tiny_fs / "ballast"
        with open(ballast, "wb", buffering=0) as f:
            for chunk in (65536, 512):
                with contextlib.suppress(OSError):
                    while True:
                        f.write(b"\0" * chunk)
        codes = []
        for i in range(20):
            r = client.post(
                "/api/logs",
                json=[{"service": "s", "level": "info", "message": f"b{i}-{j}"} for j in range(50)],
            )
            codes.append(r.status_code)
            if r.status_code == 202:
                accepted.extend(f"b{i}-{j}" for j in range(50))
            else:
                assert r.status_code in (503, 507), r.text
                assert "No space left" in r.json()["error"]
        assert set(codes) & {503, 507}, codes
        ballast.unlink()
        time.sleep(0.1)
        r = client.post("/api/logs", json={"service": "s", "level": "info", "message": "c0"})
        assert r.status_code == 202
        accepted.append("c0")
        client.app.state.ingestor.flush()  # type: ignore[attr-defined]
        messages = reader.scan(app_settings.lake_url).collect()["message"].to_list()
    assert sorted(messages) == sorted(accepted)
