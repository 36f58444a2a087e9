"""Fixtures of the lake tests: valid events, an ingestor, and real server subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from workbench.config import Settings
from workbench.events import Event, Limits, validate_event
from workbench.lake.ingestor import Ingestor

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def make_events(count: int, *, service: str = "svc", now: datetime = NOW) -> list[Event]:
    """Return ``count`` valid events (message ``m{i}``) accepted at ``now``."""
    return [
        validate_event(
            {"service": service, "level": "error", "message": f"m{i}", "meta": {"i": i}},
            now=now,
            limits=Limits(),
        )
        for i in range(count)
    ]


@pytest.fixture
def ingestor(settings: Settings) -> Iterator[Ingestor]:
    """A started ingestor without its background flusher (tests call flush())."""
    ing = Ingestor(settings, clock=lambda: NOW)
    ing.start(background=False)
    try:
        yield ing
    finally:
        ing.stop()


class Server:
    """A real ``workbench serve`` subprocess on a free loopback port."""

    def __init__(
        self,
        data_dir: Path,
        *,
        flush_interval_s: float = 0.2,
        workers: int = 1,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {
            **os.environ,
            "WORKBENCH_DATA_DIR": str(data_dir),
            "WORKBENCH_FLUSH_INTERVAL_SECONDS": str(flush_interval_s),
            **(env or {}),
        }
        # A file, not a pipe: a chatty server must never block on a full pipe.
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        command = [sys.executable, "-m", "workbench", "serve", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [*command, "--workers", str(workers)] if workers > 1 else command,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Return once ``/health`` answers; fail with the server's stderr if it died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.log_path.read_text(errors="replace")
                raise AssertionError(f"server exited {self.proc.returncode}: {err}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError("server did not become ready")

    def health(self) -> dict[str, Any]:
        """Return the server's ``/health`` body."""
        result: dict[str, Any] = httpx.get(f"{self.url}/health", timeout=5).json()
        return result

    def kill(self) -> None:
        """Kill the server with SIGKILL (no flush, no cleanup)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM: it flushes), killing it if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def servers(data_dir: Path) -> Iterator[Callable[[], Server]]:
    """A factory of servers on ``data_dir``; every server it started is stopped afterwards."""
    started: list[Server] = []

    def start() -> Server:
        server = Server(data_dir)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
