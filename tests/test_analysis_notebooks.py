"""Every analysis notebook runs top to bottom (papermill) against a small demo lake and catalog."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlmodel import Session

from ingest_api.app import create_app
from tests.live_server import free_port, stop_process
from workbench.catalog import models as m
from workbench.catalog.db import get_engine, init_db
from workbench.cli.analyst import investigate_command
from workbench.config import Settings, get_settings
from workbench.dashboard.incidents import build_incidents
from workbench.demo import generate, service_names
from workbench.errors import NotFound, ValidationError
from workbench.notebooks import ANALYSIS_DIR, report_path
from workbench.notebooks import execute as run_notebook
from workbench.reports import investigate

NOW = datetime.now(UTC).replace(microsecond=0)
NOTEBOOKS = sorted(ANALYSIS_DIR.glob("*.ipynb"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, str, str]:
    """A demo lake of 3 days, one rule on its busiest service and an incident of it."""
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    settings = Settings(WORKBENCH_DATA_DIR=data_dir)  # type: ignore[call-arg]
    generate(settings.lake_url, events=20_000, days=3, services=5, now=NOW, seed=7)
    service = service_names(5)[0]
    engine = get_engine(settings.database_url)
    init_db(engine)
    rule = m.AlertRule(name="busy errors", service=service, threshold=3, window_minutes=10)
    incident = m.AlertIncident(
        rule_id=rule.id,
        service=service,
        fingerprint=f"{service}:{rule.id}",
        status="resolved",
        first_triggered_at=NOW - timedelta(hours=5),
        triggered_at=NOW - timedelta(hours=5),
        last_seen_error_at=NOW - timedelta(hours=4),
        resolved_at=NOW - timedelta(hours=3),
        error_count=7,
    )
    with Session(engine, expire_on_commit=False) as session:
        session.add(rule)
        session.commit()
        session.add(incident)
        session.commit()
    return settings, str(rule.id), str(incident.id)


@pytest.fixture
def env(demo: tuple[Settings, str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    # The kernel is a child process: it reads the configuration from the environment.
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(demo[0].data_dir))
    monkeypatch.delenv("WORKBENCH_LAKE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    # The CLI reads get_settings(): not a copy cached by an earlier test (e.g. tick()).
    get_settings.cache_clear()
    yield demo[0]
    get_settings.cache_clear()


def test_there_are_analysis_notebooks() -> None:
    assert {p.name for p in NOTEBOOKS} >= {
        "tour.ipynb",
        "investigate_incident.ipynb",
        "tune_rule.ipynb",
    }


def test_unknown_parameters_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="incident_idd"):
        run_notebook(
            ANALYSIS_DIR / "investigate_incident.ipynb", tmp_path / "x.ipynb", {"incident_idd": "x"}
        )


def test_investigating_an_unknown_incident_fails_before_any_kernel(env: Settings) -> None:
    with pytest.raises(NotFound, match="not found"):
        investigate(str(uuid.uuid4()), settings=env)
    with pytest.raises(ValidationError, match="incident_id: not a UUID: 'nope'"):
        investigate("nope", settings=env)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_against_the_demo_lake(
    path: Path, demo: tuple[Settings, str, str], env: Settings, tmp_path: Path
) -> None:
    _, rule_id, incident_id = demo
    by_name: dict[str, dict[str, Any]] = {
        "tour.ipynb": {"since": "3d"},
        "investigate_incident.ipynb": {"incident_id": incident_id},
        "tune_rule.ipynb": {
            "rule": rule_id,
            "thresholds": [2, 5, 1000],
            "since": "1d",
            "step_minutes": 10,
        },
    }
    parameters = by_name.get(path.name, {})
    out = run_notebook(path, tmp_path / path.name, parameters, timeout_s=120)
    assert out.is_file()


@pytest.mark.slow
def test_investigate_command_writes_an_html_report(
    demo: tuple[Settings, str, str], env: Settings
) -> None:
    _, _, incident_id = demo
    result = CliRunner().invoke(investigate_command, [incident_id])
    assert result.exit_code == 0, result.output
    page = Path(result.output.strip())
    assert page == report_path(incident_id, settings=env)
    assert page.with_suffix(".ipynb").is_file()
    html = page.read_text()
    assert incident_id in html and "Top patterns" in html
    assert "plotly" in html and html.count("Plotly.newPlot") >= 3  # figures drawn, offline


@pytest.mark.slow
def test_dashboard_runs_the_investigation_and_the_api_serves_it(
    demo: tuple[Settings, str, str], env: Settings
) -> None:
    """The incident detail's button writes the report; the detail and the API then link it."""
    _, _, incident_id = demo
    existing = report_path(incident_id, settings=env)
    if existing is not None:
        existing.unlink()
    page = build_incidents(env, incident=incident_id)
    page.refresh()
    detail = page.detail
    assert "No investigation report yet" in detail.report.value
    with TestClient(create_app(env)) as client:
        url = f"/api/alerts/incidents/{incident_id}/report"
        missing = client.get(url)
        assert missing.status_code == 404 and "workbench investigate" in missing.json()["error"]

        detail.investigate(wait=True)
        assert detail.error.message == ""
        assert f'href="{env.api_url}{url}"' in detail.report.value
        assert not detail.investigate_button.disabled
        served = client.get(url)
        assert served.status_code == 200
        assert served.headers["content-type"].startswith("text/html")
        assert incident_id in served.text and "Top patterns" in served.text
        assert client.get(f"/api/alerts/incidents/{uuid.uuid4()}/report").status_code == 404


@pytest.mark.slow
def test_lab_command_starts_jupyterlab_on_loopback(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "WORKBENCH_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from workbench.cli.analyst import lab_command; lab_command()",
            "--port",
            str(port),
            "--IdentityProvider.token=t0ken",  # passed through to jupyter-lab
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        specs: dict[str, Any] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/api/kernelspecs?token=t0ken", timeout=2
                )
                if response.status_code == 200:
                    specs = response.json()
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert "python3" in specs.get("kernelspecs", {}), specs
    finally:
        stop_process(proc, timeout=20)  # exec'd: this PID is jupyter-lab itself
