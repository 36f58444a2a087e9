"""The scheduled notebook end to end (real papermill + kernel), the lock, retention, the scheduler."""

from __future__ import annotations

import ast
import json
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from filelock import FileLock
from sqlmodel import Session, select

import workbench
from scheduled.scheduler import next_boundary, run_scheduler
from tests.alerting.conftest import T0, add_channel, add_errors, add_rule, incidents
from workbench import clock
from workbench.alerting.run import (
    EvaluationFailed,
    EvaluationLocked,
    evaluation_time,
    prune_runs,
    run_notebook,
    run_summary,
    tick,
)
from workbench.catalog import models as m
from workbench.catalog.db import get_engine, init_db
from workbench.config import Settings
from workbench.errors import ValidationError, WorkbenchError
from workbench.notebooks import ALERT_NOTEBOOK as NOTEBOOK
from workbench.notebooks import check_parameters


def test_notebook_is_committed_clean() -> None:
    nb = json.loads(NOTEBOOK.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1
    src = "".join(params[0]["source"])
    for name in (
        "now: str",
        "database_url: str",
        "lake_url: str",
        "dry_run: bool",
        "dashboard_url: str",
    ):
        assert name in src


def test_papermill_parses_every_parameter() -> None:
    import papermill as pm

    declared = pm.inspect_notebook(str(NOTEBOOK))
    assert set(declared) == {
        "now",
        "database_url",
        "lake_url",
        "dry_run",
        "dashboard_url",
        "output_path",
    }
    assert declared["dry_run"]["inferred_type_name"] == "bool"
    check_parameters(NOTEBOOK, {"now": "", "dry_run": True})
    with pytest.raises(WorkbenchError):
        check_parameters(NOTEBOOK, {"nope": 1})


def test_parse_now() -> None:
    assert evaluation_time("2026-11-20T12:00:00Z") == T0
    assert evaluation_time("2026-11-20T12:00:00") == T0
    with clock.frozen(T0 + timedelta(seconds=42.5)):
        assert evaluation_time("") == T0
        assert evaluation_time(None) == T0


def test_a_bad_now_names_the_field() -> None:
    with pytest.raises(ValidationError, match="^--now: not an ISO 8601 timestamp: 'soon'$"):
        evaluation_time("soon", "--now")
    with pytest.raises(ValidationError, match="^now: "):
        tick(now="soon")


def _imports(path: Path) -> set[str]:
    """Return every module ``path`` imports, at the top or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_alerting_and_reports_do_not_import_the_api() -> None:
    """The cycle alerting -> reports -> api -> alerting is gone (issue 16)."""
    package = Path(workbench.__file__).parent
    for path in [*sorted((package / "alerting").glob("*.py")), package / "reports.py"]:
        bad = {m for m in _imports(path) if m.startswith(("workbench.api", "workbench.reports"))}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_tick_in_process(settings: Settings) -> None:
    engine = get_engine(settings.database_url)
    init_db(engine)
    add_rule(engine)
    add_errors(settings.lake_url, T0, 6)
    result = tick(
        now=T0.isoformat(),
        database_url=settings.database_url,
        lake_url=settings.lake_url,
        dashboard_url="http://d",
    )
    assert result.frame()["reason"].to_list() == ["created"]
    assert "created=1" in result.summary()
    engine.dispose()


def test_prune_runs(tmp_path: Path) -> None:
    for day in ("2026-11-01", "2026-11-19", "2026-11-20", "notes"):
        (tmp_path / day).mkdir()
    removed = prune_runs(tmp_path, today=date(2026, 11, 20), keep_days=7)
    assert [p.name for p in removed] == ["2026-11-01"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-11-19", "2026-11-20", "notes"]


def test_next_boundary() -> None:
    assert next_boundary(T0, 60) == T0 + timedelta(minutes=1)
    assert next_boundary(T0 + timedelta(seconds=59.9), 60) == T0 + timedelta(minutes=1)


def test_scheduler_survives_failures_and_never_overlaps(settings: Settings) -> None:
    settings = settings.model_copy(update={"evaluate_interval_s": 1})
    stop = threading.Event()
    calls: list[datetime] = []
    running = threading.Lock()

    def runner(*, settings: Settings, now: datetime, dry_run: bool) -> Path:
        assert running.acquire(blocking=False), "two ticks at once"
        try:
            calls.append(now)
            if len(calls) == 1:
                raise RuntimeError("boom")  # the loop must go on
            if len(calls) == 2:
                raise EvaluationLocked("held")
            if len(calls) >= 3:
                stop.set()
            return Path("x")
        finally:
            running.release()

    t = threading.Thread(
        target=run_scheduler, args=(settings,), kwargs={"stop_event": stop, "runner": runner}
    )
    t.start()
    t.join(10)
    assert not t.is_alive()
    assert len(calls) == 3
    assert all(c.microsecond == 0 for c in calls)
    assert calls == sorted(calls) and len(set(calls)) == 3


@pytest.mark.slow
def test_papermill_run_creates_the_incident(settings: Settings) -> None:
    engine = get_engine(settings.database_url)
    init_db(engine)
    add_rule(engine)
    add_channel(engine, "http://127.0.0.1:9/closed")  # refused: stays pending, retried later
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    add_errors(settings.lake_url, now, 6)

    path = run_notebook(settings=settings, now=now)
    assert path.exists() and path.parent.parent == settings.runs_dir
    assert path.name == f"evaluate-{now.strftime('%Y%m%dT%H%M%SZ')}.ipynb"
    [inc] = incidents(engine)
    assert inc.status == "open" and inc.error_count == 6
    summary = run_summary(engine, path)
    assert summary["run"]["status"] == "ok"
    assert [d["reason"] for d in summary["decisions"]] == ["created"]
    executed = json.loads(path.read_text())
    text = json.dumps(executed["cells"][-1]["outputs"])
    assert "created" in text  # the decisions table is displayed

    # Held lock: the next run is skipped, nothing executed.
    with FileLock(str(settings.data_dir / "evaluate.lock")), pytest.raises(EvaluationLocked):
        run_notebook(settings=settings, now=now + timedelta(minutes=1))
    # A second run at the same minute keeps the first notebook (audit trail).
    second = run_notebook(settings=settings, now=now, dry_run=True)
    assert second != path and second.exists()
    engine.dispose()


@pytest.mark.slow
def test_failed_run_is_recorded(settings: Settings, tmp_path: Path) -> None:
    engine = get_engine(settings.database_url)
    init_db(engine)
    broken = settings.model_copy(update={"lake_url": "/nonexistent/\0lake"})
    add_rule(engine)
    with pytest.raises(EvaluationFailed) as info:
        run_notebook(settings=broken, now=T0)
    assert info.value.notebook_path.exists()
    with Session(engine) as s:
        [run] = s.exec(select(m.EvaluationRun)).all()
    assert run.status == "error" and run.error
    engine.dispose()
