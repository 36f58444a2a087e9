"""``workbench up`` refuses a busy port instead of announcing another server as its own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_server import free_port, stop_process


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 held by a plain listening socket (someone else's server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _up(data_dir: Path, *args: str) -> tuple[int | None, str]:
    """Run ``workbench up ARGS``; return its exit code (None if still running after 45 s) and output."""
    env = {**os.environ, "WORKBENCH_DATA_DIR": str(data_dir)}
    log_path = data_dir.parent / "up.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workbench", "up", "--no-scheduler", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 45
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    code = proc.poll()
    stop_process(proc)
    return code, log_path.read_text(errors="replace")


@pytest.mark.slow
def test_up_refuses_a_busy_api_port(data_dir: Path, busy_port: int) -> None:
    code, out = _up(data_dir, "--no-dashboard", "--port", str(busy_port))
    assert code is not None and code != 0, f"`workbench up` kept running:\n{out}"
    assert f"port {busy_port} on 127.0.0.1 is already in use" in out
    assert "--port" in out
    assert "all parts started" not in out


@pytest.mark.slow
def test_up_refuses_a_busy_dashboard_port(data_dir: Path, busy_port: int) -> None:
    code, out = _up(data_dir, "--port", str(free_port()), "--dashboard-port", str(busy_port))
    assert code is not None and code != 0, f"`workbench up` kept running:\n{out}"
    assert f"port {busy_port} on 127.0.0.1 is already in use" in out
    assert "--dashboard-port" in out
    assert "all parts started" not in out


def test_check_ports_names_the_option_of_a_busy_or_repeated_port(busy_port: int) -> None:
    from workbench.errors import ConfigError
    from workbench.supervisor import check_ports

    free = free_port()
    check_ports("127.0.0.1", {"--port": free})  # a free port passes
    with pytest.raises(ConfigError, match=f"port {busy_port} on 127.0.0.1 .* --dashboard-port"):
        check_ports("127.0.0.1", {"--port": free, "--dashboard-port": busy_port})
    with pytest.raises(ConfigError, match=f"--dashboard-port {free} is the same port as --port"):
        check_ports("127.0.0.1", {"--port": free, "--dashboard-port": free})


def test_up_without_the_dashboard_extra_names_it_before_starting(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from workbench.cli import dashboard, main

    monkeypatch.setattr(dashboard, "DASHBOARD_MODULES", ("voila_is_not_installed",))
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(data_dir))
    result = CliRunner().invoke(main, ["up", "--no-scheduler", "--port", str(free_port())])
    assert result.exit_code == 2
    assert "pip install 'log-workbench[dashboard]'" in result.output
    assert "--no-dashboard" in result.output
    assert "all parts started" not in result.output
