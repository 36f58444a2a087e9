"""Serving: the Voilà command line, the notebooks folder, the landing-page redirect, the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner
from tornado.web import RedirectHandler

from workbench.cli import main
from workbench.config import Settings
from workbench.dashboard.nav import PAGES
from workbench.dashboard.serve import dashboard_command, notebooks_dir
from workbench.dashboard.voila_app import DashboardVoila


def test_notebooks_dir_holds_every_page() -> None:
    folder = notebooks_dir()
    for _key, _title, file in PAGES:
        nb = json.loads((folder / file).read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3"
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code[0]["source"] and "import" in "".join(code[0]["source"])
        assert "parameters" in code[1]["metadata"]["tags"]
        assert all(not c["outputs"] for c in code)


def test_command_binds_preheats_and_culls(settings: Settings) -> None:
    argv = dashboard_command(settings, "127.0.0.1", 9999)
    assert argv[:3] == [sys.executable, "-m", "workbench.dashboard.voila_app"]
    assert Path(argv[3]) == notebooks_dir()
    for flag in ("--Voila.ip=127.0.0.1", "--Voila.port=9999", "--preheat_kernel=True",
                 "--pool_size=1", "--VoilaConfiguration.show_tracebacks=False"):
        assert flag in argv
    assert any(a.startswith("--MappingKernelManager.cull_idle_timeout=") for a in argv)
    assert "--preheat_kernel=True" not in dashboard_command(settings, preheat=False)
    assert f"--Voila.port={settings.dashboard_port}" in dashboard_command(settings)


def test_root_redirects_to_the_overview(tmp_path: Path) -> None:
    app = DashboardVoila()
    app.root_dir = str(notebooks_dir())
    app.notebook_path = ""
    app.server_url = "/"
    app.base_url = "/"
    app.voila_configuration = type("C", (), {"preheat_kernel": False, "progressive_rendering": False,
                                             "extra_labextensions_path": [], "file_allowlist": [],
                                             "file_denylist": []})()
    app.identity_provider = type("I", (), {"get_handlers": lambda self: []})()
    handlers = app.init_handlers()
    pattern, handler, kwargs = handlers[0]
    assert pattern == "/" and handler is RedirectHandler
    assert kwargs["url"] == "/voila/render/overview.ipynb"


def test_cli_has_the_dashboard_command() -> None:
    result = CliRunner().invoke(main, ["dashboard", "--help"])
    assert result.exit_code == 0 and "--port" in result.output and "Overview" in result.output
