"""Run the analysis notebooks with papermill and keep them (and an HTML copy) as reports.

``investigate(incident_id)`` executes ``notebooks/analysis/investigate_incident.ipynb``
for one incident and writes ``{runs_dir}/investigations/{incident_id}.ipynb`` and
``.html`` beside it: next to the alert run notebooks, under a stable name that a
webhook payload or the dashboard can link to (:func:`report_path`). A rerun
replaces the report.

The notebook's kernel is a child process that reads its configuration from the
environment, as every entry point does; ``settings`` here only chooses where the
report goes and which catalog is checked first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.config import Settings, get_settings
from workbench.errors import ValidationError, WorkbenchError
from workbench.logs_config import KERNEL_QUIET_ARGUMENTS

#: The analysis notebooks of a source checkout (they are not package data).
PROJECT_DIR = Path(__file__).resolve().parent.parent
ANALYSIS_DIR = PROJECT_DIR / "notebooks" / "analysis"
INVESTIGATE_NOTEBOOK = "investigate_incident.ipynb"


def run_notebook(
    notebook: Path,
    output: Path,
    parameters: dict[str, Any],
    *,
    timeout_s: int = 600,
    kernel_name: str = "python3",
) -> Path:
    """Execute ``notebook`` with papermill into ``output``; return ``output``.

    Parameters the notebook's ``parameters`` cell does not declare are an error
    (papermill would only warn), so a typo never runs a report with defaults.
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
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            kernel_name=kernel_name,
            execution_timeout=timeout_s,
            progress_bar=False,
            extra_arguments=KERNEL_QUIET_ARGUMENTS,  # no kernel start-up warnings in our log
            # The checkout's root: the kernel imports this very ``workbench`` package
            # even where an editable install resolves it as a bare namespace.
            cwd=str(PROJECT_DIR),
        )
    except pm.PapermillExecutionError as exc:
        # The executed notebook is kept: it shows the failing cell and its traceback.
        raise WorkbenchError(
            f"{notebook.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue} "
            f"(see {output})"
        ) from exc
    return output


def to_html(notebook: Path) -> Path:
    """Write ``notebook`` as a self-contained HTML page beside it; return the page's path."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    _render_plotly(nb)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    page = notebook.with_suffix(".html")
    page.write_text(body, encoding="utf-8")
    return page


_PLOTLY_MIME = "application/vnd.plotly.v1+json"


def _render_plotly(nb: Any) -> None:
    """Give every plotly output an HTML form, so the report shows the figures offline.

    A kernel without a browser front end emits figures only as plotly's JSON
    mimetype, which nbconvert cannot draw; plotly.js is embedded once (first figure).
    """
    import plotly.io as pio

    embedded = False
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if _PLOTLY_MIME in data and "text/html" not in data:
                figure = pio.from_json(json.dumps(data[_PLOTLY_MIME]), skip_invalid=True)
                data["text/html"] = pio.to_html(
                    figure, full_html=False, include_plotlyjs=not embedded
                )
                del data[_PLOTLY_MIME]
                embedded = True


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


def investigate(
    incident_id: str,
    *,
    settings: Settings | None = None,
    before_hours: float = 2.0,
    after_hours: float = 1.0,
    timeout_s: int = 600,
    notebook: Path | None = None,
) -> Path:
    """Execute the investigation notebook for an incident; return the HTML report's path.

    Raises NotFound (before starting a kernel) when the incident does not exist.
    """
    from workbench.api import incident

    settings = settings or get_settings()
    found = incident(incident_id, settings=settings)  # fail fast, with a clear NotFound
    ident = found["id"]
    executed = run_notebook(
        notebook or ANALYSIS_DIR / INVESTIGATE_NOTEBOOK,
        investigations_dir(settings) / f"{ident}.ipynb",
        {"incident_id": ident, "before_hours": before_hours, "after_hours": after_hours},
        timeout_s=timeout_s,
    )
    return to_html(executed)
