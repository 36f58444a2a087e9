"""A real ``workbench serve`` subprocess on a loopback port, for tests that talk HTTP to it.

Used by the crash, OTLP, logging-handler and rate-limit tests; the server can be
killed and started again on the same port and data directory (the WAL replay and
the handler must ride that out).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """Ask ``proc`` to stop (SIGTERM) and wait for it; SIGKILL it if it takes over ``timeout``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class LiveServer:
    """``workbench serve`` on 127.0.0.1:``port`` over ``data_dir``.

    It flushes every ``flush_interval_s`` and runs ``workers`` processes; ``env``
    adds settings. Output goes to ``log_path`` (a file, not a pipe: a chatty
    server must never block on a full pipe).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        flush_interval_s: float = 0.2,
        workers: int = 1,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._env = {
            **os.environ,
            "WORKBENCH_DATA_DIR": str(data_dir),
            "WORKBENCH_FLUSH_INTERVAL_SECONDS": str(flush_interval_s),
            **(env or {}),
        }
        self._command = [sys.executable, "-m", "workbench", "serve", "--host", "127.0.0.1"]
        self._command += ["--port", str(self.port)]
        if workers > 1:
            self._command += ["--workers", str(workers)]

    def start(self, timeout: float = 30.0) -> LiveServer:
        """Start the server and return once ``/health`` answers."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self._command, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log_text = self.log_path.read_text(errors="replace")
                raise AssertionError(f"server exited {self.proc.returncode}: {log_text}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise AssertionError("server did not become ready")

    def health(self) -> dict[str, Any]:
        """Return the server's ``/health`` body."""
        result: dict[str, Any] = httpx.get(f"{self.url}/health", timeout=5).json()
        return result

    def kill(self) -> None:
        """Kill the server with SIGKILL (no flush: its WAL is replayed by the next start)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM: it flushes to the lake), killing it if it hangs."""
        if self.proc is not None:
            stop_process(self.proc)


def start_scheduler(
    env: dict[str, str], log: Path, *, evaluate_s: int, housekeeping_s: int
) -> subprocess.Popen[bytes]:
    """Start a real ``workbench scheduler`` writing to ``log``, ticking every ``evaluate_s``.

    It runs in a session of its own, so a Ctrl-C sent by a test (or a terminal)
    reaches it alone.
    """
    env = {
        **env,
        "WORKBENCH_EVALUATE_INTERVAL_SECONDS": str(evaluate_s),
        "WORKBENCH_HOUSEKEEPING_INTERVAL_SECONDS": str(housekeeping_s),
    }
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "workbench", "scheduler"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
