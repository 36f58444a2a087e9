"""What ``workbench scheduler`` writes to its log: one line per tick, and a quiet Ctrl-C.

A real scheduler subprocess (real papermill, real kernel) on a 2-second interval.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from tests.live_server import start_scheduler, stop_process
from tests.waiting import wait_until


@pytest.mark.slow
def test_a_tick_is_one_line_and_ctrl_c_during_a_tick_stops_quietly(
    data_dir: Path, tmp_path: Path
) -> None:
    log_path = tmp_path / "scheduler.log"
    proc = start_scheduler(
        {**os.environ, "WORKBENCH_DATA_DIR": str(data_dir)},
        log_path,
        evaluate_s=2,
        housekeeping_s=0,
    )
    try:
        wait_until(lambda: " tick " in log_path.read_text(errors="replace"), 120)
        first_tick = log_path.read_text(errors="replace")
        # Ctrl-C while the next tick's kernel runs.
        scheduler = psutil.Process(proc.pid)
        wait_until(lambda: bool(scheduler.children(recursive=True)), 60)
        os.killpg(proc.pid, signal.SIGINT)
        wait_until(lambda: proc.poll() is not None, 60, what="Ctrl-C stops it")
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
