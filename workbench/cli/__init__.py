"""The ``workbench`` command line: a thin shell over the library.

Each area owns one module that exposes ``COMMANDS`` (a list of click commands);
this module only assembles them. Library errors become a message and exit code 2.
"""

from __future__ import annotations

import sys

import click

from workbench.errors import WorkbenchError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except WorkbenchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="log-workbench")
def main() -> None:
    """Log Workbench: ingest logs, alert on error bursts, explore them in notebooks."""


def _register() -> None:
    from workbench.cli import alerting, analyst, dashboard, keys, lake, mirror, serve, up

    for module in (serve, lake, alerting, dashboard, analyst, mirror, up, keys):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
