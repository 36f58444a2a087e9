"""Re-notify (issue 15 item 4) end to end: ``workbench evaluate --now`` at successive
minutes on a real lake, a real catalog and a real loopback webhook receiver.

``repeatMinutes=2`` pages again every 2 minutes while the incident is open and
unacknowledged, never inside a silence, and stops on acknowledge; each repeat is its
own outbox delivery, retried under the same delivery id (at-least-once).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from tests.alerting.conftest import T0, Receiver, add_channel, add_errors, add_rule, deliveries
from tests.alerting.flap_e2e import Env, env, evaluate_at, reasons, timeline
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
