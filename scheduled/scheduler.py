"""The alert scheduler: run ``evaluate_alerts.ipynb`` on every interval boundary, forever.

Every ``WORKBENCH_EVALUATE_INTERVAL_SECONDS`` (60: each minute at :00) it calls
:func:`workbench.alerting.run.run_notebook` for that boundary. Ticks never overlap
(the run is synchronous here, and the file lock also keeps other processes
out); a tick that overruns makes the scheduler skip the boundaries it missed
rather than queue them. A failing tick is logged (and recorded on its
``EvaluationRun`` by ``run_notebook``) and the loop continues.

Beside the ticks, a housekeeping thread (``housekeeping``) runs every
``WORKBENCH_HOUSEKEEPING_INTERVAL_SECONDS`` (60; 0: off): retention when
``WORKBENCH_RETENTION_DAYS`` is set, compaction of past partitions, and tiered
compaction of the current one (:func:`workbench.lake.compaction.housekeep`). It
is a separate thread so a long compaction never delays a tick; it never waits
for a partition lock (a manual ``workbench compact`` keeps it), and its errors
are logged, never raised.

Several schedulers on one PostgreSQL catalog (issue 13, HA): every tick takes the
catalog's advisory lock and skips a minute another node already evaluated
(:func:`~workbench.alerting.run.run_notebook`), so each boundary is evaluated once
cluster-wide, by whichever node gets there first; a node that dies releases the
lock with its connection and the others go on. Each housekeeping pass takes a
second advisory lock (``housekeeping``) and is skipped while another node holds
it, so two nodes never compact or expire the shared lake at once. On SQLite (one
machine) nothing changes: the file lock, and no housekeeping lock.

Run it with ``workbench scheduler`` or ``python -m scheduled.scheduler``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from workbench.alerting.run import EvaluationFailed, EvaluationLocked, run_notebook
from workbench.catalog.db import catalog_engine
from workbench.catalog.locks import cluster_lock, is_cluster_catalog, node_name
from workbench.clock import now as clock_now
from workbench.config import Settings, get_settings
from workbench.lake.compaction import HousekeepingResult, SmallFilePolicy, housekeep
from workbench.logs_config import quiet_notebook_runs

log = logging.getLogger("workbench.scheduler")

HOUSEKEEPING_LOCK = "housekeeping"

Runner = Callable[..., Path]
Clock = Callable[[], datetime]


def next_boundary(now: datetime, interval_s: int) -> datetime:
    """Return the first multiple of ``interval_s`` (since the epoch) strictly after ``now``."""
    epoch = now.timestamp()
    nxt = (math.floor(epoch / interval_s) + 1) * interval_s
    return datetime.fromtimestamp(nxt, UTC)


def housekeeping_pass(settings: Settings, now: datetime) -> HousekeepingResult:
    """Run one housekeeping pass over the lake with the configured retention and compaction."""
    return housekeep(
        settings.lake_url,
        now=now,
        policy=SmallFilePolicy.from_settings(settings),
        past_policy=SmallFilePolicy.for_past_days(settings),
        grace=timedelta(seconds=settings.compact_grace_s),
        retention_days=settings.retention_days,
        lock_timeout=0.0,
    )


def locked_housekeeping_pass(settings: Settings, now: datetime) -> HousekeepingResult | None:
    """Run :func:`housekeeping_pass` under the cluster's housekeeping lock on PostgreSQL.

    Return None (nothing done) while another node holds it. On SQLite no lock is taken
    (one machine: the per-partition lock files are enough).
    """
    if not is_cluster_catalog(settings.database_url):
        return housekeeping_pass(settings, now)
    lock = cluster_lock(
        HOUSEKEEPING_LOCK, database_url=settings.database_url, data_dir=settings.data_dir
    )
    if not lock.try_acquire():
        log.debug("housekeeping skipped: another node holds the housekeeping lock")
        return None
    try:
        return housekeeping_pass(settings, now)
    finally:
        lock.release()


def run_housekeeping(
    settings: Settings, *, stop_event: threading.Event, clock: Clock = clock_now
) -> int:
    """Run :func:`housekeeping_pass` every interval until ``stop_event`` is set; return passes."""
    passes = 0
    while not stop_event.is_set():
        try:
            result = locked_housekeeping_pass(settings, clock())
            if result is None:
                passes += 1
                stop_event.wait(settings.housekeeping_interval_s)
                continue
            merged = [r for r in result.compacted if r.merged]
            if result.expired or merged or result.failed:
                log.info(
                    "housekeeping: %d partition(s) expired, %d compacted (%d files merged, "
                    "%d deleted), %d busy, %d failed",
                    len(result.expired),
                    len(merged),
                    sum(r.merged for r in merged),
                    sum(r.deleted for r in result.compacted),
                    len(result.busy),
                    len(result.failed),
                )
        except Exception:
            log.exception("housekeeping pass failed")
        passes += 1
        stop_event.wait(settings.housekeeping_interval_s)
    return passes


def run_scheduler(
    settings: Settings,
    *,
    stop_event: threading.Event | None = None,
    runner: Runner = run_notebook,
    clock: Clock = clock_now,
) -> int:
    """Run the alert notebook at each boundary until ``stop_event`` is set; return ticks run."""
    stop = stop_event or threading.Event()
    catalog_engine(settings.database_url)
    interval = settings.evaluate_interval_s
    ticks = 0
    cluster = is_cluster_catalog(settings.database_url)
    log.info(
        "scheduler started on node %s: every %ss, runs kept in %s%s",
        node_name(),
        interval,
        settings.runs_dir,
        " (cluster: PostgreSQL advisory lock)" if cluster else "",
    )
    housekeeper: threading.Thread | None = None
    if settings.housekeeping_interval_s > 0:
        housekeeper = threading.Thread(
            target=run_housekeeping,
            args=(settings,),
            kwargs={"stop_event": stop, "clock": clock},
            name="housekeeping",
            daemon=True,  # a pass still running at exit leaves only hidden temporaries
        )
        housekeeper.start()
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
            log.info("tick %s ok on node %s: %s", target.isoformat(), node_name(), path)
        except EvaluationLocked as exc:
            # In a cluster another node evaluating is the normal case, not a warning.
            log.log(
                logging.INFO if cluster else logging.WARNING,
                "tick %s skipped: %s",
                target.isoformat(),
                exc,
            )
        except EvaluationFailed as exc:
            log.error("tick %s failed: %s (see %s)", target.isoformat(), exc, exc.notebook_path)
        except Exception:
            log.exception("tick %s failed", target.isoformat())
        ticks += 1
    if housekeeper is not None:
        housekeeper.join(timeout=5)  # a pass cut short is safe
    log.info("scheduler stopped after %d ticks", ticks)
    return ticks


def main() -> None:
    """Run the scheduler with the settings from the environment until interrupted."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    quiet_notebook_runs()  # one line per tick: ours
    try:
        run_scheduler(get_settings())
    except KeyboardInterrupt:  # Ctrl-C, possibly mid-tick: the run's lock is released
        log.info("scheduler stopped (interrupted)")


if __name__ == "__main__":
    main()
