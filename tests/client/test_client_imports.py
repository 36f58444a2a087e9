"""The light paths stay light: the client, the logging-handler re-export, the server without the notebook stack."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "python"
#: What `pip install .` leaves out (the `dashboard` and `lab` extras) and the server must not need.
NOTEBOOK_STACK = ("jupyterlab", "voila", "ipywidgets", "anywidget", "notebook")

BLOCKER = """
import importlib.abc, sys
class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
        return None
sys.meta_path.insert(0, _Blocked())
"""


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter of the project venv (the client on its path)."""
    environ = {**os.environ, **(env or {})}
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(CLIENT), *filter(None, [environ.get("PYTHONPATH")])]
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_logging_handler_is_the_client_and_loads_no_polars() -> None:
    result = _python(
        "import sys, workbench.logging_handler as h, workbench_client as c\n"
        "assert h.WorkbenchHandler is c.WorkbenchHandler and h.level_name is c.level_name\n"
        "assert h.EMIT_BOUND_S == c.EMIT_BOUND_S\n"
        "print(sorted(m for m in ('polars', 'pyarrow', 'numpy', 'httpx', 'orjson') if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_serve_and_scheduler_start_without_the_notebook_stack(tmp_path: Path) -> None:
    code = BLOCKER.format(blocked=set(NOTEBOOK_STACK) | {"plotly"}) + (
        "from workbench.cli import load_command\n"
        "load_command('workbench.cli.serve:serve'); load_command('workbench.cli.alerting:scheduler_cmd')\n"
        "import scheduled.scheduler, workbench.alerting.run\n"
        "from ingest_api.app import create_app\n"
        "create_app()\n"
        "print('ok')\n"
    )
    result = _python(code, {"WORKBENCH_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


@pytest.mark.parametrize(
    ("command", "missing", "extra"),
    [("dashboard", "voila", "dashboard"), ("lab", "jupyterlab", "lab")],
)
def test_a_front_end_without_its_extra_says_which_to_install(
    tmp_path: Path, command: str, missing: str, extra: str
) -> None:
    code = (
        BLOCKER.format(blocked={missing}) + f"from workbench.cli import main\nmain([{command!r}])\n"
    )
    result = _python(code, {"WORKBENCH_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"pip install 'log-workbench[{extra}]'" in lines[0]


def test_extras_nest_dashboard_in_lab_in_dev() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"])
    extras = project["optional-dependencies"]
    assert "papermill" in base and "ipykernel" in base  # the scheduler runs a notebook
    assert "nbconvert" in base  # workbench investigate writes HTML (jupyter_server brought it)
    for package in ("jupyterlab", "voila", "ipywidgets", "anywidget"):
        assert package not in base
    assert set(extras["dashboard"]) <= set(extras["lab"]) <= set(extras["dev"])
    assert any(r.startswith("jupyterlab") for r in extras["lab"])


def test_the_main_distribution_ships_the_client_module() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "clients/python" in setuptools["packages"]["find"]["where"]
