"""CLI commands of the alerting area: ``evaluate`` (one papermill run), ``scheduler``,
``backtest`` and ``rules list``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

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
    from workbench.alerting.backtest import SIMULATED, backtest

    settings = get_settings()
    rule = _find_rule(rule_ref)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    result = backtest(
        rule,
        end - parse_duration(since),
        end,
        lake_url=settings.lake_url,
        step=parse_duration(step),
    )
    click.echo(
        f"{rule.name or rule.service} ({rule.id}): {result.ticks} ticks, "
        f"{len(result.incidents)} incident episodes, {len(result.notifications)} notifications"
    )
    after = int(result.resolve_after.total_seconds() // 60) if result.resolve_after else 0
    if result.resolved_by == SIMULATED:
        click.echo(f"  (no auto-resolve: assumed resolved by on-call {after} min after the last breach)")
    else:
        click.echo(f"  (auto-resolve after {after} min)")
    for e in result.incidents:
        closed = e.resolved_at.isoformat() if e.resolved_at else "still open"
        kind = "reopened" if e.reopened else "opened"
        click.echo(f"  {kind:<9} {e.opened_at.isoformat()}  peak={e.peak_count:<6} resolved {closed}")
    for n in result.notifications:
        click.echo(f"  {n.at.isoformat()}  {n.type:<22} count={n.count}")


@click.group("rules")
def rules_group() -> None:
    """List the alert rules (id, name, service, threshold/window, enabled)."""


@rules_group.command("list")
@click.option("--service", default=None, help="Only the rules of this service.")
def rules_list_cmd(service: str | None) -> None:
    """Print every alert rule: id, name, service, threshold/window, enabled."""
    from workbench.api import rules

    frame = rules(service=service, settings=get_settings())
    if frame.height == 0:
        click.echo("no alert rules" + (f" for service {service!r}" if service else ""))
        return
    rows = [
        (
            r["id"],
            r["name"] or "(unnamed)",
            r["service"],
            f"{r['threshold']}/{r['window_minutes']}m",
            "yes" if r["enabled"] else "no",
        )
        for r in frame.iter_rows(named=True)
    ]
    header = ("id", "name", "service", "threshold/window", "enabled")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


COMMANDS: list[click.Command] = [evaluate_cmd, scheduler_cmd, backtest_cmd, rules_group]
