"""One evaluation tick over the catalog and the lake: count, decide, apply, record.

:func:`evaluate` is the orchestration around :func:`workbench.alerting.decide.decide`:

* records an :class:`~workbench.catalog.models.EvaluationRun` first (the heartbeat);
* counts every enabled rule with ONE :func:`~workbench.query.window.window_counts` call;
* loads the latest incident per fingerprint and the silences active at ``now``;
* hands each state-changing decision to :mod:`workbench.alerting.incidents`, which
  writes it (incident row, timeline events, outbox deliveries, decision record) in
  its own transaction, race-safe against another evaluator;
* records a decision (action + reason) for every rule, enabled or not.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from workbench import clock
from workbench.alerting.decide import Decision, RuleState, decide
from workbench.alerting.evidence import gather_evidence
from workbench.alerting.incidents import (
    PAGES,
    Links,
    apply_decision,
    apply_updates,
    decision_row,
    latest_incidents,
    record_decisions,
)
from workbench.alerting.kinds import Breach, KindCounts, judge
from workbench.catalog import models as m
from workbench.catalog.db import session_scope
from workbench.query.kinds import KindSpec, kind_counts
from workbench.query.window import WindowSpec


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """What one rule did at this tick, as plain data for tables and summaries."""

    rule_id: str
    name: str
    service: str
    fingerprint: str
    count: int
    threshold: int
    action: str
    reason: str
    incident_id: str | None
    notify: str | None
    deliveries: int


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """The outcome of one tick: the run id and one :class:`RuleOutcome` per rule."""

    run_id: uuid.UUID | None
    now: datetime
    dry_run: bool
    outcomes: tuple[RuleOutcome, ...] = field(default_factory=tuple)

    def counts(self) -> dict[str, int]:
        """Return how many rules ended with each reason, e.g. ``{"created": 1, "below_threshold": 9}``."""
        return dict(Counter(o.reason for o in self.outcomes))

    def rows(self) -> list[dict[str, Any]]:
        """Return the outcomes as dicts (one per rule), ready for a DataFrame or JSON."""
        return [asdict(o) for o in self.outcomes]


def rule_state(rule: m.AlertRule) -> RuleState:
    """Return the decision view of a catalog rule."""
    return RuleState(
        rule_id=str(rule.id),
        service=rule.service,
        threshold=rule.threshold,
        window=timedelta(minutes=rule.window_minutes),
        cooldown=timedelta(minutes=rule.cooldown_minutes or 0),
        enabled=rule.enabled,
        auto_resolve=(
            timedelta(minutes=rule.auto_resolve_minutes) if rule.auto_resolve_minutes else None
        ),
        severity=rule.severity,
        last_triggered_at=rule.last_triggered_at,
        levels=tuple(rule.levels or ("error", "fatal")),
        message_contains=rule.message_contains or None,
        name=rule.name,
        kind=rule.kind or "threshold",
        min_events=rule.min_events,
        match=rule.match or None,
        baseline_days=rule.baseline_days,
        sensitivity=rule.sensitivity,
        pending=_minutes_or_none(rule.pending_minutes),
        pending_since=rule.pending_since,
        repeat=_minutes_or_none(rule.repeat_minutes),
        recovery_threshold=rule.recovery_threshold,
    )


def _minutes_or_none(minutes: int | None) -> timedelta | None:
    return timedelta(minutes=minutes) if minutes else None


def kind_spec(rule: RuleState) -> KindSpec:
    """Return what the lake must count for ``rule``, whatever its kind."""
    return KindSpec(
        key=rule.rule_id,
        kind=rule.kind,
        service=rule.service,
        window=rule.window,
        levels=rule.levels,
        message_contains=rule.message_contains,
        match=rule.match,
        baseline_days=rule.baseline_days,
    )


def breach_of(rule: RuleState, counts: KindCounts) -> Breach:
    """Return the rule kind's verdict on ``counts``."""
    return judge(
        rule.kind,
        counts,
        threshold=rule.threshold,
        min_events=rule.min_events,
        sensitivity=rule.sensitivity,
    )


def window_spec(rule: RuleState) -> WindowSpec:
    """Return what the lake must count for ``rule``."""
    return WindowSpec(
        key=rule.rule_id,
        service=rule.service,
        window=rule.window,
        levels=rule.levels,
        message_contains=rule.message_contains,
    )


def is_silenced(rule: RuleState, silences: Iterable[m.Silence], now: datetime) -> bool:
    """Return True when a silence covering ``now`` matches the rule's service and/or id."""
    for s in silences:
        if not (s.starts_at <= now < s.ends_at):
            continue
        if s.service is not None and s.service != rule.service:
            continue
        if s.rule_id is not None and str(s.rule_id) != rule.rule_id:
            continue
        return True
    return False


def evaluate(
    *,
    engine: Engine,
    lake_url: str,
    now: datetime,
    dry_run: bool = False,
    dashboard_url: str,
    notebook_path: str | None = None,
    report_url: Callable[[uuid.UUID], str | None] | None = None,
    cache_dir: Path | None = None,
) -> EvaluationResult:
    """Evaluate every rule at ``now``, apply the decisions (unless ``dry_run``) and return them.

    ``cache_dir`` keeps the per-day baselines of ``new_pattern``/``anomaly``/``absence``
    rules on disk between processes (:mod:`workbench.query.kinds`).

    ``report_url(incident_id)`` returns the link to an incident's investigation
    report when one exists (``reportUrl`` in the payloads sent afterwards).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    run = m.EvaluationRun(
        now=now, started_at=clock.now(), dry_run=dry_run, notebook_path=notebook_path
    )
    with session_scope(engine) as s:
        _close_abandoned(s, clock.now())
        s.add(run)
    try:
        links = Links(dashboard_url, report_url)
        outcomes = _evaluate(engine, lake_url, now, dry_run, links, run.id, cache_dir)
    except Exception as exc:
        _finish_run(engine, run.id, status="error", error=f"{type(exc).__name__}: {exc}")
        raise
    result = EvaluationResult(run_id=run.id, now=now, dry_run=dry_run, outcomes=tuple(outcomes))
    _finish_run(engine, run.id, status="ok", rules=len(outcomes), outcomes=result.counts())
    return result


#: A run still ``running`` this long after it started had its process killed (the
#: scheduler's own timeout is far shorter): it is closed as an error, so the dashboard
#: and ``/api/alerts/runs`` never show a tick that will not finish as in progress.
ABANDONED_AFTER = timedelta(minutes=10)


def _close_abandoned(s: Session, wall: datetime) -> None:
    s.execute(
        sa.update(m.EvaluationRun)
        .where(
            col(m.EvaluationRun.status) == "running",
            col(m.EvaluationRun.started_at) < wall - ABANDONED_AFTER,
        )
        .values(
            status="error",
            finished_at=wall,
            error="abandoned: the evaluating process stopped before recording an outcome",
        )
    )


def _finish_run(
    engine: Engine,
    run_id: uuid.UUID,
    *,
    status: str,
    rules: int = 0,
    outcomes: dict[str, int] | None = None,
    error: str | None = None,
) -> None:
    with session_scope(engine) as s:
        values: dict[str, Any] = {"status": status, "finished_at": clock.now()}
        if error is not None:
            values["error"] = error[:4000]
        else:
            values["rules_evaluated"] = rules
            values["outcomes"] = outcomes or {}
        s.execute(
            sa.update(m.EvaluationRun).where(col(m.EvaluationRun.id) == run_id).values(**values)
        )


def _save_pending(engine: Engine, pending: dict[str, datetime | None]) -> None:
    """Store each rule's pending start after the tick (only the ones that moved), in the
    catalog: a restarted scheduler, or another one (HA), carries the pending period on."""
    if not pending:
        return
    with session_scope(engine) as s:
        for rule_id, since in sorted(pending.items()):
            s.execute(
                sa.update(m.AlertRule)
                .where(col(m.AlertRule.id) == uuid.UUID(rule_id))
                .values(pending_since=since)
            )


def _evaluate(
    engine: Engine,
    lake_url: str,
    now: datetime,
    dry_run: bool,
    links: Links,
    run_id: uuid.UUID,
    cache_dir: Path | None = None,
) -> list[RuleOutcome]:
    with Session(engine) as s:
        rules = list(s.exec(select(m.AlertRule).order_by(col(m.AlertRule.created_at))).all())
        channels = list(
            s.exec(select(m.NotificationChannel).where(col(m.NotificationChannel.enabled))).all()
        )
        silences = list(
            s.exec(
                select(m.Silence).where(
                    col(m.Silence.starts_at) <= now, col(m.Silence.ends_at) > now
                )
            ).all()
        )
        states = [rule_state(r) for r in rules]
        latest = latest_incidents(s, [r.fingerprint for r in states if r.enabled])
    names = {str(r.id): r.name for r in rules}
    enabled = [r for r in states if r.enabled]
    counts = kind_counts(lake_url, [kind_spec(r) for r in enabled], now, cache_dir=cache_dir)

    decided: list[tuple[RuleState, Decision, bool]] = []
    for rule in states:
        silenced = is_silenced(rule, silences, now)
        breach = breach_of(rule, counts.get(rule.rule_id, KindCounts()))
        decision = decide(
            rule, breach.count, latest.get(rule.fingerprint), silenced, now, breach=breach
        )
        decided.append((rule, decision, silenced))

    final: dict[str, tuple[Decision, int]] = {}
    if not dry_run:
        # Evidence: one bounded read of each paging incident's window, shared by its channels.
        links = replace(
            links,
            evidence={
                rule.rule_id: gather_evidence(lake_url, rule, now, links.dashboard_url)
                for rule, decision, silenced in decided
                if decision.notify in PAGES and channels
            },
        )
        # Pages first (create, reopen, auto-resolve): each in its own transaction.
        for rule, decision, silenced in decided:
            if decision.changes_state and decision.action != "update":
                final[rule.rule_id] = apply_decision(
                    engine, rule, decision, silenced, channels, run_id, links
                )
        # Updates of active incidents are the steady state (every breaching rule, every
        # tick) and notify nobody: one transaction for all of them.
        updates = [(r, d) for r, d, _ in decided if d.action == "update"]
        lost = apply_updates(engine, updates, run_id)
        for rule, decision, silenced in decided:
            if decision.action == "update":
                final[rule.rule_id] = (
                    apply_decision(engine, rule, decision, silenced, channels, run_id, links)
                    if rule.rule_id in lost
                    else (decision, 0)
                )
    record_decisions(
        engine,
        [decision_row(d, r, run_id) for r, d, _ in decided if dry_run or not d.changes_state],
    )
    if not dry_run:
        _save_pending(
            engine,
            {
                r.rule_id: final.get(r.rule_id, (d, 0))[0].pending_since
                for r, d, _ in decided
                if final.get(r.rule_id, (d, 0))[0].pending_since != r.pending_since
            },
        )

    outcomes: list[RuleOutcome] = []
    for rule, first, _ in decided:
        decision, delivered = final.get(rule.rule_id, (first, 0))
        inc = decision.incident
        outcomes.append(
            RuleOutcome(
                rule_id=rule.rule_id,
                name=names.get(rule.rule_id, ""),
                service=rule.service,
                fingerprint=rule.fingerprint,
                count=decision.count,
                threshold=rule.threshold,
                action=decision.action,
                reason=decision.reason,
                incident_id=str(inc.id) if inc is not None and inc.id is not None else None,
                notify=decision.notify,
                deliveries=delivered,
            )
        )
    return outcomes


