"""The project's notebooks: where they are, the one papermill runner, where reports go.

* **Where**: the scheduled alert notebook (``scheduled/evaluate_alerts.ipynb``), the
  analysis notebooks (``notebooks/analysis``) and the dashboard pages
  (``notebooks/dashboard``, :func:`dashboard_dir`) of the source checkout (they are
  not package data). Every caller finds them here.
* **Run**: :func:`execute` runs a notebook with papermill: parameters the notebook's
  ``parameters`` cell does not declare are an error (papermill would only warn), the
  ``python3`` kernelspec is installed for this interpreter if missing, the kernel starts
  quietly, cells get ``timeout_s``; a failure raises :class:`NotebookFailed`, whose
  ``description`` (``ename: evalue``) is what run records and logs show, and the
  executed copy at ``output`` keeps the failing cell and its traceback.
* **Reports**: incident investigation reports live in ``{runs_dir}/investigations``
  (:func:`report_path`); :func:`report_url` is the API link to one (the webhook
  payloads' ``reportUrl``).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from workbench.config import Settings, get_settings
from workbench.errors import ConfigError, ValidationError, WorkbenchError
from workbench.logs_config import KERNEL_QUIET_ARGUMENTS

log = logging.getLogger(__name__)

#: The root of the source checkout.
PROJECT_DIR = Path(__file__).resolve().parent.parent
#: The folder JupyterLab opens (``workbench lab``).
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
ANALYSIS_DIR = NOTEBOOKS_DIR / "analysis"
DASHBOARD_DIR_NAME = "notebooks/dashboard"
ALERT_NOTEBOOK = PROJECT_DIR / "scheduled" / "evaluate_alerts.ipynb"
INVESTIGATE_NOTEBOOK = ANALYSIS_DIR / "investigate_incident.ipynb"
KERNEL_NAME = "python3"
DASHBOARD_SETTING = "WORKBENCH_DASHBOARD_NOTEBOOKS"


def dashboard_dir() -> Path:
    """Return the folder of the dashboard notebooks (``notebooks/dashboard`` of the checkout).

    ``WORKBENCH_DASHBOARD_NOTEBOOKS`` overrides it; otherwise it is found next to
    the ``workbench`` package (editable installs) or the current directory.
    """
    override = os.environ.get(DASHBOARD_SETTING)
    candidates = [Path(override)] if override else []
    candidates += [PROJECT_DIR / DASHBOARD_DIR_NAME, Path.cwd() / DASHBOARD_DIR_NAME]
    for path in candidates:
        if (path / "overview.ipynb").is_file():
            return path
    raise ConfigError(
        "dashboard notebooks not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + f"); set {DASHBOARD_SETTING}"
    )


def lab_root() -> Path:
    """Return the folder JupyterLab opens: the checkout's ``notebooks``, else the current one."""
    return NOTEBOOKS_DIR if NOTEBOOKS_DIR.is_dir() else Path.cwd()


def lab_command_line(
    settings: Settings, *, host: str, port: int, extra: tuple[str, ...] = ()
) -> tuple[list[str], dict[str, str]]:
    """Return the argv and environment of JupyterLab on the project's notebooks.

    The kernel sees the same configuration (WORKBENCH_DATA_DIR, DATABASE_URL, ...)
    as the servers, so ``import workbench`` in a notebook reads their data.
    """
    exe = Path(sys.executable).with_name("jupyter-lab")
    args = [
        str(exe),
        f"--ServerApp.ip={host}",
        f"--ServerApp.port={port}",
        f"--ServerApp.root_dir={lab_root()}",
        "--no-browser",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")  # containers run as root; jupyter refuses otherwise
    # Kernels start in the notebook's folder: a relative ./data would point elsewhere there.
    env = {
        **os.environ,
        "WORKBENCH_DATA_DIR": str(settings.data_dir),
        "WORKBENCH_LAKE_URL": settings.lake_url,
        "DATABASE_URL": settings.database_url,
    }
    return [*args, *extra], env


class NotebookFailed(WorkbenchError):
    """A notebook run failed; ``output`` holds the executed copy, ``description`` the error."""

    def __init__(self, notebook: Path, output: Path, cause: BaseException) -> None:
        self.notebook = notebook
        self.output = output
        self.description = describe(cause)
        failed_cell = getattr(cause, "ename", None) is not None
        where = f" in cell {getattr(cause, 'exec_count', None)}" if failed_cell else ""
        super().__init__(f"{notebook.name} failed{where}: {self.description} (see {output})")


def describe(exc: BaseException) -> str:
    """Return a failure in one line: ``ename: evalue`` of a failing cell, else ``Type: message``."""
    ename = getattr(exc, "ename", None)
    if ename:
        return f"{ename}: {getattr(exc, 'evalue', '')}"[:4000]
    return f"{type(exc).__name__}: {exc}"[:4000]


def ensure_kernel(name: str = KERNEL_NAME) -> None:
    """Install the ``python3`` kernelspec for this interpreter if Jupyter cannot find it."""
    from jupyter_client.kernelspec import KernelSpecManager

    if name in KernelSpecManager().find_kernel_specs():
        return
    from ipykernel.kernelspec import install

    log.warning("kernelspec %s missing; installing it into %s", name, sys.prefix)
    install(kernel_name=name, prefix=sys.prefix)


def check_parameters(notebook: Path, parameters: dict[str, Any]) -> None:
    """Raise ValidationError when a parameter is not declared in the notebook's ``parameters`` cell.

    papermill only warns about unknown parameters, and a declaration it cannot
    parse (e.g. an ``=`` inside the comment) silently turns into one.
    """
    import papermill as pm

    declared = set(pm.inspect_notebook(str(notebook)))
    unknown = sorted(set(parameters) - declared)
    if unknown:
        raise ValidationError(
            f"{notebook.name}: unknown parameters {', '.join(unknown)}",
            {
                "parameters": [
                    f"unknown: {', '.join(unknown)}; known: {', '.join(sorted(declared))}"
                ]
            },
        )


def execute(
    notebook: Path,
    output: Path,
    parameters: dict[str, Any],
    *,
    timeout_s: int = 600,
    start_timeout_s: int = 60,
    cwd: Path | None = None,
) -> Path:
    """Execute ``notebook`` with papermill into ``output``; return ``output``.

    Raises ValidationError (before starting a kernel) for undeclared parameters and
    :class:`NotebookFailed` when the run fails (a cell's error, a timeout, a dead kernel).
    """
    import papermill as pm

    check_parameters(notebook, parameters)
    ensure_kernel()
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            kernel_name=KERNEL_NAME,
            execution_timeout=timeout_s,
            start_timeout=start_timeout_s,
            progress_bar=False,
            log_output=False,
            extra_arguments=KERNEL_QUIET_ARGUMENTS,  # no kernel start-up warnings in our log
            cwd=str(cwd) if cwd is not None else None,
        )
    except Exception as exc:
        raise NotebookFailed(notebook, output, exc) from exc
    return output


def investigations_dir(settings: Settings) -> Path:
    """Return the folder of incident investigation reports (beside the alert run notebooks)."""
    return settings.runs_dir / "investigations"


def report_path(incident_id: str, *, settings: Settings | None = None) -> Path | None:
    """Return the HTML investigation report of an incident, or None if none was written yet."""
    page = investigations_dir(settings or get_settings()) / f"{incident_id}.html"
    return page if page.is_file() else None


def report_url(settings: Settings, incident_id: object) -> str | None:
    """Return the API link of an incident's investigation report, or None if none exists yet."""
    if report_path(str(incident_id), settings=settings) is None:
        return None
    return f"{settings.api_url.rstrip('/')}/api/alerts/incidents/{incident_id}/report"
