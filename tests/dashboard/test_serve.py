"""Serving: the Voilà command line, the notebooks folder, the landing-page redirect, the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from tornado.web import RedirectHandler

from tests.live_server import stop_process
from workbench.cli import main
from workbench.config import Settings
from workbench.dashboard.nav import PAGES
from workbench.dashboard.serve import (
    dashboard_command,
    dashboard_token,
    dashboard_url,
    start_dashboard,
)
from workbench.dashboard.voila_app import DashboardVoila
from workbench.errors import ConfigError
from workbench.notebooks import dashboard_dir as notebooks_dir


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


# ---------------------------------------------------------------- token beyond loopback

TOKEN = "dash-token-0123456789abcdef"


def _with_token(settings: Settings, token: str) -> Settings:
    return settings.model_copy(update={"dashboard_token": token})


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_needs_no_token(settings: Settings, host: str) -> None:
    """Proves: on loopback the command is as before (no token) unless one is set."""
    plain = _with_token(settings, "")
    assert not any(a.startswith("--Voila.token") for a in dashboard_command(plain, host, 9999))
    assert dashboard_token(plain, host) == ""
    assert dashboard_url(host, 9999) == f"http://{host}:9999/"
    argv = dashboard_command(_with_token(settings, "short"), host, 9999)
    assert "--Voila.token=short" in argv  # set: used, even on loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.1.2.3"])
def test_beyond_loopback_refuses_without_a_token(settings: Settings, host: str) -> None:
    """Proves: beyond loopback, no token (or a short one) is a ConfigError naming the setting."""
    for token in ("", "   ", "too-short"):
        with pytest.raises(ConfigError, match="WORKBENCH_DASHBOARD_TOKEN"):
            dashboard_command(_with_token(settings, token), host, 9999)
    argv = dashboard_command(_with_token(settings, TOKEN), host, 9999)
    assert f"--Voila.token={TOKEN}" in argv and f"--Voila.ip={host}" in argv


def test_url_carries_the_token() -> None:
    """Proves: the URL people open carries the token, quoted."""
    assert dashboard_url("10.0.0.5", 8866, TOKEN) == f"http://10.0.0.5:8866/?token={TOKEN}"
    assert dashboard_url("h", 1, "a b/&c") == "http://h:1/?token=a%20b%2F%26c"


def test_cli_refuses_to_serve_beyond_loopback_without_a_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Proves: ``workbench dashboard --host 0.0.0.0`` without a token exits 2 naming the setting."""
    from workbench.config import get_settings

    monkeypatch.delenv("WORKBENCH_DASHBOARD_TOKEN", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["dashboard", "--host", "0.0.0.0", "--port", "9"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "WORKBENCH_DASHBOARD_TOKEN" in result.output and "0.0.0.0" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_voila_with_a_token_refuses_requests_without_it(settings: Settings) -> None:
    """Proves, against a real Voilà on 127.0.0.1 started with a token: a page request
    without the token (or with a wrong one) is sent to the login page and gets no
    notebook; ``dashboard_url(..., token)`` leads to the Overview (200) and logs the
    browser in (a cookie serves the next request); the token also works as a header."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH_", "DATABASE_URL"))}
    log_path = settings.data_dir / "voila.log"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = start_dashboard(
            _with_token(settings, TOKEN), "127.0.0.1", port, env=env, preheat=False,
            stdout=log, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "voila exited"
            try:
                httpx.get(base + "/", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "voila did not start"
                time.sleep(0.3)
        page = "/voila/render/overview.ipynb"
        for query in ("", "?token=wrong"):
            res = httpx.get(base + page + query, timeout=30)
            assert res.status_code in (302, 403)
            if res.status_code == 302:
                assert res.headers["location"].startswith("/login")
        for path in ("/voila/tree", "/voila/render/logs.ipynb"):
            assert httpx.get(base + path, timeout=30).status_code in (302, 403)
        with httpx.Client(follow_redirects=True, timeout=60) as browser:
            res = browser.get(dashboard_url("127.0.0.1", port, TOKEN))
            assert res.status_code == 200 and res.url.path == page
            assert "wb-" in res.text or "voila" in res.text.lower()
            # The cookie, no token (the file tree: authenticated like the pages, no kernel).
            again = browser.get(base + "/voila/tree")
            assert again.status_code == 200 and again.url.path == "/voila/tree"
        by_header = httpx.get(
            base + "/voila/tree", headers={"Authorization": f"token {TOKEN}"}, timeout=60
        )
        assert by_header.status_code == 200
        # Page kernels talk over Unix sockets: no TCP port each, no warning at each start.
        assert "without encryption" not in log_path.read_text(errors="replace")
    finally:
        stop_process(proc, timeout=20)
