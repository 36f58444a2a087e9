"""``workbench up``: start the whole system (ingest API, alert scheduler, Voila dashboard).

The processes and their supervision are :mod:`workbench.supervisor`; this command
checks the settings and ports, seeds the demo data when asked, and prints the URLs.
"""

from __future__ import annotations

import signal

import click

from workbench import clock, supervisor
from workbench.cli import dashboard, require_extra
from workbench.config import get_settings
from workbench.security import bind_check


def _say(line: str) -> None:
    click.echo(line, err=True)


@click.command("up")
@click.option("--host", default=None, help="Address for the API and dashboard (default 127.0.0.1).")
@click.option(
    "--port", type=int, default=None, help="Ingest/REST API port (default $PORT or 4000)."
)
@click.option("--dashboard-port", type=int, default=None, help="Voila port (default 8866).")
@click.option(
    "--seed-demo",
    is_flag=True,
    help="Write demo logs and rules if the lake is empty, and send live demo traffic.",
)
@click.option("--no-scheduler", is_flag=True, help="Do not run the alert scheduler.")
@click.option("--no-dashboard", is_flag=True, help="Do not run the Voila dashboard.")
def up_command(
    host: str | None,
    port: int | None,
    dashboard_port: int | None,
    seed_demo: bool,
    no_scheduler: bool,
    no_dashboard: bool,
) -> None:
    """Start the ingest API, the alert scheduler and the dashboard; print their URLs."""
    settings = get_settings()
    host = host or settings.host
    bind_check(settings, host)  # beyond loopback only with API keys (docs/security.md)
    if not no_dashboard:  # a base install (pip install .) has no Voila: say so before starting
        require_extra(
            "dashboard", dashboard.DASHBOARD_MODULES, "workbench up", ", or pass --no-dashboard"
        )
    port = port or settings.port
    dashboard_port = dashboard_port or settings.dashboard_port
    # Before anything starts: a busy port would otherwise make the API retry its bind
    # forever while another server answers the readiness probe.
    ports = {"--port": port, **({} if no_dashboard else {"--dashboard-port": dashboard_port})}
    supervisor.check_ports(host, ports)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if seed_demo:
        done = supervisor.seed_demo(settings, clock.now(), say=click.echo)
        if done:
            click.echo(f"workbench: {done}")
    else:
        from workbench.catalog.db import catalog_engine

        catalog_engine(settings.database_url)
    parts = supervisor.parts_of(
        settings,
        host=host,
        port=port,
        dashboard_port=dashboard_port,
        demo_traffic=seed_demo,
        scheduler=not no_scheduler,
        dashboard=not no_dashboard,
    )
    env = supervisor.parts_env(settings, host=host, port=port, dashboard_port=dashboard_port)
    supervisor.supervise(
        parts,
        env,
        on_ready=lambda: _announce(host, port, dashboard_port, not no_dashboard),
        say=_say,
    )


def _announce(host: str, port: int, dashboard_port: int, with_dashboard: bool) -> None:
    click.echo(f"workbench: ingest API   http://{host}:{port}  (POST /api/logs, GET /health)")
    if with_dashboard:
        from workbench.dashboard.serve import dashboard_url

        token = get_settings().dashboard_token.strip()
        click.echo(f"workbench: dashboard    {dashboard_url(host, dashboard_port, token)}")
    click.echo("workbench: all parts started; Ctrl-C stops them", nl=True)


@click.command("demo-traffic")
@click.option("--url", default="http://127.0.0.1:4000", show_default=True, help="Ingest API.")
@click.option("--rate", type=float, default=5.0, show_default=True, help="Events per second.")
@click.option(
    "--burst-every",
    type=float,
    default=600.0,
    show_default=True,
    help="Seconds between error bursts on the first demo service.",
)
def demo_traffic_command(url: str, rate: float, burst_every: float) -> None:
    """Send live demo logs to the ingest API, with a periodic error burst, until stopped.

    Without a key while the API is open; once refused for want of one, with its own
    ``ingest`` key (created once, kept in the data directory as ``demo-traffic.key``).
    """
    import logging
    import threading

    from workbench import demo_traffic

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per POST in up's console
    settings = get_settings()
    stored = settings.data_dir / demo_traffic.KEY_FILE
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        n = demo_traffic.run(
            url,
            rate=rate,
            burst_every=burst_every,
            stop=stop,
            api_key=stored.read_text().strip() if stored.exists() else None,
            get_key=lambda: demo_traffic.ingest_key(settings, now=clock.now()),
        )
    except KeyboardInterrupt:
        return
    click.echo(f"demo-traffic: {n} events accepted")


COMMANDS: list[click.Command] = [up_command, demo_traffic_command]
