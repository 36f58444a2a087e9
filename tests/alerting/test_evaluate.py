"""The evaluator against a real catalog (SQLite; PostgreSQL when marked) and a real tmp lake,
on a fake clock that moves: every action of design.md's evaluation steps, end to end."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests.alerting.conftest import (
    Clock,
    add_channel,
    add_errors,
    add_rule,
    deliveries,
    events,
    incidents,
)
from workbench import clock as workbench_clock
from workbench.alerting.evaluate import evaluate
from workbench.catalog import models as m
from workbench.catalog.db import session_scope

DASH = "http://dash.example"


def run(engine: Engine, lake_url: str, clock: Clock, **kw: object) -> dict[str, tuple[str, str]]:
    result = evaluate(engine=engine, lake_url=lake_url, now=clock.now, dashboard_url=DASH, **kw)  # type: ignore[arg-type]
    return {o.name: (o.action, o.reason) for o in result.outcomes}


def test_lifecycle_on_a_moving_clock(engine: Engine, lake_url: str, clock: Clock) -> None:
    rule = add_rule(engine, name="auth", auto_resolve_minutes=30, severity="critical")
    add_rule(engine, name="off", enabled=False)
    on = add_channel(engine, "http://127.0.0.1:9/on", secret="s3")
    add_channel(engine, "http://127.0.0.1:9/off", enabled=False)
    t0 = clock.now

    # Below threshold.
    add_errors(lake_url, t0, 4)
    assert run(engine, lake_url, clock) == {
        "auth": ("none", "below_threshold"),
        "off": ("none", "disabled"),
    }

    # Breach -> create, one delivery for the one enabled channel.
    clock.advance(1)
    add_errors(lake_url, clock.now, 2)
    assert run(engine, lake_url, clock)["auth"] == ("create", "created")
    [inc] = incidents(engine)
    assert (inc.status, inc.error_count, inc.fingerprint) == ("open", 6, f"auth:{rule.id}")
    assert inc.severity == "critical"
    [dl] = deliveries(engine)
    assert dl.channel_id == on.id and dl.status == "pending" and dl.event_type == "error_alert"
    assert dl.payload["incidentId"] == str(inc.id) and dl.payload["errorCount"] == 6
    assert dl.payload["url"] == f"{DASH}/voila/render/incidents.ipynb?incident={inc.id}"
    created_at = clock.now

    # Still breaching -> update count and last seen, no new delivery.
    clock.advance(1)
    add_errors(lake_url, clock.now, 3)
    assert run(engine, lake_url, clock)["auth"] == ("update", "updated")
    [inc] = incidents(engine)
    assert inc.error_count == 9 and inc.last_seen_error_at == clock.now
    assert inc.triggered_at == created_at
    assert len(deliveries(engine)) == 1
    last_seen = clock.now

    # Someone resolves it while errors continue.
    with session_scope(engine) as s:
        s.execute(
            sa.update(m.AlertIncident).values(status="resolved", resolved_at=clock.advance(1))
        )

    # Breach inside the cooldown (15 min since trigger) -> suppressed.
    clock.advance(1)
    add_errors(lake_url, clock.now, 6)
    assert run(engine, lake_url, clock)["auth"] == ("suppress", "cooldown")

    # Cooldown over, but errors were last seen < quiet (20 min) ago -> quiet period.
    clock.now = last_seen + timedelta(minutes=19)
    add_errors(lake_url, clock.now, 6)
    assert run(engine, lake_url, clock)["auth"] == ("suppress", "quiet_period")

    # Quiet period over and errors still breach -> reopen (defect D1 fixed).
    clock.now = last_seen + timedelta(minutes=20)
    add_errors(lake_url, clock.now, 6)
    assert run(engine, lake_url, clock)["auth"] == ("reopen", "reopened")
    [inc] = incidents(engine)
    assert inc.status == "open" and inc.resolved_at is None
    assert inc.triggered_at == clock.now and inc.first_triggered_at == created_at
    assert inc.reopen_count == 1
    assert [d.event_type for d in deliveries(engine)] == ["error_alert", "error_alert_reopened"]
    reopened_at = clock.now

    # Errors stop: no auto-resolve before 30 min without breach, then resolved + notified.
    clock.now = reopened_at + timedelta(minutes=29)
    assert run(engine, lake_url, clock)["auth"] == ("none", "below_threshold")
    clock.now = reopened_at + timedelta(minutes=30)
    assert run(engine, lake_url, clock)["auth"] == ("auto_resolve", "auto_resolved")
    [inc] = incidents(engine)
    assert inc.status == "resolved" and inc.resolved_by == "evaluator"
    resolved = [d for d in deliveries(engine) if d.event_type == "error_alert_resolved"]
    assert len(resolved) == 1 and resolved[0].payload["status"] == "resolved"

    # The timeline keeps every transition; every rule has a decision per run.
    kinds = [e.kind for e in events(engine)]
    assert kinds == ["created", "seen", "reopened", "resolved"]
    with Session(engine) as s:
        reasons = [
            d.reason for d in s.exec(select(m.Decision).where(m.Decision.rule_id == rule.id)).all()
        ]
        runs = s.exec(select(m.EvaluationRun)).all()
    assert sorted(reasons) == sorted(
        [
            "below_threshold",
            "created",
            "updated",
            "cooldown",
            "quiet_period",
            "reopened",
            "below_threshold",
            "auto_resolved",
        ]
    )
    assert len(runs) == 8 and all(r.status == "ok" and r.rules_evaluated == 2 for r in runs)
    assert [d.channel_id for d in deliveries(engine)] == [on.id] * 3  # disabled channel: nothing


def test_silence_blocks_new_incidents(engine: Engine, lake_url: str, clock: Clock) -> None:
    rule = add_rule(engine, name="billing", service="billing")
    add_channel(engine, "http://127.0.0.1:9/hook")
    with session_scope(engine) as s:
        s.add(
            m.Silence(
                service="billing",
                starts_at=clock.now - timedelta(minutes=5),
                ends_at=clock.now + timedelta(minutes=30),
            )
        )
    add_errors(lake_url, clock.now, 10, service="billing")
    assert run(engine, lake_url, clock) == {"billing": ("suppress", "silenced")}
    assert incidents(engine) == [] and deliveries(engine) == []
    # A silence for another rule id does not apply.
    with session_scope(engine) as s:
        s.execute(sa.update(m.Silence).values(service=None, rule_id=add_rule(engine, name="x").id))
    assert run(engine, lake_url, clock)["billing"] == ("create", "created")
    assert incidents(engine)[0].rule_id == rule.id


def test_fatal_counts_and_message_filter(engine: Engine, lake_url: str, clock: Clock) -> None:
    add_rule(engine, name="fatal", service="pay")
    add_rule(engine, name="timeouts", service="pay", message_contains="timeout", threshold=3)
    add_rule(engine, name="warn-only", service="pay", levels=["warn"], threshold=1)
    add_errors(lake_url, clock.now, 5, service="pay", level="fatal", message="db down")
    outcome = run(engine, lake_url, clock)
    assert outcome == {
        "fatal": ("create", "created"),  # defect D4: fatal storms alert
        "timeouts": ("none", "below_threshold"),
        "warn-only": ("none", "below_threshold"),
    }


def test_dry_run_writes_no_incident(engine: Engine, lake_url: str, clock: Clock) -> None:
    add_rule(engine, name="auth")
    add_channel(engine, "http://127.0.0.1:9/hook")
    add_errors(lake_url, clock.now, 8)
    result = evaluate(
        engine=engine, lake_url=lake_url, now=clock.now, dry_run=True, dashboard_url=DASH
    )
    assert [(o.action, o.count) for o in result.outcomes] == [("create", 8)]
    assert result.rows()[0]["reason"] == "created"
    assert incidents(engine) == [] and deliveries(engine) == []
    with Session(engine) as s:
        [r] = s.exec(select(m.EvaluationRun)).all()
    assert r.dry_run and r.status == "ok"


def test_failing_evaluation_marks_the_run(engine: Engine, tmp_path: object, clock: Clock) -> None:
    add_rule(engine, name="auth")
    bad_lake = "/nonexistent-dir/\0bad"
    try:
        evaluate(engine=engine, lake_url=bad_lake, now=clock.now, dashboard_url=DASH)
    except Exception:
        pass
    else:  # pragma: no cover
        raise AssertionError("expected the bad lake to fail")
    with Session(engine) as s:
        [r] = s.exec(select(m.EvaluationRun)).all()
    assert r.status == "error" and r.error


def test_rule_deleted_mid_tick_is_skipped(engine: Engine, lake_url: str, clock: Clock) -> None:
    from workbench.alerting import evaluate as ev

    rule = add_rule(engine, name="auth")
    add_errors(lake_url, clock.now, 8)
    real = ev.kind_counts

    def counts_then_delete(*args: object, **kw: object) -> dict[str, object]:
        out = real(*args, **kw)  # type: ignore[arg-type]
        with session_scope(engine) as s:  # the rule disappears between read and write
            s.execute(sa.delete(m.AlertRule).where(m.AlertRule.id == rule.id))  # type: ignore[arg-type]
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ev, "kind_counts", counts_then_delete)
        result = evaluate(engine=engine, lake_url=lake_url, now=clock.now, dashboard_url=DASH)
    assert [(o.action, o.reason) for o in result.outcomes] == [("none", "disabled")]
    assert incidents(engine) == [] and deliveries(engine) == []


def test_payload_links_the_investigation_report_once_it_exists(
    engine: Engine, lake_url: str, clock: Clock
) -> None:
    """``reportUrl`` is null on the first page and set in later ones once a report exists."""
    add_rule(engine, name="auth", auto_resolve_minutes=5)
    add_channel(engine, "http://127.0.0.1:9/hook")
    written: set[str] = set()

    def report_url(incident_id: object) -> str | None:
        return f"http://api/{incident_id}/report" if str(incident_id) in written else None

    add_errors(lake_url, clock.now, 6)
    assert run(engine, lake_url, clock, report_url=report_url)["auth"] == ("create", "created")
    [inc] = incidents(engine)
    written.add(str(inc.id))  # `workbench investigate` wrote the report meanwhile
    clock.now += timedelta(hours=2)  # long after the window: auto-resolved, notified
    assert run(engine, lake_url, clock, report_url=report_url)["auth"][0] == "auto_resolve"
    first, resolved = sorted(deliveries(engine), key=lambda d: d.created_at)
    assert first.payload["reportUrl"] is None
    assert resolved.payload["reportUrl"] == f"http://api/{inc.id}/report"


def test_a_run_left_running_by_a_killed_process_is_closed_later(
    engine: Engine, lake_url: str, clock: Clock
) -> None:
    """A tick whose process died (kill -9) stays ``running``; a later tick closes it as an error."""
    killed = m.EvaluationRun(now=clock.now, started_at=workbench_clock.now() - timedelta(minutes=11))
    recent = m.EvaluationRun(now=clock.now, started_at=workbench_clock.now() - timedelta(seconds=5))
    with session_scope(engine) as s:
        s.add_all([killed, recent])
    run(engine, lake_url, clock)
    with Session(engine) as s:
        closed = s.get(m.EvaluationRun, killed.id)
        still = s.get(m.EvaluationRun, recent.id)
        assert closed is not None and still is not None
        assert closed.status == "error" and "abandoned" in (closed.error or "")
        assert closed.finished_at is not None
        assert still.status == "running"


def test_the_run_record_takes_its_wall_times_from_the_clock_seam(
    engine: Engine, lake_url: str, clock: Clock
) -> None:
    """``started_at``/``finished_at`` come from ``workbench.clock`` (frozen here), not the OS."""
    wall = clock.now + timedelta(seconds=7)
    with workbench_clock.frozen(wall):
        run(engine, lake_url, clock)
    with Session(engine) as s:
        [record] = s.exec(select(m.EvaluationRun)).all()
    assert record.started_at.replace(tzinfo=None) == wall.replace(tzinfo=None)
    assert record.finished_at is not None
    assert record.finished_at.replace(tzinfo=None) == wall.replace(tzinfo=None)
