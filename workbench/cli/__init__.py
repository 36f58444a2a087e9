"""The ``workbench`` command line: a thin shell over the library.

Commands are registered by name in :data:`COMMANDS` as ``"module:attribute"``
plus the short help that ``workbench --help`` lists, so listing them imports no
command module (polars, FastAPI, papermill and friends load only when a command
runs or shows its own help; ``tests/test_cli_main.py`` checks both that and that
each listed short help is still the command's own). To add a command: write it
in its area's module (``workbench/cli/<area>.py``) and add one line here.
Library errors become a message and exit code 2.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable, Iterator, MutableMapping

import click

from workbench.errors import ConfigError, WorkbenchError

#: name -> ("module:attribute", short help shown by ``workbench --help``), in menu order.
COMMANDS: dict[str, tuple[str, str]] = {
    "up": (
        "workbench.cli.up:up_command",
        "Start the ingest API, the alert scheduler and the dashboard; print their URLs.",
    ),
    "serve": (
        "workbench.cli.serve:serve",
        "Run the ingest and REST API (POST /api/logs, GET /health, queries, alerts).",
    ),
    "scheduler": (
        "workbench.cli.alerting:scheduler_cmd",
        "Run the alert notebook every minute on the minute, and lake housekeeping, until Ctrl-C.",
    ),
    "dashboard": (
        "workbench.cli.dashboard:dashboard_command",
        "Serve the dashboard with Voilà; the Overview is the landing page.",
    ),
    "evaluate": (
        "workbench.cli.alerting:evaluate_cmd",
        "Evaluate every alert rule once (papermill run of scheduled/evaluate_alerts.ipynb).",
    ),
    "backtest": (
        "workbench.cli.alerting:backtest_cmd",
        "Replay a rule over past logs and list the incidents and notifications it would have made.",
    ),
    "rules": (
        "workbench.cli.alerting:rules_group",
        "List the alert rules (id, name, service, threshold/window, enabled).",
    ),
    "investigate": (
        "workbench.cli.analyst:investigate_command",
        "Run the investigation notebook for INCIDENT_ID and write an HTML report beside the runs.",
    ),
    "lab": (
        "workbench.cli.analyst:lab_command",
        "Open JupyterLab on the project's notebooks with this environment's kernel.",
    ),
    "keys": (
        "workbench.cli.keys:keys_group",
        "Create, list and revoke API keys (scopes: ingest, read, admin).",
    ),
    "mirror": (
        "workbench.cli.mirror:group",
        "Mirror the lake into Elasticsearch (ELASTIC_URL) and check the mirror.",
    ),
    "demo": (
        "workbench.cli.lake:demo_command",
        "Write realistic synthetic logs into the lake (diurnal traffic, error bursts).",
    ),
    "demo-traffic": (
        "workbench.cli.up:demo_traffic_command",
        "Send live demo logs to the ingest API, with a periodic error burst, until stopped.",
    ),
    "retention": (
        "workbench.cli.lake:retention_command",
        "Delete whole date partitions older than --days days.",
    ),
    "compact": (
        "workbench.cli.lake:compact_command",
        "Merge the small files of past date partitions into one file each.",
    ),
    "verify": (
        "workbench.cli.lake:verify_command",
        "Check the footer and page checksums of every lake file; exit 1 if one is damaged.",
    ),
    "files": (
        "workbench.cli.lake:files_command",
        "Print the lake files the workbench reads now (exact counts for DuckDB, Spark, Trino).",
    ),
}


def require_extra(extra: str, modules: Iterable[str], what: str, otherwise: str = "") -> None:
    """Raise ConfigError naming ``pip install 'log-workbench[EXTRA]'`` when one of ``modules`` is missing.

    ``pip install .`` is the server alone; the notebook front ends come with the
    ``dashboard`` and ``lab`` extras (docs/dependencies.md). ``otherwise`` ends the
    message with the command's own way around it.
    """
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            raise ConfigError(
                f"{what} needs the {extra} extra ({module} is not installed): "
                f"pip install 'log-workbench[{extra}]'{otherwise}"
            )


def load_command(target: str) -> click.Command:
    """Return the click command at ``"module:attribute"`` (importing its module)."""
    module, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{target} is not a click command")
    return command


class _LazyCommands(MutableMapping[str, click.Command]):
    """The group's commands: names known up front, each command imported on first access."""

    def __init__(self, targets: dict[str, str]) -> None:
        self._targets = targets
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            if name not in self._targets:
                raise KeyError(name)
            self._loaded[name] = load_command(self._targets[name])
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        self._targets.pop(name, None)
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        yield from self._targets
        yield from (name for name in self._loaded if name not in self._targets)

    def __len__(self) -> int:
        return len(self._targets.keys() | self._loaded.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._targets or name in self._loaded


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # menu order, as registered

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The registered short help, so listing the commands imports none of them.
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = [(name, _shorten(COMMANDS[name][1], limit)) for name in names if name in COMMANDS]
        rows += [
            (name, self.commands[name].get_short_help_str(limit))
            for name in names
            if name not in COMMANDS
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except WorkbenchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 3].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "..."


@click.group(cls=_Group, commands=_LazyCommands({n: t for n, (t, _) in COMMANDS.items()}))
@click.version_option(package_name="log-workbench")
def main() -> None:
    """Log Workbench: ingest logs, alert on error bursts, explore them in notebooks."""
