"""CLI commands of the alerting area: ``evaluate`` (one papermill run), ``scheduler``, ``backtest``."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import click

from workbench.config import get_settings
from workbench.errors import NotFound, ValidationError

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """Return the timedelta of ``30m``, ``6h``, ``7d``, ``2w``; ValidationError otherwise."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValidationError(f"not a duration: {text!r} (use e.g. 30m, 6h, 7d)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@click.command("evaluate")
@click.option(
    "--now", default=None, help="Evaluation time, ISO 8601 (default: the current minute, UTC)."
)
@click.option(
    "--dry-run", is_flag=True, help="Decide and show only: no incident written, nothing sent."
)
def evaluate_cmd(now: str | None, dry_run: bool) -> None:
    """Evaluate every alert rule once (papermill run of scheduled/evaluate_alerts.ipynb)."""
    from workbench.alerting.run import parse_now, run_notebook, run_summary
    from workbench.catalog.db import get_engine, init_db

    settings = get_settings()
    engine = get_engine(settings.database_url)
    init_db(engine)
    path = run_notebook(settings=settings, now=parse_now(now), dry_run=dry_run)
    summary = run_summary(engine, path)
    run = summary["run"]
    if run is not None:
        mode = " (dry run)" if run["dry_run"] else ""
        outcomes = " ".join(f"{k}={v}" for k, v in sorted(run["outcomes"].items())) or "no rules"
        click.echo(f"evaluated at {run['now']}{mode}: {run['status']}; {outcomes}")
    for d in summary["decisions"]:
        incident = f"  incident {d['incident_id']}" if d["incident_id"] else ""
        click.echo(
            f"  {d['rule']:<30} {d['service'] or '':<20} {d['count']:>6}/{d['threshold']:<6} "
            f"{d['action']:<12} {d['reason']}{incident}"
        )
    click.echo(f"executed notebook: {path}")


@click.command("scheduler")
def scheduler_cmd() -> None:
    """Run the alert notebook every minute on the minute, and lake housekeeping, until Ctrl-C.

    Housekeeping (a thread beside the ticks): retention when WORKBENCH_RETENTION_DAYS
    is set, and compaction, every WORKBENCH_HOUSEKEEPING_INTERVAL_SECONDS (0: off).
    """
    from scheduled.scheduler import main

    main()


@click.command("backtest")
@click.option("--rule", "rule_id", required=True, help="Id of the alert rule to replay.")
@click.option("--since", default="7d", show_default=True, help="How far back: 30m, 6h, 7d, 2w.")
@click.option("--step", default="1m", show_default=True, help="Evaluation interval of the replay.")
def backtest_cmd(rule_id: str, since: str, step: str) -> None:
    """Replay a rule over past logs and list the incidents and notifications it would have made."""
    from sqlmodel import Session

    from workbench.alerting.backtest import backtest
    from workbench.catalog import models as m
    from workbench.catalog.db import get_engine

    settings = get_settings()
    try:
        key = uuid.UUID(rule_id)
    except ValueError:
        raise ValidationError(f"--rule: not a rule id: {rule_id!r}") from None
    with Session(get_engine(settings.database_url)) as s:
        rule = s.get(m.AlertRule, key)
    if rule is None:
        raise NotFound("rule", rule_id)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    result = backtest(
        rule,
        end - parse_duration(since),
        end,
        lake_url=settings.lake_url,
        step=parse_duration(step),
    )
    click.echo(
        f"{result.ticks} ticks, {len(result.incidents)} incident episodes, "
        f"{len(result.notifications)} notifications"
    )
    for n in result.notifications:
        click.echo(f"  {n.at.isoformat()}  {n.type:<22} count={n.count}")


COMMANDS: list[click.Command] = [evaluate_cmd, scheduler_cmd, backtest_cmd]
