"""Incident writes of the evaluator: each decision applied to the catalog, race-safe.

:func:`~workbench.alerting.evaluate.evaluate` (the orchestration: read rules, count,
decide) hands its state-changing decisions here:

* :func:`apply_decision` writes one decision in its own transaction: the incident row
  (insert, or a conditional UPDATE), its timeline events, one outbox
  :class:`~workbench.catalog.models.Delivery` per enabled channel, the rule's
  ``last_triggered_at`` and the decision record commit together or not at all;
* :func:`apply_updates` writes the steady-state ``update`` decisions (no page) of a
  tick in one transaction;
* :func:`record_decisions` writes the decision records of rules whose state did not change.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from workbench.alerting.decide import (
    ACTIVE,
    ALERT,
    HELD,
    REOPENED,
    REPEAT,
    Decision,
    IncidentState,
    RuleState,
    decide,
)
from workbench.alerting.kinds import Breach
from workbench.catalog import models as m
from workbench.catalog.channels import paged_channels
from workbench.catalog.db import session_scope
from workbench.catalog.payload import build_payload, incident_url
from workbench.errors import StorageError

log = logging.getLogger(__name__)

EVALUATOR = "evaluator"
_MAX_RETRIES = 4
_IN_CHUNK = 500
#: Notification types that page (and so carry evidence).
PAGES: frozenset[str] = frozenset({ALERT, REOPENED, REPEAT})

# Core tables: the hot paths insert plain rows, not ORM objects.
INCIDENTS: sa.Table = m.AlertIncident.__table__  # type: ignore[attr-defined]
EVENTS: sa.Table = m.IncidentEvent.__table__  # type: ignore[attr-defined]
DELIVERIES: sa.Table = m.Delivery.__table__  # type: ignore[attr-defined]
DECISIONS: sa.Table = m.Decision.__table__  # type: ignore[attr-defined]


class _LostRace(Exception):
    """A conditional UPDATE matched no row: another writer changed the incident first."""


@dataclass(frozen=True)
class Links:
    """Where payloads point: the dashboard, and an incident's investigation report if any.

    ``evidence`` maps a rule id to the evidence gathered for its page at this tick
    (:func:`workbench.alerting.evidence.gather_evidence`, once per incident, shared by
    every channel); firing and reopened payloads carry it.
    """

    dashboard_url: str
    report_url: Callable[[uuid.UUID], str | None] | None = None
    evidence: Mapping[str, dict[str, Any]] = field(default_factory=dict)


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
        last_notified_at=incident.last_notified_at,
    )


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


def record_decisions(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Insert decision records (:func:`decision_row`) in one transaction."""
    if rows:
        with session_scope(engine) as s:
            _insert(s, DECISIONS, rows)


def apply_updates(
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
                .values(last_seen_error_at=d.at, error_count=d.count, **_observed(d))
            )
            if result.rowcount != 1:
                lost.add(rule.rule_id)
                continue
            if d.previous is None or d.count != d.previous.error_count:
                seen.append(_event_row(d.incident.id, d.at, *_seen_event(rule, d)))
            decisions.append(decision_row(d, rule, run_id))
        _insert(s, EVENTS, seen)
        _insert(s, DECISIONS, decisions)
        s.commit()
    return lost


def decision_row(decision: Decision, rule: RuleState, run_id: uuid.UUID) -> dict[str, Any]:
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


def apply_decision(
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
                rule = replace(
                    rule,
                    last_triggered_at=row.last_triggered_at,
                    enabled=row.enabled,
                    pending_since=row.pending_since,
                )
            decision = decide(
                rule, decision.count, latest, silenced, decision.at, breach=_breach_of(decision)
            )
            if not decision.changes_state:
                record_decisions(engine, [decision_row(decision, rule, run_id)])
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
                kind=rule.kind,
                last_notified_at=now,
                **_observed(d),
            )
        )
        _pending_event(s, incident_id, rule, d)
        _event(s, incident_id, now, "created", _trigger_data(rule, d))
    elif d.action == "update":
        assert inc.id is not None
        _conditional(
            s,
            sa.update(INCIDENTS)
            .where(tbl.id == inc.id, tbl.status.in_(ACTIVE))
            .values(last_seen_error_at=now, error_count=d.count, **_observed(d)),
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
                last_notified_at=now,
                **_observed(d),
            ),
        )
        incident_id = inc.id
        _pending_event(s, incident_id, rule, d)
        _event(s, incident_id, now, "reopened", _trigger_data(rule, d))
    elif d.action == "repeat":
        assert inc.id is not None and d.previous is not None
        last = d.previous.last_notified_at
        # Conditional on the last page this evaluator saw: two evaluators repeat once.
        _conditional(
            s,
            sa.update(INCIDENTS)
            .where(
                tbl.id == inc.id,
                tbl.status == "open",
                tbl.last_notified_at.is_(None) if last is None else tbl.last_notified_at == last,
            )
            .values(
                last_notified_at=now,
                last_seen_error_at=inc.last_seen_error_at,
                error_count=inc.error_count,
                **(_observed(d) if inc.last_seen_error_at == now else {}),
            ),
        )
        incident_id = inc.id
        _event(
            s,
            incident_id,
            now,
            "repeated",
            {"count": inc.error_count, "repeatMinutes": _minutes(rule.repeat or timedelta(0))},
        )
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
        _event(s, incident_id, now, *_seen_event(rule, d))

    delivered = 0
    if d.notify is not None:
        payload = build_payload(
            event_type=d.notify,
            service=rule.service,
            error_count=d.count if d.action not in _LATER else inc.error_count,
            window_minutes=_minutes(rule.window),
            triggered_at=inc.triggered_at if d.action in _LATER else now,
            incident_id=incident_id,
            rule_id=rule.rule_id,
            threshold=rule.threshold,
            status="resolved" if d.action == "auto_resolve" else "open",
            severity=rule.severity,
            dashboard_url=links.dashboard_url,
            report_url=links.report_url(incident_id) if links.report_url else None,
            reason=_auto_reason(rule) if d.action == "auto_resolve" else None,
            evidence=_evidence(links, rule, d.notify, incident_id),
            kind=rule.kind,
            observed_value=d.value if d.action != "auto_resolve" else None,
            baseline_value=d.baseline if d.action != "auto_resolve" else None,
        )
        if d.action == "auto_resolve":
            # "Resolved" goes to the channels that were paged for this incident.
            channels = paged_channels(session=s, incident_id=incident_id)
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
    _insert(s, DECISIONS, [decision_row(applied, rule, run_id)])
    return applied, delivered


#: Pages about an incident opened earlier: they carry its own count and trigger time.
_LATER = frozenset({"auto_resolve", "repeat"})


def _seen_event(rule: RuleState, d: Decision) -> tuple[str, dict[str, Any]]:
    """Return the timeline event of an update: ``seen``, or ``held`` when the value left the
    breach but not the recovery threshold (the resolve it suppressed, and why)."""
    if d.reason != HELD:
        return "seen", {"count": d.count}
    return "held", {
        "count": d.count,
        "value": d.value,
        "threshold": rule.threshold,
        "recoveryThreshold": rule.recovery_threshold,
        "why": "not breaching, but not yet past the recovery threshold: kept open",
    }


def _pending_event(s: Session, incident_id: uuid.UUID, rule: RuleState, d: Decision) -> None:
    """Record on the timeline that the breach was held back for the pending period."""
    if d.pending_held_since is None:
        return
    _event(
        s,
        incident_id,
        d.pending_held_since,
        "pending",
        {
            "pendingMinutes": _minutes(rule.pending or timedelta(0)),
            "why": "breach seen; not opened until it held for the pending period",
        },
    )


def _auto_reason(rule: RuleState) -> str:
    quiet = _minutes(rule.auto_resolve or timedelta(0))
    return f"auto-resolved: no matching events for {quiet} min"


def _evidence(
    links: Links, rule: RuleState, notify: str, incident_id: uuid.UUID
) -> dict[str, Any] | None:
    """Return the evidence of a firing/reopened page (with the incident link), else None."""
    found = links.evidence.get(rule.rule_id)
    if found is None or notify not in PAGES:
        return None
    return {**found, "dashboardUrl": incident_url(links.dashboard_url, incident_id)}


def _breach_of(d: Decision) -> Breach:
    """Return the kind's verdict a decision was taken on (to decide again after a lost race)."""
    return Breach(d.breached, d.count, d.value or 0.0, d.baseline, detail=d.detail)


def _observed(d: Decision) -> dict[str, Any]:
    """Return the incident columns of what the rule observed (its kind's value and baseline)."""
    return {"observed_value": d.value, "baseline_value": d.baseline}


def _trigger_data(rule: RuleState, d: Decision) -> dict[str, Any]:
    """Return the timeline data of a created/reopened event: count and threshold, plus
    for the other kinds than ``threshold`` the kind, the value, the baseline and details."""
    data: dict[str, Any] = {"count": d.count, "threshold": rule.threshold}
    if rule.kind != "threshold":
        data.update(kind=rule.kind, value=d.value, baseline=d.baseline, **d.detail)
    return data


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
