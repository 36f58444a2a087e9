"""Re-notify (issue 15 item 4) end to end: ``workbench evaluate --now`` at successive
minutes on a real lake, a real catalog and a real loopback webhook receiver.

``repeatMinutes=2`` pages again every 2 minutes while the incident is open and
unacknowledged, never inside a silence, and stops on acknowledge; each repeat is its
own outbox delivery, retried under the same delivery id (at-least-once).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests.alerting.conftest import T0, Receiver, add_channel, add_errors, add_rule, deliveries
from tests.alerting.flap_e2e import Env, env, evaluate_at, reasons, timeline
from workbench.alerting.evaluate import evaluate
from workbench.catalog import models as m
from workbench.catalog.incidents import acknowledge_incident

__all__ = ["env"]

pytestmark = pytest.mark.slow

MIN = timedelta(minutes=1)
HEADER = "X-Workbench-Delivery"


def test_repeat_every_two_minutes_until_acknowledged_none_inside_a_silence(
    env: Env, receiver: Receiver
) -> None:
    add_rule(env.engine, window_minutes=1, cooldown_minutes=0, repeat_minutes=2)
    add_channel(env.engine, receiver.url)
    for i in range(13):
        add_errors(env.lake_url, T0 + i * MIN, 6)
    with Session(env.engine) as s:  # silent from minute 5 to 8 (exclusive)
        s.add(m.Silence(starts_at=T0 + 5 * MIN, ends_at=T0 + 8 * MIN, reason="deploy"))
        s.commit()

    for i in range(5):  # created at 0; repeats at 2 and 4
        evaluate_at(T0 + i * MIN)
    # The receiver fails the next page: it is retried under the same delivery id.
    receiver.status = 500
    for i in range(5, 8):  # silenced: due at 6, but no repeat
        evaluate_at(T0 + i * MIN)
    evaluate_at(T0 + 8 * MIN)  # silence over: repeat at once (it was due)
    receiver.status = 200
    evaluate_at(T0 + 9 * MIN)  # the failed repeat is retried (backoff over)
    assert [b["type"] for b in receiver.bodies()] == [
        "error_alert",
        "error_alert_repeat",
        "error_alert_repeat",
        "error_alert_repeat",
        "error_alert_repeat",
    ]
    ids = [r["headers"][HEADER] for r in receiver.requests]
    assert ids[3] == ids[4] and len(set(ids)) == 4

    with Session(env.engine) as s:
        incident = s.get(m.AlertIncident, (deliveries(env.engine)[0].incident_id))
        assert incident is not None
        incident_id = incident.id
        acknowledge_incident(session=s, incident_id=incident_id, actor="oncall", now=T0 + 10 * MIN)
        s.commit()
    for i in range(10, 13):  # acknowledged: no more repeats
        evaluate_at(T0 + i * MIN)
    assert len(receiver.requests) == 5

    assert reasons(env.engine) == (
        ["created", "updated", "repeated", "updated", "repeated"]
        + ["updated"] * 3
        + ["repeated", "updated"]
        + ["updated"] * 3
    )
    repeats = [(at, data) for at, kind, data in timeline(env.engine) if kind == "repeated"]
    assert [at for at, _ in repeats] == [T0 + 2 * MIN, T0 + 4 * MIN, T0 + 8 * MIN]
    assert repeats[0][1] == {"count": 6, "repeatMinutes": 2}
    # Each repeat carries the evidence of a page, and its own incident's trigger time.
    body = receiver.bodies()[1]
    assert body["evidence"]["sample"] and body["status"] == "open"
    assert body["triggeredAt"] == receiver.bodies()[0]["triggeredAt"]
    assert body["incidentId"] == str(incident_id)


def test_two_evaluators_at_once_repeat_once(engine: Engine, lake_url: str) -> None:
    """Several schedulers (HA): evaluators racing on the same minute queue each repeat once."""
    rules, channels = 6, 2
    for i in range(rules):
        add_rule(engine, name=f"r{i}", service=f"svc{i}", cooldown_minutes=0, repeat_minutes=2)
        for minute in (0, 2):
            add_errors(lake_url, T0 + minute * MIN, 6, service=f"svc{i}")
    for i in range(channels):
        add_channel(engine, f"http://127.0.0.1:9/{i}")
    evaluate(engine=engine, lake_url=lake_url, now=T0, dashboard_url="http://dash")
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            evaluate(engine=engine, lake_url=lake_url, now=T0 + 2 * MIN, dashboard_url="http://d")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    kinds = [d.event_type for d in deliveries(engine)]
    assert kinds.count("error_alert") == kinds.count("error_alert_repeat") == rules * channels
    with Session(engine) as s:
        notified = {i.last_notified_at for i in s.exec(select(m.AlertIncident)).all()}
    assert notified == {T0 + 2 * MIN}
