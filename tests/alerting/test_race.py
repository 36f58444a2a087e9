"""Two evaluators at once produce ONE incident and ONE delivery per channel (SQLite and PostgreSQL)."""

from __future__ import annotations

import multiprocessing as mp
import threading
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests.alerting.conftest import (
    T0,
    Clock,
    add_channel,
    add_errors,
    add_rule,
    deliveries,
    incidents,
)
from workbench.alerting import evaluate as ev
from workbench.alerting.evaluate import evaluate
from workbench.catalog import models as m
from workbench.catalog.db import get_engine, session_scope

DASH = "http://dash"
RULES = 12
CHANNELS = 2


def _setup(engine: Engine, lake_url: str, now: datetime) -> None:
    for i in range(RULES):
        # No cooldown: the stale readers below see only a stale incident, not a stale rule.
        add_rule(engine, name=f"r{i}", service=f"svc{i}", cooldown_minutes=0)
        add_errors(lake_url, now, 6, service=f"svc{i}")
    for i in range(CHANNELS):
        add_channel(engine, f"http://127.0.0.1:9/{i}")


def _check(engine: Engine, reopened: bool = False) -> None:
    incs = incidents(engine)
    assert len(incs) == RULES
    assert len({i.fingerprint for i in incs}) == RULES
    assert all(i.status == "open" for i in incs)
    dls = deliveries(engine)
    kind = "error_alert_reopened" if reopened else "error_alert"
    assert len([d for d in dls if d.event_type == kind]) == RULES * CHANNELS
    assert len({(d.incident_id, d.channel_id, d.event_type) for d in dls}) == len(dls)


def test_threads_race(engine: Engine, lake_url: str, clock: Clock) -> None:
    _setup(engine, lake_url, clock.now)
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            evaluate(engine=engine, lake_url=lake_url, now=clock.now, dashboard_url=DASH)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    _check(engine)


def _stale_once(monkeypatch: pytest.MonkeyPatch, snapshot: dict[str, Any]) -> None:
    """Make the evaluator's first read of incidents return ``snapshot`` (as if read before
    another evaluator committed); later reads (the retry) see the database."""
    real = ev.latest_incidents
    calls = {"n": 0}

    def stale(session: Session, fps: Any) -> Any:
        calls["n"] += 1
        return snapshot if calls["n"] == 1 else real(session, fps)

    monkeypatch.setattr(ev, "latest_incidents", stale)


def test_create_loses_to_the_unique_index(
    engine: Engine, lake_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(engine, lake_url, clock.now)
    evaluate(engine=engine, lake_url=lake_url, now=clock.now, dashboard_url=DASH)
    _stale_once(monkeypatch, {})  # the second evaluator believes no incident exists
    result = evaluate(engine=engine, lake_url=lake_url, now=clock.now, dashboard_url=DASH)
    assert {o.reason for o in result.outcomes} == {"updated"}
    _check(engine)


def test_reopen_race(
    engine: Engine, lake_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(engine, lake_url, clock.now)
    evaluate(engine=engine, lake_url=lake_url, now=clock.now, dashboard_url=DASH)
    with session_scope(engine) as s:
        s.execute(sa.update(m.AlertIncident).values(status="resolved", resolved_at=clock.now))
    later = clock.advance(60)
    for i in range(RULES):
        add_errors(lake_url, later, 6, service=f"svc{i}")
    with Session(engine) as s:
        fps = [f"{r.service}:{r.id}" for r in s.exec(select(m.AlertRule)).all()]
        snapshot = ev.latest_incidents(s, fps)  # all resolved
    evaluate(engine=engine, lake_url=lake_url, now=later, dashboard_url=DASH)  # reopens all
    _stale_once(monkeypatch, snapshot)  # this one still sees them resolved
    result = evaluate(engine=engine, lake_url=lake_url, now=later, dashboard_url=DASH)
    assert {o.reason for o in result.outcomes} == {"updated"}
    _check(engine, reopened=True)
    assert all(i.reopen_count == 1 for i in incidents(engine))


def _process_worker(url: str, lake_url: str, now: datetime, start: Any) -> None:
    engine = get_engine(url)
    with engine.connect():
        pass  # imported and connected: now wait for the other one
    start.wait(120)
    evaluate(engine=engine, lake_url=lake_url, now=now, dashboard_url=DASH)


@pytest.mark.slow
def test_processes_race(engine: Engine, catalog_url: str, lake_url: str) -> None:
    _setup(engine, lake_url, T0)
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(2)  # both imported and connected, then released together
    procs = [
        ctx.Process(target=_process_worker, args=(catalog_url, lake_url, T0, start))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    _check(engine)
    with Session(engine) as s:
        runs = s.exec(select(m.EvaluationRun)).all()
    assert len(runs) == 2 and all(r.status == "ok" and r.now == T0 for r in runs)


def test_update_loses_to_a_resolve(
    engine: Engine, lake_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(engine, lake_url, clock.now)
    evaluate(engine=engine, lake_url=lake_url, now=clock.now, dashboard_url=DASH)
    with Session(engine) as s:
        fps = [f"{r.service}:{r.id}" for r in s.exec(select(m.AlertRule)).all()]
        snapshot = ev.latest_incidents(s, fps)  # all open
    # A person resolves everything between this evaluator's read and its write.
    with session_scope(engine) as s:
        s.execute(sa.update(m.AlertIncident).values(status="resolved", resolved_at=clock.now))
    _stale_once(monkeypatch, snapshot)
    result = evaluate(engine=engine, lake_url=lake_url, now=clock.advance(1), dashboard_url=DASH)
    # Decided again against the resolved incidents: still inside the quiet period.
    assert {o.reason for o in result.outcomes} == {"quiet_period"}
    assert all(i.status == "resolved" for i in incidents(engine))
