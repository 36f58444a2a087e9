"""deploy/compose.yaml on paper: the settings it passes exist, its health checks are safe.

Docker cannot run here; this reads the file the way compose would (anchors and merge
keys resolved by PyYAML) and checks it against ``workbench/config.py`` and the CLI.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from workbench.cli import main as cli
from workbench.config import MirrorSettings, Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PYPROJECT = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
#: The services that run the workbench image (the rest are PostgreSQL, MinIO, ...).
WORKBENCH = {name: s for name, s in SERVICES.items() if s.get("image") == "log-workbench:local"}
#: Read by libraries, not by Settings (the AWS SDK variables for the S3 lake).
STANDARD = re.compile(r"^(AWS_[A-Z_]+|PYTHONUNBUFFERED)$")
DASHBOARD_PORT = "8866"


def _known_variables() -> set[str]:
    names: set[str] = set()
    for model in (Settings, MirrorSettings):
        names |= {f.alias for f in model.model_fields.values() if f.alias}
    return names


def test_the_topology_is_the_one_issue_13_asks_for() -> None:
    commands = [s["command"][0] for s in WORKBENCH.values()]
    assert commands.count("serve") == 2
    assert commands.count("scheduler") == 2
    assert commands.count("dashboard") == 1
    for other in ("proxy", "postgres", "minio", "elasticsearch"):
        assert other in SERVICES


@pytest.mark.parametrize("name", sorted(WORKBENCH))
def test_every_variable_a_workbench_service_sets_exists_in_config(name: str) -> None:
    known = _known_variables()
    environment = WORKBENCH[name]["environment"]
    unknown = [k for k in environment if k not in known and not STANDARD.match(k)]
    assert not unknown, f"{name} sets variables workbench/config.py does not read: {unknown}"
    assert "DATABASE_URL" in environment and "WORKBENCH_LAKE_URL" in environment


@pytest.mark.parametrize("name", sorted(WORKBENCH))
def test_every_command_is_a_workbench_command(name: str) -> None:
    words = WORKBENCH[name]["command"]
    with click.Context(cli) as ctx:
        command = cli.get_command(ctx, words[0])
        assert command is not None, f"{name}: no `workbench {words[0]}`"
        if isinstance(command, click.Group):
            assert command.get_command(ctx, words[1]) is not None, f"{name}: {words}"


def test_each_api_node_has_its_own_data_directory() -> None:
    data = [v for s in WORKBENCH.values() for v in s["volumes"] if v.endswith(":/data")]
    assert len(data) == len(set(data)) == len(WORKBENCH)


def test_api_health_checks_call_health() -> None:
    for name, service in WORKBENCH.items():
        if service["command"][0] == "serve":
            test = " ".join(service["healthcheck"]["test"])
            assert re.search(r"http://127\.0\.0\.1:4000/health\b", test), name
    assert "health_uri /health" in (DEPLOY / "Caddyfile").read_text()


def test_no_health_check_loads_a_dashboard_page() -> None:
    """Every page request starts a kernel (docs/dashboard.md): probes check the port only."""
    for name, service in SERVICES.items():
        check = service.get("healthcheck")
        if check is None:
            continue
        test = " ".join(check["test"])
        if DASHBOARD_PORT in test or name == "dashboard":
            assert "http" not in test and ".ipynb" not in test and "voila" not in test, name


def test_the_dockerfile_runs_the_workbench_cli() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["workbench"]' in text
    assert "-c constraints.txt" in text
    # The dashboard runs from this image: Voila comes with the "dashboard" extra.
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert "dashboard" in extras and "'.[dashboard]'" in text
