"""Every dashboard notebook runs top to bottom on a fresh kernel against a seeded data dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dashboard.seed import Seeded
from workbench.config import Settings
from workbench.dashboard.nav import PAGES
from workbench.notebooks import dashboard_dir as notebooks_dir


@pytest.mark.slow
@pytest.mark.parametrize("file", [f for _, _, f in PAGES])
def test_notebook_runs_without_errors(
    file: str, settings: Settings, world: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import papermill

    # The kernel inherits this environment; the notebook reads settings from it.
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("WORKBENCH_REFRESH_SECONDS", "0")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("WORKBENCH_LAKE_URL", raising=False)
    out = tmp_path / file
    nb = papermill.execute_notebook(
        str(notebooks_dir() / file), str(out), kernel_name="python3", progress_bar=False,
        cwd=str(tmp_path),
    )
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output
            assert output.get("name") != "stderr", output.get("text")
    widget_views = [
        o for c in nb.cells for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert widget_views, "the page was not displayed"


@pytest.mark.slow
def test_unreachable_catalog_shows_a_message_not_a_traceback(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import papermill

    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("WORKBENCH_REFRESH_SECONDS", "0")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/nothing")
    nb = papermill.execute_notebook(
        str(notebooks_dir() / "incidents.ipynb"), str(tmp_path / "out.ipynb"),
        kernel_name="python3", progress_bar=False, cwd=str(tmp_path),
    )
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error" or o.get("name") == "stderr"]
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    texts = [m["state"].get("value", "") for m in state.get("state", {}).values()]
    assert any("catalog database" in t and "unreachable" in t for t in texts)
