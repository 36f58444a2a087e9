"""``workbench dashboard``: serve the on-call dashboard (Voilà) and print its URL."""

from __future__ import annotations

import signal
import sys

import click

from workbench.cli import require_extra
from workbench.config import get_settings

#: What the ``dashboard`` extra installs; ``pip install .`` alone is the server without it.
DASHBOARD_MODULES = ("voila", "ipywidgets", "anywidget")


@click.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=None, help="Port (default $WORKBENCH_DASHBOARD_PORT or 8866).")
@click.option("--no-preheat", is_flag=True, help="Start each page's kernel on request instead.")
def dashboard_command(host: str, port: int | None, no_preheat: bool) -> None:
    """Serve the dashboard with Voilà; the Overview is the landing page."""
    require_extra("dashboard", DASHBOARD_MODULES, "workbench dashboard")
    from workbench.dashboard.serve import dashboard_url, start_dashboard

    settings = get_settings()
    port = port or settings.dashboard_port
    proc = start_dashboard(settings, host, port, preheat=not no_preheat)
    url = dashboard_url(host, port, settings.dashboard_token.strip())
    click.echo(f"workbench: dashboard on {url}  (Ctrl-C stops it)")

    def _stop(_signum: int, _frame: object) -> None:
        proc.terminate()

    signal.signal(signal.SIGTERM, _stop)
    try:
        sys.exit(proc.wait())
    except KeyboardInterrupt:
        proc.terminate()
        sys.exit(proc.wait())


COMMANDS: list[click.Command] = [dashboard_command]
