"""The outbox sender against REAL HTTP receivers on 127.0.0.1: payload, signature, retries."""

from __future__ import annotations

import threading
from datetime import timedelta

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session

from tests.alerting.conftest import (
    Clock,
    Receiver,
    add_channel,
    add_errors,
    add_rule,
    deliveries,
    events,
    incidents,
    restart,
    stop,
)
from workbench.alerting import notify
from workbench.alerting.evaluate import evaluate
from workbench.alerting.notify import LEASE, MAX_ATTEMPTS, deliver_due, send_test
from workbench.alerting.payload import (
    EXTRA_KEYS,
    ORIGINAL_KEYS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify,
)

DASH = "http://dash.example"


def breach(engine: Engine, lake_url: str, clock: Clock) -> None:
    add_errors(lake_url, clock.now, 7)
    evaluate(engine=engine, lake_url=lake_url, now=clock.now, dashboard_url=DASH)


def test_sends_original_keys_signed(
    engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    rule = add_rule(engine, severity="critical")
    add_channel(engine, receiver.url, secret="top-secret")
    breach(engine, lake_url, clock)

    report = deliver_due(engine=engine, now=clock.now, timeout=2)
    assert (report.claimed, report.sent, report.retrying, report.failed) == (1, 1, 0, 0)
    [req] = receiver.requests
    [body] = receiver.bodies()
    assert set(body) == set(ORIGINAL_KEYS) | set(EXTRA_KEYS)
    [inc] = incidents(engine)
    assert body == {
        "type": "error_alert",
        "service": "auth",
        "errorCount": 7,
        "windowMinutes": 10,
        "triggeredAt": "2026-11-20T12:00:00.000Z",
        "incidentId": str(inc.id),
        "ruleId": str(rule.id),
        "threshold": 5,
        "status": "open",
        "severity": "critical",
        "url": f"{DASH}/voila/render/incidents.ipynb?incident={inc.id}",
    }
    headers = {k.lower(): v for k, v in req["headers"].items()}
    ts = headers[TIMESTAMP_HEADER.lower()]
    assert ts == str(int(clock.now.timestamp()))
    assert headers[SIGNATURE_HEADER.lower()] == "sha256=" + sign("top-secret", ts, req["body"])
    assert verify("top-secret", ts, req["body"], headers[SIGNATURE_HEADER.lower()])
    assert not verify("wrong", ts, req["body"], headers[SIGNATURE_HEADER.lower()])

    [dl] = deliveries(engine)
    assert (dl.status, dl.response_code, dl.attempts, dl.sent_at) == ("sent", 200, 1, clock.now)
    assert [e.kind for e in events(engine)] == ["created", "notified"]
    # Nothing left to send.
    assert deliver_due(engine=engine, now=clock.advance(5), timeout=2).claimed == 0


def test_unsigned_without_secret(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    add_rule(sqlite_engine)
    add_channel(sqlite_engine, receiver.url)
    breach(sqlite_engine, lake_url, clock)
    deliver_due(engine=sqlite_engine, now=clock.now, timeout=2)
    headers = {k.lower() for k in receiver.requests[0]["headers"]}
    assert SIGNATURE_HEADER.lower() not in headers and TIMESTAMP_HEADER.lower() in headers


def test_retries_on_500_then_delivers(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    engine = sqlite_engine
    add_rule(engine)
    add_channel(engine, receiver.url)
    breach(engine, lake_url, clock)
    receiver.status = 500
    report = deliver_due(engine=engine, now=clock.now, timeout=2)
    assert (report.sent, report.retrying) == (0, 1)
    [dl] = deliveries(engine)
    assert (dl.status, dl.attempts, dl.response_code) == ("pending", 1, 500)
    assert dl.last_error and dl.last_error.startswith("HTTP 500")
    assert dl.next_attempt_at == clock.now + timedelta(seconds=10)
    # Not due yet: nothing is sent.
    assert deliver_due(engine=engine, now=clock.now + timedelta(seconds=9), timeout=2).claimed == 0
    receiver.status = 200
    report = deliver_due(engine=engine, now=clock.now + timedelta(seconds=10), timeout=2)
    assert report.sent == 1
    [dl] = deliveries(engine)
    assert (dl.status, dl.attempts, dl.response_code, dl.last_error) == ("sent", 2, 200, None)
    assert len(receiver.requests) == 2


def test_receiver_down_then_back(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    engine = sqlite_engine
    add_rule(engine)
    add_channel(engine, receiver.url)
    breach(engine, lake_url, clock)
    stop(receiver)
    report = deliver_due(engine=engine, now=clock.now, timeout=2)
    assert report.retrying == 1
    [dl] = deliveries(engine)
    assert dl.response_code is None and dl.last_error and "ConnectError" in dl.last_error
    restart(receiver)
    report = deliver_due(engine=engine, now=clock.advance(1), timeout=2)
    assert report.sent == 1 and len(receiver.requests) == 1


def test_gives_up_after_the_horizon(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    engine = sqlite_engine
    add_rule(engine)
    add_channel(engine, receiver.url)
    breach(engine, lake_url, clock)
    receiver.status = 503
    now = clock.now
    for _ in range(MAX_ATTEMPTS + 3):
        deliver_due(engine=engine, now=now, timeout=2)
        [dl] = deliveries(engine)
        if dl.status != "pending":
            break
        now = dl.next_attempt_at
    assert (dl.status, dl.attempts) == ("failed", MAX_ATTEMPTS)
    assert len(receiver.requests) == MAX_ATTEMPTS
    assert events(engine)[-1].kind == "notify_failed"
    # Backoff grows: the last retry waited an hour, the whole run spans hours, not minutes.
    assert now - clock.now > timedelta(hours=3)


def test_crash_after_claim_is_sent_after_the_lease(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    engine = sqlite_engine
    add_rule(engine)
    add_channel(engine, receiver.url)
    breach(engine, lake_url, clock)
    assert len(notify._claim(engine, clock.now, 10)) == 1  # then the sender "dies"
    assert deliver_due(engine=engine, now=clock.now, timeout=2).claimed == 0
    report = deliver_due(engine=engine, now=clock.now + LEASE, timeout=2)
    assert report.sent == 1 and len(receiver.requests) == 1


def test_two_senders_send_once(
    engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    add_rule(engine)
    for _ in range(3):
        add_channel(engine, receiver.url)
    breach(engine, lake_url, clock)
    barrier = threading.Barrier(2)
    reports = []

    def sender() -> None:
        barrier.wait()
        reports.append(deliver_due(engine=engine, now=clock.now, timeout=2))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(r.sent for r in reports) == 3
    assert len(receiver.requests) == 3
    assert len({r["headers"]["X-Workbench-Delivery"] for r in receiver.requests}) == 3


def test_disabled_channel_after_queueing_is_not_sent(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    import sqlalchemy as sa

    from workbench.catalog import models as m
    from workbench.catalog.db import session_scope

    engine = sqlite_engine
    add_rule(engine)
    add_channel(engine, receiver.url)
    breach(engine, lake_url, clock)
    with session_scope(engine) as s:
        s.execute(sa.update(m.NotificationChannel).values(enabled=False))
    assert deliver_due(engine=engine, now=clock.now, timeout=2).failed == 1
    assert receiver.requests == []


def test_send_test(sqlite_engine: Engine, clock: Clock, receiver: Receiver) -> None:
    ch = add_channel(sqlite_engine, receiver.url, secret="k")
    with Session(sqlite_engine) as s, httpx.Client() as client:
        dl = send_test(session=s, channel=ch, now=clock.now, dashboard_url=DASH, client=client)
    assert (dl.status, dl.response_code, dl.event_type) == ("sent", 200, "test")
    [body] = receiver.bodies()
    assert body["type"] == "test" and body["incidentId"] is None
    assert set(body) == set(ORIGINAL_KEYS) | set(EXTRA_KEYS)
    stop(receiver)
    with Session(sqlite_engine) as s:
        dl = send_test(session=s, channel=ch, now=clock.now, dashboard_url=DASH)
    assert dl.status == "failed" and dl.last_error
    assert len(deliveries(sqlite_engine)) == 2


def test_deleted_channel_after_queueing_is_not_sent(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    import sqlalchemy as sa

    from workbench.catalog import models as m
    from workbench.catalog.db import session_scope

    engine = sqlite_engine
    add_rule(engine)
    add_channel(engine, receiver.url)
    breach(engine, lake_url, clock)
    with session_scope(engine) as s:
        s.execute(sa.delete(m.NotificationChannel))
    assert deliver_due(engine=engine, now=clock.now, timeout=2).failed == 1
    [dl] = deliveries(engine)
    assert (dl.status, dl.last_error) == ("failed", "channel deleted")
    assert receiver.requests == []
