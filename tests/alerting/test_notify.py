"""The outbox sender against REAL HTTP receivers on 127.0.0.1: payload, signature, retries."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from tests.alerting.conftest import (
    T0,
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
from workbench.catalog.payload import (
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
    # Issue 15 adds the evidence to firing pages; everything else is unchanged.
    evidence = body.pop("evidence")
    assert set(body) == set(ORIGINAL_KEYS) | set(EXTRA_KEYS)
    [inc] = incidents(engine)
    assert evidence["topPatterns"] == [{"pattern": "boom", "count": 7, "example": "boom"}]
    assert evidence["dashboardUrl"] == f"{DASH}/voila/render/incidents.ipynb?incident={inc.id}"
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
        "reportUrl": None,
    }
    headers = {k.lower(): v for k, v in req["headers"].items()}
    ts = headers[TIMESTAMP_HEADER.lower()]
    assert ts != str(int(clock.now.timestamp()))  # the send time, not the tick's (T0 is past)
    assert headers[SIGNATURE_HEADER.lower()] == "sha256=" + sign("top-secret", ts, req["body"])
    assert verify("top-secret", ts, req["body"], headers[SIGNATURE_HEADER.lower()])
    assert not verify("wrong", ts, req["body"], headers[SIGNATURE_HEADER.lower()])

    [dl] = deliveries(engine)
    assert (dl.status, dl.response_code, dl.attempts, dl.sent_at) == ("sent", 200, 1, clock.now)
    assert [e.kind for e in events(engine)] == ["created", "notified"]
    # Nothing left to send.
    assert deliver_due(engine=engine, now=clock.advance(5), timeout=2).claimed == 0


# A receiver's own replay guard: refuse timestamps further than this from its clock.
RECEIVER_MAX_AGE_S = 300


def _receiver_accepts(req: dict[str, Any], secret: str) -> bool:
    """Return True when a careful receiver would take ``req``: a valid signature, a fresh timestamp."""
    headers = {k.lower(): v for k, v in req["headers"].items()}
    ts = headers[TIMESTAMP_HEADER.lower()]
    fresh = abs(req["arrived"] - int(ts)) <= RECEIVER_MAX_AGE_S
    return fresh and verify(secret, ts, req["body"], headers[SIGNATURE_HEADER.lower()])


def test_rerun_of_an_old_minute_is_signed_at_send_time(
    sqlite_engine: Engine, lake_url: str, receiver: Receiver
) -> None:
    """Proves: re-running a tick for a minute two hours ago (catch-up after an outage) signs
    with the time of sending, so the receiver's age check accepts it."""
    engine = sqlite_engine
    old = Clock(now=datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2))
    add_rule(engine)
    add_channel(engine, receiver.url, secret="k")
    breach(engine, lake_url, old)
    before = int(time.time())
    report = deliver_due(engine=engine, now=old.now, timeout=2)
    after = int(time.time())
    assert report.sent == 1
    [req] = receiver.requests
    ts = int({k.lower(): v for k, v in req["headers"].items()}[TIMESTAMP_HEADER.lower()])
    assert before <= ts <= after
    assert _receiver_accepts({**req, "arrived": after}, "k")
    # The tick's time still rules the outbox: the row is sent "at" the tick.
    assert deliveries(engine)[0].sent_at == old.now


def test_send_time_comes_from_the_clock_seam(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    """Proves: the signing time is the notifier's ``clock`` (the seam), for deliveries and tests."""
    sent = T0 + timedelta(days=3, seconds=17)
    add_rule(sqlite_engine)
    ch = add_channel(sqlite_engine, receiver.url, secret="k")
    breach(sqlite_engine, lake_url, clock)
    deliver_due(engine=sqlite_engine, now=clock.now, timeout=2, clock=lambda: sent)
    with Session(sqlite_engine) as s:
        send_test(session=s, channel=ch, now=clock.now, dashboard_url=DASH, clock=lambda: sent)
    assert len(receiver.requests) == 2
    for req in receiver.requests:
        assert _receiver_accepts({**req, "arrived": int(sent.timestamp())}, "k")


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


# ---------------------------------------------------------------- webhook safety
# The receivers here are on 127.0.0.1, so sends that must arrive use allow_private=True
# (what WORKBENCH_ALLOW_PRIVATE_WEBHOOKS=true gives local development and the tests);
# the refusals use allow_private=False, as production should.


def _loopback_name() -> str | None:
    """Return a host name (not "localhost") that resolves to a loopback address here, if any."""
    import ipaddress
    import socket

    name = socket.gethostname()
    try:
        infos = socket.getaddrinfo(name, 80, 0, socket.SOCK_STREAM)
    except OSError:
        return None
    addresses = {ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos}
    return name if addresses and all(a.is_loopback for a in addresses) else None


@pytest.mark.parametrize(
    "target",
    [
        "http://10.0.0.1/hook",
        "{receiver}",  # the live receiver on 127.0.0.1: refused before any connection
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:{port}/hook",
        "http://{loopback_name}:{port}/hook",  # a real DNS answer (the machine's name) -> 127.0.0.1
    ],
)
def test_private_target_refused_at_send_and_not_retried(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver, target: str
) -> None:
    """Proves: with private targets disallowed, the sender re-checks the target before
    sending (a channel row written directly, bypassing creation checks, as if DNS changed),
    sends nothing, and fails the delivery at once with ``refused: <reason>``."""
    assert receiver.server is not None
    port = receiver.server.server_address[1]
    if "{loopback_name}" in target:
        name = _loopback_name()
        if name is None:
            pytest.skip("no host name resolving to loopback on this machine")
        target = target.format(loopback_name=name, port=port)
    target = target.format(receiver=receiver.url, port=port)
    engine = sqlite_engine
    add_rule(engine)
    add_channel(engine, target)
    breach(engine, lake_url, clock)

    report = deliver_due(engine=engine, now=clock.now, timeout=2, allow_private=False)
    assert (report.sent, report.retrying, report.failed) == (0, 0, 1)
    [dl] = deliveries(engine)
    assert dl.status == "failed" and dl.attempts == 1 and dl.response_code is None
    assert dl.last_error and dl.last_error.startswith("refused: ")
    assert "not allowed" in dl.last_error
    assert receiver.requests == []
    assert events(engine)[-1].kind == "notify_failed"
    assert deliver_due(engine=engine, now=clock.advance(60), allow_private=False).claimed == 0


def test_private_target_refused_by_send_test(sqlite_engine: Engine, clock: Clock, receiver: Receiver) -> None:
    """Proves: "send test" applies the same check (a failed row, nothing sent)."""
    ch = add_channel(sqlite_engine, receiver.url)
    with Session(sqlite_engine) as s:
        dl = send_test(session=s, channel=ch, now=clock.now, dashboard_url=DASH, allow_private=False)
    assert dl.status == "failed" and dl.last_error and dl.last_error.startswith("refused: ")
    assert receiver.requests == []


class _ScriptedReceiver:
    """A loopback HTTP receiver whose answer is scripted per test (status, headers, body chunks)."""

    def __init__(self, status: int, headers: dict[str, str], chunks: Iterator[bytes]) -> None:
        self.paths: list[str] = []
        self.bytes_sent = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner.paths.append(self.path)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    for chunk in chunks:
                        self.wfile.write(chunk)
                        owner.bytes_sent += len(chunk)
                except OSError:
                    pass  # the sender stopped reading and closed the connection

            do_GET = do_POST  # noqa: N815 - a followed redirect might come as GET

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("location", ["http://169.254.169.254/latest/meta-data/", "{self}"])
@pytest.mark.parametrize("follow_client", [False, True])
def test_redirect_is_not_followed(
    sqlite_engine: Engine, lake_url: str, clock: Clock, location: str, follow_client: bool
) -> None:
    """Proves: a receiver answering 302 (to cloud metadata, or to itself so a follow
    would be seen) gets one request only, even through a client that follows
    redirects; the attempt is a failure that records 302 and names the Location."""
    r = _ScriptedReceiver(302, {"Content-Length": "0"}, iter(()))
    try:
        where = location.format(self=r.url("/latest/meta-data/"))
        r2 = _ScriptedReceiver(302, {"Location": where, "Content-Length": "0"}, iter(()))
        try:
            engine = sqlite_engine
            add_rule(engine)
            add_channel(engine, r2.url())
            breach(engine, lake_url, clock)
            client = httpx.Client(follow_redirects=True) if follow_client else None
            report = deliver_due(
                engine=engine, now=clock.now, timeout=2, allow_private=True, client=client
            )
            if client is not None:
                client.close()
            assert (report.sent, report.retrying) == (0, 1)
            [dl] = deliveries(engine)
            assert dl.response_code == 302
            assert dl.last_error and "not followed" in dl.last_error and where in dl.last_error
            assert r2.paths == ["/hook"]
            assert r.paths == []  # the redirect target (when it is r) never saw a request
        finally:
            r2.close()
    finally:
        r.close()


@pytest.mark.parametrize("status", [200, 500])
def test_huge_response_is_read_only_up_to_the_bound(
    sqlite_engine: Engine, lake_url: str, clock: Clock, status: int
) -> None:
    """Proves: an endless (256 MiB) answer is read up to the bound and the connection
    dropped: the send ends fast, the status code is still recorded, the stored error
    holds a bounded snippet, and the receiver could not push the whole body."""
    total = 256 * 1024 * 1024
    chunk = b"A" * 65536

    def body() -> Iterator[bytes]:
        for _ in range(total // len(chunk)):
            yield chunk

    r = _ScriptedReceiver(status, {"Content-Length": str(total)}, body())
    try:
        engine = sqlite_engine
        add_rule(engine)
        add_channel(engine, r.url())
        breach(engine, lake_url, clock)
        started = time.monotonic()
        with httpx.Client(timeout=5) as client:
            attempt = notify.post(
                client, url=r.url(), payload={"type": "test"}, secret=None, now=clock.now,
                delivery_id=uuid.uuid4(), timeout=5, allow_private=True, max_response_bytes=1024,
            )
        assert attempt.response_code == status and attempt.ok is (status == 200)
        if status != 200:
            assert attempt.error == "HTTP 500: " + "A" * 300  # a snippet of the bounded read
        report = deliver_due(engine=engine, now=clock.now, timeout=5, allow_private=True)
        [dl] = deliveries(engine)
        assert dl.response_code == status
        assert dl.status == ("sent" if status == 200 else "pending")
        assert report.claimed == 1
        assert time.monotonic() - started < 20
        time.sleep(0.2)
        assert r.bytes_sent < total // 4  # stopped early: the rest was never pulled
    finally:
        r.close()


def test_trickling_response_is_read_only_for_about_the_timeout(clock: Clock) -> None:
    """Proves: a receiver that sends its answer a byte every 0.1 s (each read within the
    client's per-read timeout) cannot hold the sender: reading stops after about
    ``timeout`` seconds and the status code is recorded."""

    def trickle() -> Iterator[bytes]:
        for _ in range(600):  # a minute of drip-feeding if nobody stopped reading
            time.sleep(0.1)
            yield b"z"

    r = _ScriptedReceiver(500, {"Content-Length": "600"}, trickle())
    try:
        started = time.monotonic()
        with httpx.Client() as client:
            attempt = notify.post(
                client, url=r.url(), payload={"type": "test"}, secret=None, now=clock.now,
                delivery_id=uuid.uuid4(), timeout=1.0, allow_private=True,
            )
        assert time.monotonic() - started < 5
        assert attempt.response_code == 500 and attempt.error and attempt.error.startswith("HTTP 500: z")
    finally:
        r.close()
