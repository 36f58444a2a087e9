"""What ``workbench scheduler`` writes to its log: one line per tick, and a quiet Ctrl-C.

A real scheduler subprocess (real papermill, real kernel) on a 2-second interval.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.live_server import stop_process


def _start(data_dir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "WORKBENCH_DATA_DIR": str(data_dir),
        "WORKBENCH_EVALUATE_INTERVAL_SECONDS": "2",
        "WORKBENCH_HOUSEKEEPING_INTERVAL_SECONDS": "0",
    }
    with open(log_path, "wb") as log:
        # A session of its own: Ctrl-C in a terminal signals the whole process group.
        return subprocess.Popen(
            [sys.executable, "-m", "workbench", "scheduler"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_a_tick_is_one_line_and_ctrl_c_during_a_tick_stops_quietly(
    data_dir: Path, tmp_path: Path
) -> None:
    log_path = tmp_path / "scheduler.log"
    proc = _start(data_dir, log_path)
    try:
        assert _wait_for(lambda: " tick " in log_path.read_text(errors="replace"), 120)
        first_tick = log_path.read_text(errors="replace")
        # Ctrl-C while the next tick's kernel runs.
        scheduler = psutil.Process(proc.pid)
        assert _wait_for(lambda: bool(scheduler.children(recursive=True)), 60)
        os.killpg(proc.pid, signal.SIGINT)
        assert _wait_for(lambda: proc.poll() is not None, 60), "Ctrl-C did not stop it"
    finally:
        stop_process(proc)
    text = log_path.read_text(errors="replace")
    lines = first_tick.strip().splitlines()
    assert "scheduler started" in lines[0], first_tick
    assert len(lines) == 2, first_tick  # started, then the tick's own line
    assert " tick " in lines[1]
    assert "papermill" not in text
    assert "IPKernelApp" not in text
    assert "Traceback" not in text, text
    assert "scheduler stopped" in text.strip().splitlines()[-1], text
