"""Scheduled evaluation: :func:`tick` (what the notebook calls) and :func:`run_notebook`
(papermill run of ``scheduled/evaluate_alerts.ipynb`` with a lock, a timeout and retention).

``run_notebook`` is what the scheduler, the CLI and any orchestrator-like caller use:

* a non-blocking cross-process lock (``$WORKBENCH_DATA_DIR/evaluate.lock``): when
  another evaluation holds it, this one is skipped (:class:`EvaluationLocked`);
* papermill executes the notebook on the ``python3`` kernel (installed for this
  interpreter if missing) with ``execution_timeout``/``start_timeout`` from
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
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from workbench.alerting.evaluate import EvaluationResult, evaluate
from workbench.alerting.notify import DeliveryReport, deliver_due
from workbench.catalog import models as m
from workbench.catalog.db import get_engine, session_scope
from workbench.config import Settings, get_settings
from workbench.errors import WorkbenchError
from workbench.logs_config import KERNEL_QUIET_ARGUMENTS
from workbench.reports import report_url

log = logging.getLogger(__name__)

KERNEL_NAME = "python3"
NOTEBOOK = Path(__file__).resolve().parents[2] / "scheduled" / "evaluate_alerts.ipynb"
LOCK_NAME = "evaluate.lock"
ACTION_ORDER = ("create", "reopen", "auto_resolve", "update", "suppress", "none")
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


def floor_minute(moment: datetime) -> datetime:
    """Return ``moment`` in UTC cut down to the minute."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def parse_now(now: str | datetime | None, *, wall: datetime | None = None) -> datetime:
    """Return the evaluation time: ``now`` parsed (ISO 8601, naive = UTC), or the current minute."""
    if isinstance(now, datetime):
        return now if now.tzinfo else now.replace(tzinfo=UTC)
    if not now:
        return floor_minute(wall or datetime.now(UTC))
    text = now.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise WorkbenchError(f"now: not an ISO 8601 time: {now!r}") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


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
    at = parse_now(now)
    engine = get_engine(database_url or settings.database_url)
    evaluation = evaluate(
        engine=engine,
        lake_url=lake_url or settings.lake_url,
        now=at,
        dry_run=dry_run,
        dashboard_url=dashboard_url or settings.dashboard_url,
        notebook_path=notebook_path or None,
        report_url=lambda incident_id: report_url(settings, incident_id),
    )
    delivery = None
    if not dry_run:
        delivery = deliver_due(
            engine=engine, now=at, limit=DELIVERY_LIMIT, timeout=settings.webhook_timeout_s
        )
    return TickResult(evaluation=evaluation, delivery=delivery)


def ensure_kernel(name: str = KERNEL_NAME) -> None:
    """Install the ``python3`` kernelspec for this interpreter if Jupyter cannot find it."""
    from jupyter_client.kernelspec import KernelSpecManager

    if name in KernelSpecManager().find_kernel_specs():
        return
    from ipykernel.kernelspec import install

    log.warning("kernelspec %s missing; installing it into %s", name, sys.prefix)
    install(kernel_name=name, prefix=sys.prefix)


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
    notebook: Path = NOTEBOOK,
) -> Path:
    """Execute the alert notebook once with papermill and return the executed copy's path.

    Raises :class:`EvaluationLocked` when another evaluation runs, and
    :class:`EvaluationFailed` (after recording it) when the notebook fails.
    """
    import papermill as pm
    from filelock import FileLock, Timeout

    at = floor_minute(now) if now is not None else floor_minute(datetime.now(UTC))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.data_dir / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise EvaluationLocked(
            f"another evaluation is running (lock {settings.data_dir / LOCK_NAME}); skipped {at.isoformat()}"
        ) from None
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
        check_parameters(notebook, parameters)
        ensure_kernel()
        pm.execute_notebook(
            str(notebook),
            str(out),
            parameters=parameters,
            kernel_name=KERNEL_NAME,
            execution_timeout=settings.evaluate_timeout_s,
            start_timeout=settings.evaluate_timeout_s,
            progress_bar=False,
            log_output=False,
            extra_arguments=KERNEL_QUIET_ARGUMENTS,  # no kernel start-up warnings in our log
        )
    except Exception as exc:
        message = _describe(exc)
        try:
            record_failure(get_engine(settings.database_url), at, message, out, dry_run)
        except Exception:  # the catalog itself may be what failed
            log.exception("could not record the failed evaluation")
        raise EvaluationFailed(f"evaluation at {at.isoformat()} failed: {message}", out) from exc
    finally:
        lock.release()
    prune_runs(settings.runs_dir, today=at.date(), keep_days=settings.runs_retention_days)
    return out


def check_parameters(notebook: Path, parameters: dict[str, Any]) -> None:
    """Raise WorkbenchError when a parameter is not declared in the notebook's ``parameters`` cell.

    papermill only warns about unknown parameters, and a declaration it cannot
    parse (e.g. an ``=`` inside the comment) silently turns into one.
    """
    import papermill as pm

    declared = set(pm.inspect_notebook(str(notebook)))
    unknown = sorted(set(parameters) - declared)
    if unknown:
        raise WorkbenchError(
            f"{notebook.name}: parameters not declared in its parameters cell: {unknown}"
        )


def _describe(exc: BaseException) -> str:
    ename = getattr(exc, "ename", None)
    if ename:
        return f"{ename}: {getattr(exc, 'evalue', '')}"[:4000]
    return f"{type(exc).__name__}: {exc}"[:4000]


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
                    started_at=m.utcnow(),
                    finished_at=m.utcnow(),
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
            .values(status="error", error=message, finished_at=m.utcnow())
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
        },
        "decisions": decisions,
    }
