"""CLI commands for analysts: ``workbench investigate`` (an incident report) and ``workbench lab``."""

from __future__ import annotations

import os

import click

from workbench.cli import require_extra
from workbench.config import get_settings


@click.command("investigate")
@click.argument("incident_id")
@click.option(
    "--before-hours",
    type=float,
    default=2.0,
    show_default=True,
    help="How long before the incident's first trigger to look.",
)
@click.option(
    "--after-hours",
    type=float,
    default=1.0,
    show_default=True,
    help="How long after its resolve (or last error) to look.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=int,
    default=600,
    show_default=True,
    help="Seconds a notebook cell may run.",
)
def investigate_command(
    incident_id: str, before_hours: float, after_hours: float, timeout_s: int
) -> None:
    """Run the investigation notebook for INCIDENT_ID and write an HTML report beside the runs."""
    from workbench.reports import investigate

    page = investigate(
        incident_id,
        settings=get_settings(),
        before_hours=before_hours,
        after_hours=after_hours,
        timeout_s=timeout_s,
    )
    click.echo(str(page))


@click.command("lab", context_settings={"ignore_unknown_options": True})
@click.option("--port", type=int, default=8888, show_default=True, help="Port to bind.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.argument("lab_args", nargs=-1, type=click.UNPROCESSED)
def lab_command(port: int, host: str, lab_args: tuple[str, ...]) -> None:
    """Open JupyterLab on the project's notebooks with this environment's kernel.

    The kernel sees the same configuration (WORKBENCH_DATA_DIR, DATABASE_URL, ...)
    as the servers, so ``import workbench`` in a notebook reads their data.
    Extra arguments go to jupyter-lab unchanged.
    """
    require_extra("lab", ("jupyterlab",), "workbench lab")  # pip install . has no JupyterLab
    from workbench.notebooks import lab_command_line

    args, env = lab_command_line(get_settings(), host=host, port=port, extra=lab_args)
    # exec: the PID the caller holds is jupyter-lab's, and Ctrl-C reaches it directly.
    os.execve(args[0], args, env)


COMMANDS: list[click.Command] = [investigate_command, lab_command]
