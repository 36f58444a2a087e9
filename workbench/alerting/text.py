"""Plain-text renderings of alerting results for a terminal: what ``workbench evaluate``,
``workbench backtest`` and ``workbench rules list`` print (the commands only echo these)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.alerting.backtest import SIMULATED, BacktestResult


def run_lines(summary: dict[str, Any], notebook_path: Path) -> list[str]:
    """Return the account of one evaluation run (:func:`~workbench.alerting.run.run_summary`)."""
    lines = []
    run = summary["run"]
    if run is not None:
        mode = " (dry run)" if run["dry_run"] else ""
        outcomes = " ".join(f"{k}={v}" for k, v in sorted(run["outcomes"].items())) or "no rules"
        node = f"; node {run['node']}" if run.get("node") else ""
        lines.append(f"evaluated at {run['now']}{mode}: {run['status']}; {outcomes}{node}")
    for d in summary["decisions"]:
        incident = f"  incident {d['incident_id']}" if d["incident_id"] else ""
        lines.append(
            f"  {d['rule']:<30} {d['service'] or '':<20} {d['count']:>6}/{d['threshold']:<6} "
            f"{d['action']:<12} {d['reason']}{incident}"
        )
    lines.append(f"executed notebook: {notebook_path}")
    return lines


def backtest_lines(rule: Any, result: BacktestResult) -> list[str]:
    """Return the account of a backtest of ``rule`` (a catalog rule): episodes, notifications."""
    lines = [
        f"{rule.name or rule.service} ({rule.id}): {result.ticks} ticks, "
        f"{len(result.incidents)} incident episodes, {len(result.notifications)} notifications"
    ]
    after = int(result.resolve_after.total_seconds() // 60) if result.resolve_after else 0
    if result.resolved_by == SIMULATED:
        lines.append(
            f"  (no auto-resolve: assumed resolved by on-call {after} min after the last breach)"
        )
    else:
        lines.append(f"  (auto-resolve after {after} min)")
    for e in result.incidents:
        closed = e.resolved_at.isoformat() if e.resolved_at else "still open"
        kind = "reopened" if e.reopened else "opened"
        lines.append(
            f"  {kind:<9} {e.opened_at.isoformat()}  peak={e.peak_count:<6} resolved {closed}"
        )
    kind = getattr(result, "kind", "threshold")
    if kind != "threshold":
        lines.insert(
            1, f"  (kind {kind}: value is what the rule observed, baseline what it compared)"
        )
    for n in result.notifications:
        extra = ""
        if kind != "threshold" and n.value is not None:
            extra = f" value={n.value:g}" + (
                f" baseline={n.baseline:g}" if n.baseline is not None else ""
            )
        lines.append(f"  {n.at.isoformat()}  {n.type:<22} count={n.count}{extra}")
    return lines


def rules_lines(rules: list[dict[str, Any]], service: str | None = None) -> list[str]:
    """Return the rules (dicts of id, name, service, threshold, window_minutes, enabled) as a table."""
    if not rules:
        return ["no alert rules" + (f" for service {service!r}" if service else "")]
    rows = [
        (
            r["id"],
            r["name"] or "(unnamed)",
            r["service"],
            f"{r['threshold']}/{r['window_minutes']}m",
            "yes" if r["enabled"] else "no",
        )
        for r in rules
    ]
    header = ("id", "name", "service", "threshold/window", "enabled")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
