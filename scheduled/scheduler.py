"""The alert scheduler: run ``evaluate_alerts.ipynb`` on every interval boundary, forever.

Every ``WORKBENCH_EVALUATE_INTERVAL_SECONDS`` (60: each minute at :00) it calls
:func:`workbench.alerting.run.run_notebook` for that boundary. Ticks never overlap
(the run is synchronous here, and the file lock also keeps other processes
out); a tick that overruns makes the scheduler skip the boundaries it missed
rather than queue them. A failing tick is logged (and recorded on its
``EvaluationRun`` by ``run_notebook``) and the loop continues.

Run it with ``workbench scheduler`` or ``python -m scheduled.scheduler``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from workbench.alerting.run import EvaluationFailed, EvaluationLocked, run_notebook
from workbench.catalog.db import get_engine, init_db
from workbench.config import Settings, get_settings

log = logging.getLogger("workbench.scheduler")

Runner = Callable[..., Path]
Clock = Callable[[], datetime]


def _wall() -> datetime:
    return datetime.now(UTC)


def next_boundary(now: datetime, interval_s: int) -> datetime:
    """Return the first multiple of ``interval_s`` (since the epoch) strictly after ``now``."""
    epoch = now.timestamp()
    nxt = (math.floor(epoch / interval_s) + 1) * interval_s
    return datetime.fromtimestamp(nxt, UTC)


def run_scheduler(
    settings: Settings,
    *,
    stop_event: threading.Event | None = None,
    runner: Runner = run_notebook,
    clock: Clock = _wall,
) -> int:
    """Run the alert notebook at each boundary until ``stop_event`` is set; return ticks run."""
    stop = stop_event or threading.Event()
    init_db(get_engine(settings.database_url))
    interval = settings.evaluate_interval_s
    ticks = 0
    log.info("scheduler started: every %ss, runs kept in %s", interval, settings.runs_dir)
    while not stop.is_set():
        target = next_boundary(clock(), interval)
        wait = (target - clock()).total_seconds()
        if stop.wait(max(wait, 0.0)):
            break
        late = clock() - target
        if late > timedelta(seconds=interval):
            continue  # woke up far too late (suspend?): start again from the next boundary
        try:
            path = runner(settings=settings, now=target, dry_run=False)
            log.info("tick %s ok: %s", target.isoformat(), path)
        except EvaluationLocked as exc:
            log.warning("tick %s skipped: %s", target.isoformat(), exc)
        except EvaluationFailed as exc:
            log.error("tick %s failed: %s (see %s)", target.isoformat(), exc, exc.notebook_path)
        except Exception:
            log.exception("tick %s failed", target.isoformat())
        ticks += 1
    log.info("scheduler stopped after %d ticks", ticks)
    return ticks


def main() -> None:
    """Run the scheduler with the settings from the environment until interrupted."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        run_scheduler(get_settings())


if __name__ == "__main__":
    main()
