"""A real ``workbench serve`` subprocess on a loopback port, for tests that talk HTTP to it.

Used by the OTLP and logging-handler tests; the server can be killed and started
again on the same port and data directory (the handler must ride that out).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """``workbench serve`` on 127.0.0.1:``port`` over ``data_dir`` (flushing every 0.2 s)."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> LiveServer:
        """Start the server and return once ``/health`` answers."""
        env = {
            **os.environ,
            "WORKBENCH_DATA_DIR": str(self.data_dir),
            "WORKBENCH_FLUSH_INTERVAL_SECONDS": "0.2",
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workbench",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise AssertionError(f"server exited {self.proc.returncode}: {err}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise AssertionError("server did not become ready")

    def kill(self) -> None:
        """Kill the server with SIGKILL (its WAL is replayed by the next start)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._close()

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM: it flushes to the lake), killing it if it hangs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()

    def _close(self) -> None:
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
