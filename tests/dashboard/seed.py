"""A small, fixed world for dashboard tests: a lake of a few services and a seeded catalog."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tests.factories import make_events, write_events
from workbench.catalog.db import get_engine, init_db, session_scope
from workbench.catalog.models import (
    AlertIncident,
    AlertRule,
    EvaluationRun,
    IncidentEvent,
    NotificationChannel,
)
from workbench.config import Settings


@dataclass
class Seeded:
    """Ids of what :func:`seed` created."""

    now: datetime
    rules: list[uuid.UUID] = field(default_factory=list)
    channels: list[uuid.UUID] = field(default_factory=list)
    open_incident: uuid.UUID | None = None
    acked_incident: uuid.UUID | None = None
    resolved_incident: uuid.UUID | None = None
    events: int = 0


def seed_lake(settings: Settings, now: datetime) -> int:
    """Write a few hundred events over the last 2 days with an error burst 20 min ago."""
    rows = []
    for i in range(240):  # steady info traffic, every 12 min over 48 h
        rows.append({"timestamp": now - timedelta(minutes=12 * i + 1), "service": "api",
                     "level": "info", "message": f"GET /orders/{i} 200",
                     "meta": {"status": 200, "path": f"/orders/{i}"}})
    for i in range(30):  # the burst behind the open incident
        rows.append({"timestamp": now - timedelta(minutes=20, seconds=-10 * i),
                     "service": "auth-service", "level": "error" if i % 5 else "fatal",
                     "message": f"Failed to authenticate user <b>u{i}</b> & retried",
                     "meta": {"user": f"u{i}", "attempt": {"n": i % 3}}})
    for i in range(12):  # older scattered warnings and errors
        rows.append({"timestamp": now - timedelta(hours=3 * i + 2), "service": "billing",
                     "level": "warn" if i % 2 else "error", "message": "card declined " + "x" * 200,
                     "meta": None})
    write_events(settings.lake_url, make_events(rows), name="seed")
    return len(rows)


def seed_catalog(settings: Settings, now: datetime, *, lake: bool = True) -> Seeded:
    """Create rules, channels, three incidents (open, acknowledged, resolved) and a fresh run."""
    out = Seeded(now=now)
    if lake:
        out.events = seed_lake(settings, now)
    engine = get_engine(settings.database_url)
    init_db(engine)
    with session_scope(engine) as s:
        r1 = AlertRule(name="auth burst", service="auth-service", threshold=10, window_minutes=5,
                       cooldown_minutes=15, severity="critical", created_at=now, updated_at=now)
        r2 = AlertRule(name="billing errors", service="billing", threshold=3, window_minutes=60,
                       enabled=False, created_at=now + timedelta(seconds=1),
                       updated_at=now + timedelta(seconds=1))
        c1 = NotificationChannel(name="ops hook", target="http://127.0.0.1:9/hook", created_at=now)
        c2 = NotificationChannel(name="backup", target="https://example.invalid/hook",
                                 enabled=False, created_at=now + timedelta(seconds=1))
        s.add_all([r1, r2, c1, c2])
        s.flush()
        t = now - timedelta(minutes=18)
        inc_open = AlertIncident(rule_id=r1.id, service="auth-service",
                                 fingerprint=f"auth-service:{r1.id}", status="open",
                                 severity="critical", error_count=30, threshold=10, window_minutes=5,
                                 first_triggered_at=t, triggered_at=t,
                                 last_seen_error_at=now - timedelta(minutes=16))
        inc_ack = AlertIncident(rule_id=None, service="payments", fingerprint="payments:old-rule",
                                status="acknowledged", error_count=12, threshold=5,
                                window_minutes=10, first_triggered_at=now - timedelta(hours=2),
                                triggered_at=now - timedelta(hours=2),
                                last_seen_error_at=now - timedelta(hours=1),
                                acknowledged_at=now - timedelta(minutes=90), acknowledged_by="alice")
        inc_res = AlertIncident(rule_id=r2.id, service="billing", fingerprint=f"billing:{r2.id}",
                                status="resolved", error_count=4, threshold=3, window_minutes=60,
                                first_triggered_at=now - timedelta(hours=5),
                                triggered_at=now - timedelta(hours=5),
                                last_seen_error_at=now - timedelta(hours=4),
                                resolved_at=now - timedelta(minutes=5), resolved_by="bob")
        s.add_all([inc_open, inc_ack, inc_res])
        s.flush()
        s.add(IncidentEvent(incident_id=inc_open.id, at=t, kind="created",
                            data={"count": 30, "threshold": 10}))
        s.add(EvaluationRun(now=now - timedelta(seconds=40), started_at=now - timedelta(seconds=41),
                            finished_at=now - timedelta(seconds=40), status="ok", rules_evaluated=1))
        out.rules = [r1.id, r2.id]
        out.channels = [c1.id, c2.id]
        out.open_incident, out.acked_incident, out.resolved_incident = inc_open.id, inc_ack.id, inc_res.id
    return out
