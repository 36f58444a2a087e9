"""Scheduled evaluation: :func:`tick` (what the notebook calls) and :func:`run_notebook`
(papermill run of ``scheduled/evaluate_alerts.ipynb`` with a lock, a timeout and retention).

``run_notebook`` is what the scheduler, the CLI and any orchestrator-like caller use:

* a non-blocking lock (:func:`workbench.catalog.locks.cluster_lock`): on SQLite the
  file ``$WORKBENCH_DATA_DIR/evaluate.lock``, on PostgreSQL an advisory lock every
  scheduler on that catalog shares; when another evaluation holds it, this one is
  skipped (:class:`EvaluationLocked`);
* on PostgreSQL, one evaluation per minute cluster-wide: a minute some node already
  evaluated (``ok``) is skipped too, and a run of that minute still ``running`` while
  we hold the lock belongs to a dead node: it is closed as an error and evaluated again;
* the run records its node (``WORKBENCH_NODE_NAME``, default ``hostname:pid`` of
  this process, passed to the kernel through the environment);
* :func:`workbench.notebooks.execute` runs the notebook on the ``python3`` kernel
  (installed for this interpreter if missing) with the cell and start timeouts from
  ``WORKBENCH_EVALUATE_TIMEOUT_SECONDS``;
* the executed copy is kept as the audit trail in
  ``runs/YYYY-MM-DD/evaluate-YYYYMMDDTHHMMSSZ.ipynb``; folders older than
  ``WORKBENCH_RUNS_RETENTION_DAYS`` are deleted;
* a failed run (kernel death, timeout, error) is recorded on the
  :class:`~workbench.catalog.models.EvaluationRun` heartbeat, then raised as
  :class:`EvaluationFailed`.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from workbench import clock
from workbench.alerting.evaluate import EvaluationResult, evaluate
from workbench.alerting.notify import DeliveryReport, deliver_due
from workbench.catalog import models as m
from workbench.catalog.db import catalog_engine, get_engine, session_scope
from workbench.catalog.locks import NODE_NAME_SETTING, cluster_lock, is_cluster_catalog, node_name
from workbench.config import Settings, get_settings
from workbench.errors import WorkbenchError
from workbench.notebooks import ALERT_NOTEBOOK, NotebookFailed, describe, execute, report_url
from workbench.times import parse_instant

log = logging.getLogger(__name__)

LOCK_NAME = "evaluate.lock"
CLUSTER_LOCK = "evaluate"  # the lock's name: file evaluate.lock, or its advisory key
ACTION_ORDER = ("create", "reopen", "auto_resolve", "repeat", "update", "suppress", "none")
DELIVERY_LIMIT = 50  # per tick: bounded so a tick stays well inside its timeout


class EvaluationLocked(WorkbenchError):
    """Another evaluation holds the lock; this tick is skipped."""


class EvaluationFailed(WorkbenchError):
    """The notebook run failed; ``notebook_path`` holds the executed copy with the error."""

    def __init__(self, message: str, notebook_path: Path) -> None:
        super().__init__(message)
        self.notebook_path = notebook_path


@dataclass(frozen=True, slots=True)
class TickResult:
    """One tick: the evaluation outcome and what the notifier sent (None on a dry run)."""

    evaluation: EvaluationResult
    delivery: DeliveryReport | None

    def frame(self) -> pl.DataFrame:
        """Return this tick's decisions, one row per rule (state changes first), as a DataFrame."""
        cols = [
            "name",
            "service",
            "count",
            "threshold",
            "action",
            "reason",
            "notify",
            "deliveries",
            "incident_id",
            "rule_id",
        ]
        rows = self.evaluation.rows()
        if not rows:
            return pl.DataFrame(schema={c: pl.String for c in cols})
        # What changed or paged first, then suppressions, then the quiet rules.
        rank = {a: i for i, a in enumerate(ACTION_ORDER)}
        rows.sort(key=lambda r: (rank.get(r["action"], len(rank)), r["service"], r["name"]))
        return pl.DataFrame(rows).select(cols)

    def summary(self) -> str:
        """Return a one-line account of the tick, e.g. ``12:01Z 3 rules: created=1 ...``."""
        ev = self.evaluation
        counts = " ".join(f"{k}={v}" for k, v in sorted(ev.counts().items())) or "no rules"
        mode = " (dry run)" if ev.dry_run else ""
        sent = ""
        if self.delivery is not None:
            d = self.delivery
            sent = f"; notifications sent={d.sent} retrying={d.retrying} failed={d.failed}"
        return f"{ev.now.isoformat()}{mode}: {len(ev.outcomes)} rules: {counts}{sent}"


def evaluation_time(now: str | datetime | None, field: str = "now") -> datetime:
    """Return the evaluation time: ``now`` parsed (ISO 8601, naive = UTC), or the current minute.

    A bad ``now`` is a ValidationError naming ``field`` (``--now`` on the command line).
    """
    if now is None or (isinstance(now, str) and not now.strip()):
        return clock.minute()
    return parse_instant(now, field)


def tick(
    now: str | datetime = "",
    database_url: str = "",
    lake_url: str = "",
    dry_run: bool = False,
    dashboard_url: str = "",
    notebook_path: str = "",
) -> TickResult:
    """Evaluate every rule at ``now`` and send the notifications due; return both outcomes.

    Empty strings fall back to the settings (environment), so the notebook runs
    unchanged under the scheduler, cron or Airflow.
    """
    settings = get_settings()
    at = evaluation_time(now)
    engine = get_engine(database_url or settings.database_url)
    evaluation = evaluate(
        engine=engine,
        lake_url=lake_url or settings.lake_url,
        now=at,
        dry_run=dry_run,
        dashboard_url=dashboard_url or settings.dashboard_url,
        notebook_path=notebook_path or None,
        report_url=lambda incident_id: report_url(settings, incident_id),
        cache_dir=settings.data_dir / "cache" / "alert-baselines",
    )
    delivery = None
    if not dry_run:
        delivery = deliver_due(
            engine=engine, now=at, limit=DELIVERY_LIMIT, timeout=settings.webhook_timeout_s
        )
    return TickResult(evaluation=evaluation, delivery=delivery)


def output_path(runs_dir: Path, at: datetime) -> Path:
    """Return a new path for the executed notebook of the tick at ``at`` (never overwrites)."""
    folder = runs_dir / at.strftime("%Y-%m-%d")
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"evaluate-{at.strftime('%Y%m%dT%H%M%SZ')}"
    path = folder / f"{stem}.ipynb"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.ipynb"
    return path


def prune_runs(runs_dir: Path, *, today: date, keep_days: int) -> list[Path]:
    """Delete run folders older than ``keep_days`` before ``today``; return what was deleted."""
    if not runs_dir.is_dir():
        return []
    oldest = today - timedelta(days=keep_days)
    removed = []
    for folder in runs_dir.iterdir():
        try:
            day = date.fromisoformat(folder.name)
        except ValueError:
            continue
        if folder.is_dir() and day < oldest:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def run_notebook(
    *,
    settings: Settings,
    now: datetime | None = None,
    dry_run: bool = False,
    notebook: Path = ALERT_NOTEBOOK,
) -> Path:
    """Execute the alert notebook once with papermill and return the executed copy's path.

    Raises :class:`EvaluationLocked` when another evaluation runs, and
    :class:`EvaluationFailed` (after recording it) when the notebook fails.
    """
    at = clock.floor_minute(now) if now is not None else clock.minute()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault(NODE_NAME_SETTING, node_name())  # the kernel records this node
    cluster = is_cluster_catalog(settings.database_url)
    lock = cluster_lock(
        CLUSTER_LOCK, database_url=settings.database_url, data_dir=settings.data_dir
    )
    if not lock.try_acquire():
        where = (
            "the catalog's advisory lock" if cluster else f"lock {settings.data_dir / LOCK_NAME}"
        )
        raise EvaluationLocked(f"another evaluation is running ({where}); skipped {at.isoformat()}")
    if cluster and not dry_run:
        try:
            done_by = claim_minute(get_engine(settings.database_url), at)
        except BaseException:
            lock.release()
            raise
        if done_by is not None:
            lock.release()
            raise EvaluationLocked(
                f"{at.isoformat()} was already evaluated by node {done_by}; skipped"
            )
    out = output_path(settings.runs_dir, at)
    parameters: dict[str, Any] = {
        "now": at.isoformat(),
        "database_url": settings.database_url,
        "lake_url": settings.lake_url,
        "dry_run": dry_run,
        "dashboard_url": settings.dashboard_url,
        "output_path": str(out),
    }
    try:
        execute(
            notebook,
            out,
            parameters,
            timeout_s=settings.evaluate_timeout_s,
            start_timeout_s=settings.evaluate_timeout_s,
        )
    except Exception as exc:
        message = exc.description if isinstance(exc, NotebookFailed) else describe(exc)
        try:
            record_failure(get_engine(settings.database_url), at, message, out, dry_run)
        except Exception:  # the catalog itself may be what failed
            log.exception("could not record the failed evaluation")
        raise EvaluationFailed(f"evaluation at {at.isoformat()} failed: {message}", out) from exc
    finally:
        lock.release()
    prune_runs(settings.runs_dir, today=at.date(), keep_days=settings.runs_retention_days)
    return out


def claim_minute(engine: Engine, at: datetime) -> str | None:
    """Under the cluster lock: return the node that already evaluated ``at`` (``ok``), or None.

    A non-dry run of ``at`` still ``running`` cannot be alive (its node would hold the
    lock): it is closed as an error naming its node, and the minute is free again.
    """
    with session_scope(engine) as s:
        runs = s.exec(
            select(m.EvaluationRun).where(
                col(m.EvaluationRun.now) == at, col(m.EvaluationRun.dry_run).is_(False)
            )
        ).all()
        for run in runs:
            if run.status == "ok":
                return run.node or "unknown"
        dead = [r.id for r in runs if r.status == "running"]
        if dead:
            s.execute(
                sa.update(m.EvaluationRun)
                .where(col(m.EvaluationRun.id).in_(dead))
                .values(
                    status="error",
                    finished_at=clock.now(),
                    error="abandoned: its node stopped mid-run (the cluster lock was released)",
                )
            )
    return None


def evaluate_once(
    settings: Settings, *, now: datetime | None = None, dry_run: bool = False
) -> tuple[Path, dict[str, Any]]:
    """Run the alert notebook once (``workbench evaluate``); return its path and :func:`run_summary`."""
    engine = catalog_engine(settings.database_url)
    path = run_notebook(settings=settings, now=now, dry_run=dry_run)
    return path, run_summary(engine, path)


def record_failure(engine: Engine, at: datetime, message: str, path: Path, dry_run: bool) -> None:
    """Mark the tick's run as failed (or add a failed run if the notebook never got to start one)."""
    with session_scope(engine) as s:
        runs = s.exec(
            select(m.EvaluationRun).where(col(m.EvaluationRun.notebook_path) == str(path))
        ).all()
        if not runs:
            s.add(
                m.EvaluationRun(
                    now=at,
                    started_at=clock.now(),
                    finished_at=clock.now(),
                    status="error",
                    dry_run=dry_run,
                    error=message,
                    notebook_path=str(path),
                )
            )
            return
        s.execute(
            sa.update(m.EvaluationRun)
            .where(
                col(m.EvaluationRun.notebook_path) == str(path),
                col(m.EvaluationRun.status) == "running",
            )
            .values(status="error", error=message, finished_at=clock.now())
        )


def run_summary(engine: Engine, notebook_path: Path) -> dict[str, Any]:
    """Return the run recorded by the notebook at ``notebook_path`` and its decisions, as plain data."""
    with Session(engine) as s:
        run = s.exec(
            select(m.EvaluationRun).where(col(m.EvaluationRun.notebook_path) == str(notebook_path))
        ).first()
        if run is None:
            return {"run": None, "decisions": []}
        rows = s.exec(
            select(m.Decision, m.AlertRule.name, m.AlertRule.service)
            .join(m.AlertRule, col(m.AlertRule.id) == col(m.Decision.rule_id), isouter=True)
            .where(col(m.Decision.run_id) == run.id)
        ).all()
    decisions = [
        {
            "rule": name or str(d.rule_id),
            "service": service,
            "count": d.count,
            "threshold": d.threshold,
            "action": d.action,
            "reason": d.reason,
            "incident_id": str(d.incident_id) if d.incident_id else None,
        }
        for d, name, service in rows
    ]
    return {
        "run": {
            "id": str(run.id),
            "now": run.now.isoformat(),
            "status": run.status,
            "dry_run": run.dry_run,
            "outcomes": run.outcomes,
            "error": run.error,
            "node": run.node,
        },
        "decisions": decisions,
    }
