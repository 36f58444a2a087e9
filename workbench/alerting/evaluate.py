"""One evaluation tick over the catalog and the lake: count, decide, apply, record.

:func:`evaluate` is the thin layer around :func:`workbench.alerting.decide.decide`:

* records an :class:`~workbench.catalog.models.EvaluationRun` first (the heartbeat);
* counts every enabled rule with ONE :func:`~workbench.query.window.window_counts` call;
* loads the latest incident per fingerprint and the silences active at ``now``;
* applies each state-changing decision in its own transaction: the incident row,
  its timeline events, one outbox :class:`~workbench.catalog.models.Delivery` per
  enabled channel, the rule's ``last_triggered_at`` and the decision record commit
  together or not at all;
* records a decision (action + reason) for every rule, enabled or not.

Race safety (two evaluators at the same time): a create that loses against the
partial unique index (one active incident per fingerprint) is rolled back and
decided again against the incident that won; reopen, update and auto-resolve are
conditional UPDATEs (``WHERE status = ...``) whose row count tells whether this
evaluator still holds the state it decided on; if not, it decides again. So two
evaluators produce one incident and one set of deliveries.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from workbench.alerting.decide import (
    ACTIVE,
    Decision,
    IncidentState,
    RuleState,
    decide,
)
from workbench.alerting.payload import build_payload
from workbench.catalog import models as m
from workbench.catalog.db import session_scope
from workbench.errors import StorageError
from workbench.query.window import WindowSpec, window_counts

log = logging.getLogger(__name__)

EVALUATOR = "evaluator"
_MAX_RETRIES = 4
_IN_CHUNK = 500

# Core tables: the hot paths insert plain rows, not ORM objects.
INCIDENTS: sa.Table = m.AlertIncident.__table__  # type: ignore[attr-defined]
EVENTS: sa.Table = m.IncidentEvent.__table__  # type: ignore[attr-defined]
DELIVERIES: sa.Table = m.Delivery.__table__  # type: ignore[attr-defined]
DECISIONS: sa.Table = m.Decision.__table__  # type: ignore[attr-defined]


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


class _LostRace(Exception):
    """A conditional UPDATE matched no row: another writer changed the incident first."""


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
    )


def incident_state(incident: m.AlertIncident) -> IncidentState:
    """Return the decision view of a catalog incident."""
    return IncidentState(
        id=incident.id,
        status=incident.status,
        first_triggered_at=incident.first_triggered_at,
        triggered_at=incident.triggered_at,
        last_seen_error_at=incident.last_seen_error_at,
        error_count=incident.error_count,
        acknowledged_at=incident.acknowledged_at,
        resolved_at=incident.resolved_at,
        reopen_count=incident.reopen_count,
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


def latest_incidents(session: Session, fingerprints: Sequence[str]) -> dict[str, IncidentState]:
    """Return per fingerprint its active incident, else its most recently triggered one."""
    best: dict[str, m.AlertIncident] = {}
    for i in range(0, len(fingerprints), _IN_CHUNK):
        chunk = list(fingerprints[i : i + _IN_CHUNK])
        rows = session.exec(
            select(m.AlertIncident).where(col(m.AlertIncident.fingerprint).in_(chunk))
        ).all()
        for inc in rows:
            cur = best.get(inc.fingerprint)
            if cur is None or _rank(inc) > _rank(cur):
                best[inc.fingerprint] = inc
    return {fp: incident_state(inc) for fp, inc in best.items()}


def _rank(inc: m.AlertIncident) -> tuple[bool, datetime]:
    return (inc.status in ACTIVE, inc.triggered_at)


@dataclass(frozen=True)
class Links:
    """Where payloads point: the dashboard, and an incident's investigation report if any."""

    dashboard_url: str
    report_url: Callable[[uuid.UUID], str | None] | None = None


def evaluate(
    *,
    engine: Engine,
    lake_url: str,
    now: datetime,
    dry_run: bool = False,
    dashboard_url: str,
    notebook_path: str | None = None,
    report_url: Callable[[uuid.UUID], str | None] | None = None,
) -> EvaluationResult:
    """Evaluate every rule at ``now``, apply the decisions (unless ``dry_run``) and return them.

    ``report_url(incident_id)`` returns the link to an incident's investigation
    report when one exists (``reportUrl`` in the payloads sent afterwards).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    run = m.EvaluationRun(
        now=now, started_at=m.utcnow(), dry_run=dry_run, notebook_path=notebook_path
    )
    with session_scope(engine) as s:
        _close_abandoned(s, m.utcnow())
        s.add(run)
    try:
        links = Links(dashboard_url, report_url)
        outcomes = _evaluate(engine, lake_url, now, dry_run, links, run.id)
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
        values: dict[str, Any] = {"status": status, "finished_at": m.utcnow()}
        if error is not None:
            values["error"] = error[:4000]
        else:
            values["rules_evaluated"] = rules
            values["outcomes"] = outcomes or {}
        s.execute(
            sa.update(m.EvaluationRun).where(col(m.EvaluationRun.id) == run_id).values(**values)
        )


def _evaluate(
    engine: Engine,
    lake_url: str,
    now: datetime,
    dry_run: bool,
    links: Links,
    run_id: uuid.UUID,
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
    counts = window_counts(lake_url, [window_spec(r) for r in enabled], now)

    decided: list[tuple[RuleState, Decision, bool]] = []
    for rule in states:
        silenced = is_silenced(rule, silences, now)
        decision = decide(
            rule, counts.get(rule.rule_id, 0), latest.get(rule.fingerprint), silenced, now
        )
        decided.append((rule, decision, silenced))

    final: dict[str, tuple[Decision, int]] = {}
    if not dry_run:
        # Pages first (create, reopen, auto-resolve): each in its own transaction.
        for rule, decision, silenced in decided:
            if decision.changes_state and decision.action != "update":
                final[rule.rule_id] = _apply(
                    engine, rule, decision, silenced, channels, run_id, links
                )
        # Updates of active incidents are the steady state (every breaching rule, every
        # tick) and notify nobody: one transaction for all of them.
        updates = [(r, d) for r, d, _ in decided if d.action == "update"]
        lost = _apply_updates(engine, updates, run_id)
        for rule, decision, silenced in decided:
            if decision.action == "update":
                final[rule.rule_id] = (
                    _apply(engine, rule, decision, silenced, channels, run_id, links)
                    if rule.rule_id in lost
                    else (decision, 0)
                )
    pending_records = [
        _record(d, r, run_id) for r, d, _ in decided if dry_run or not d.changes_state
    ]
    if pending_records:
        with session_scope(engine) as s:
            _insert(s, DECISIONS, pending_records)

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


def _apply_updates(
    engine: Engine, updates: Sequence[tuple[RuleState, Decision]], run_id: uuid.UUID
) -> set[str]:
    """Apply many ``update`` decisions in one transaction; return the rule ids that lost a race.

    Each UPDATE is conditional (the incident must still be active); one that
    matches no row changed nothing, so the others can commit and the losers are
    decided again one by one. Rows are updated in incident-id order so that two
    evaluators doing this at once cannot deadlock on PostgreSQL.
    """
    if not updates:
        return set()
    lost: set[str] = set()
    decisions: list[dict[str, Any]] = []
    seen: list[dict[str, Any]] = []
    ordered = sorted(updates, key=lambda rd: str(rd[1].incident.id if rd[1].incident else ""))
    with Session(engine, expire_on_commit=False) as s:
        conn = s.connection()
        for rule, d in ordered:
            assert d.incident is not None and d.incident.id is not None
            result = conn.execute(
                sa.update(INCIDENTS)
                .where(INCIDENTS.c.id == d.incident.id, INCIDENTS.c.status.in_(ACTIVE))
                .values(last_seen_error_at=d.at, error_count=d.count)
            )
            if result.rowcount != 1:
                lost.add(rule.rule_id)
                continue
            if d.previous is None or d.count != d.previous.error_count:
                seen.append(_event_row(d.incident.id, d.at, "seen", {"count": d.count}))
            decisions.append(_record(d, rule, run_id))
        _insert(s, EVENTS, seen)
        _insert(s, DECISIONS, decisions)
        s.commit()
    return lost


def _record(decision: Decision, rule: RuleState, run_id: uuid.UUID) -> dict[str, Any]:
    """Return the ``evaluation_decisions`` row of one decision."""
    inc = decision.incident
    return {
        "id": uuid.uuid4(),
        "run_id": run_id,
        "rule_id": uuid.UUID(rule.rule_id),
        "incident_id": inc.id if inc is not None else None,
        "at": decision.at,
        "fingerprint": decision.fingerprint,
        "count": decision.count,
        "threshold": decision.threshold,
        "action": decision.action,
        "reason": decision.reason,
    }


def _apply(
    engine: Engine,
    rule: RuleState,
    decision: Decision,
    silenced: bool,
    channels: Sequence[m.NotificationChannel],
    run_id: uuid.UUID,
    links: Links,
) -> tuple[Decision, int]:
    """Write one decision in its own transaction; on a lost race decide again and retry.

    Returns the decision finally applied (it may differ from the first one, e.g.
    ``update`` instead of ``create``) and the number of deliveries queued. The
    decision record is always written here (with the change, or alone).
    """
    for _attempt in range(_MAX_RETRIES):
        try:
            with Session(engine, expire_on_commit=False) as s:
                applied, delivered = _write(s, rule, decision, channels, run_id, links)
                s.commit()
            return applied, delivered
        except (IntegrityError, _LostRace) as exc:
            log.info("rule %s lost a race (%s); deciding again", rule.rule_id, type(exc).__name__)
            with Session(engine) as s:
                latest = latest_incidents(s, [rule.fingerprint]).get(rule.fingerprint)
                row = s.get(m.AlertRule, uuid.UUID(rule.rule_id))
            if row is None:  # deleted meanwhile (its incident insert fails on the FK): skip it
                rule = replace(rule, enabled=False)
            else:
                rule = replace(rule, last_triggered_at=row.last_triggered_at, enabled=row.enabled)
            decision = decide(rule, decision.count, latest, silenced, decision.at)
            if not decision.changes_state:
                with session_scope(engine) as s:
                    _insert(s, DECISIONS, [_record(decision, rule, run_id)])
                return decision, 0
    raise StorageError(f"rule {rule.rule_id}: could not apply decision after {_MAX_RETRIES} tries")


def _write(
    s: Session,
    rule: RuleState,
    d: Decision,
    channels: Sequence[m.NotificationChannel],
    run_id: uuid.UUID,
    links: Links,
) -> tuple[Decision, int]:
    """Stage the rows of one decision in ``s`` (no commit); return it with its incident id set."""
    now = d.at
    inc = d.incident
    assert inc is not None
    rule_uuid = uuid.UUID(rule.rule_id)
    tbl = INCIDENTS.c
    # Each branch starts with a write so that SQLite takes its write lock before any
    # read in this transaction (a read-then-write transaction could not upgrade).
    if d.action == "create":
        incident_id = uuid.uuid4()
        # The partial unique index rejects a second active incident here (IntegrityError).
        s.connection().execute(
            sa.insert(INCIDENTS).values(
                id=incident_id,
                rule_id=rule_uuid,
                service=rule.service,
                fingerprint=d.fingerprint,
                status="open",
                severity=rule.severity,
                error_count=d.count,
                threshold=rule.threshold,
                window_minutes=_minutes(rule.window),
                first_triggered_at=now,
                triggered_at=now,
                last_seen_error_at=now,
                reopen_count=0,
                created_at=now,
            )
        )
        _event(s, incident_id, now, "created", {"count": d.count, "threshold": rule.threshold})
    elif d.action == "update":
        assert inc.id is not None
        _conditional(
            s,
            sa.update(INCIDENTS)
            .where(tbl.id == inc.id, tbl.status.in_(ACTIVE))
            .values(last_seen_error_at=now, error_count=d.count),
        )
        incident_id = inc.id
    elif d.action == "reopen":
        assert inc.id is not None
        _conditional(
            s,
            sa.update(INCIDENTS)
            .where(tbl.id == inc.id, tbl.status == "resolved")
            .values(
                status="open",
                triggered_at=now,
                last_seen_error_at=now,
                error_count=d.count,
                acknowledged_at=None,
                acknowledged_by=None,
                resolved_at=None,
                resolved_by=None,
                reopen_count=tbl.reopen_count + 1,
            ),
        )
        incident_id = inc.id
        _event(s, incident_id, now, "reopened", {"count": d.count, "threshold": rule.threshold})
    elif d.action == "auto_resolve":
        assert inc.id is not None
        _conditional(
            s,
            sa.update(INCIDENTS)
            .where(
                tbl.id == inc.id,
                tbl.status.in_(ACTIVE),
                tbl.last_seen_error_at == inc.last_seen_error_at,
            )
            .values(status="resolved", resolved_at=now, resolved_by=EVALUATOR),
        )
        incident_id = inc.id
        _event(
            s,
            incident_id,
            now,
            "resolved",
            {"auto": True, "after_minutes": _minutes(rule.auto_resolve or timedelta(0))},
        )
    else:  # pragma: no cover - decide() has no other state-changing action
        raise ValueError(f"unexpected action {d.action}")

    if d.action == "update" and (d.previous is None or d.count != d.previous.error_count):
        # A timeline point only when the count moves, not every minute.
        _event(s, incident_id, now, "seen", {"count": d.count})

    delivered = 0
    if d.notify is not None:
        payload = build_payload(
            event_type=d.notify,
            service=rule.service,
            error_count=d.count if d.action != "auto_resolve" else inc.error_count,
            window_minutes=_minutes(rule.window),
            triggered_at=inc.triggered_at if d.action == "auto_resolve" else now,
            incident_id=incident_id,
            rule_id=rule.rule_id,
            threshold=rule.threshold,
            status="resolved" if d.action == "auto_resolve" else "open",
            severity=rule.severity,
            dashboard_url=links.dashboard_url,
            report_url=links.report_url(incident_id) if links.report_url else None,
        )
        rows = [
            {
                "id": uuid.uuid4(),
                "incident_id": incident_id,
                "channel_id": ch.id,
                "event_type": d.notify,
                "url": ch.target,
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for ch in channels
        ]
        _insert(s, DELIVERIES, rows)
        delivered = len(rows)
    if d.action in ("create", "reopen"):
        s.connection().execute(
            sa.update(m.AlertRule)
            .where(col(m.AlertRule.id) == rule_uuid)
            .values(last_triggered_at=now)
        )
    applied = replace(d, incident=replace(inc, id=incident_id))
    _insert(s, DECISIONS, [_record(applied, rule, run_id)])
    return applied, delivered


def _conditional(s: Session, stmt: Any) -> None:
    """Execute an UPDATE that must match exactly one row, else raise :class:`_LostRace`."""
    if s.connection().execute(stmt).rowcount != 1:
        raise _LostRace()


def _event_row(
    incident_id: uuid.UUID, at: datetime, kind: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "incident_id": incident_id,
        "at": at,
        "kind": kind,
        "actor": EVALUATOR,
        "data": data,
    }


def _event(
    s: Session, incident_id: uuid.UUID, at: datetime, kind: str, data: dict[str, Any]
) -> None:
    _insert(s, EVENTS, [_event_row(incident_id, at, kind, data)])


def _insert(s: Session, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert plain rows with Core in the session's transaction (no ORM objects: 10x cheaper)."""
    if rows:
        s.connection().execute(sa.insert(table), rows)


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)
