"""Run the analysis notebooks with papermill and keep them (and an HTML copy) as reports.

``investigate(incident_id)`` executes ``notebooks/analysis/investigate_incident.ipynb``
for one incident and writes ``{runs_dir}/investigations/{incident_id}.ipynb`` and
``.html`` beside it: next to the alert run notebooks, under a stable name that a
webhook payload or the dashboard can link to (:func:`workbench.notebooks.report_path`).
A rerun replaces the report. The papermill run itself is :func:`workbench.notebooks.execute`.

The notebook's kernel is a child process that reads its configuration from the
environment, as every entry point does; ``settings`` here only chooses where the
report goes and which catalog is checked first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.config import Settings, get_settings
from workbench.notebooks import INVESTIGATE_NOTEBOOK, PROJECT_DIR, execute, investigations_dir


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
    from workbench.catalog.frames import incident_row

    settings = settings or get_settings()
    # Fail fast (before a kernel starts), with a clear NotFound or ValidationError.
    ident = incident_row(settings.database_url, incident_id)["id"]
    executed = execute(
        notebook or INVESTIGATE_NOTEBOOK,
        investigations_dir(settings) / f"{ident}.ipynb",
        {"incident_id": ident, "before_hours": before_hours, "after_hours": after_hours},
        timeout_s=timeout_s,
        # The checkout's root: the kernel imports this very ``workbench`` package
        # even where an editable install resolves it as a bare namespace.
        cwd=PROJECT_DIR,
    )
    return to_html(executed)
