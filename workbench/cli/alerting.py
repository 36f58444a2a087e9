"""CLI commands of the alerting area: ``evaluate`` (one papermill run), ``scheduler``,
``backtest`` and ``rules list``."""

from __future__ import annotations

from typing import Any

import click

from workbench.config import get_settings
from workbench.errors import NotFound


@click.command("evaluate")
@click.option(
    "--now", default=None, help="Evaluation time, ISO 8601 (default: the current minute, UTC)."
)
@click.option(
    "--dry-run", is_flag=True, help="Decide and show only: no incident written, nothing sent."
)
def evaluate_cmd(now: str | None, dry_run: bool) -> None:
    """Evaluate every alert rule once (papermill run of scheduled/evaluate_alerts.ipynb)."""
    from workbench.alerting.run import evaluate_once, evaluation_time
    from workbench.alerting.text import run_lines

    at = evaluation_time(now, "--now")
    path, summary = evaluate_once(get_settings(), now=at, dry_run=dry_run)
    click.echo("\n".join(run_lines(summary, path)))


@click.command("scheduler")
def scheduler_cmd() -> None:
    """Run the alert notebook every minute on the minute, and lake housekeeping, until Ctrl-C.

    Housekeeping (a thread beside the ticks): retention when WORKBENCH_RETENTION_DAYS
    is set, and compaction, every WORKBENCH_HOUSEKEEPING_INTERVAL_SECONDS (0: off).
    """
    from scheduled.scheduler import main

    main()


def _find_rule(ref: str) -> Any:
    """Return the catalog rule whose id or (unique) name is ``ref``; NotFound naming the fix."""
    from workbench.api import find_rule

    try:
        return find_rule(ref.strip(), settings=get_settings())
    except NotFound as exc:
        exc.args = (f"no rule with id or name {ref!r} (`workbench rules list` shows them)",)
        raise


@click.command("backtest")
@click.option(
    "--rule", "rule_ref", required=True, help="Id or name of the alert rule to replay."
)
@click.option("--since", default="7d", show_default=True, help="How far back: 30m, 6h, 7d, 2w.")
@click.option("--step", default="1m", show_default=True, help="Evaluation interval of the replay.")
def backtest_cmd(rule_ref: str, since: str, step: str) -> None:
    """Replay a rule over past logs and list the incidents and notifications it would have made."""
    from workbench import clock
    from workbench.alerting.backtest import backtest
    from workbench.alerting.text import backtest_lines
    from workbench.times import parse_duration

    rule = _find_rule(rule_ref)
    end = clock.minute()
    start = end - parse_duration(since, "--since")
    step_delta = parse_duration(step, "--step")
    result = backtest(rule, start, end, lake_url=get_settings().lake_url, step=step_delta)
    click.echo("\n".join(backtest_lines(rule, result)))


@click.group("rules")
def rules_group() -> None:
    """List the alert rules (id, name, service, threshold/window, enabled)."""


@rules_group.command("list")
@click.option("--service", default=None, help="Only the rules of this service.")
def rules_list_cmd(service: str | None) -> None:
    """Print every alert rule: id, name, service, threshold/window, enabled."""
    from workbench.alerting.text import rules_lines
    from workbench.api import rules

    frame = rules(service=service, settings=get_settings())
    click.echo("\n".join(rules_lines(frame.to_dicts(), service)))


COMMANDS: list[click.Command] = [evaluate_cmd, scheduler_cmd, backtest_cmd, rules_group]
