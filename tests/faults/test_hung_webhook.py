"""Fault: a webhook receiver that accepts the connection and never answers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from tests.alerting.conftest import Clock, add_channel, add_errors, add_rule, deliveries
from workbench.alerting.evaluate import evaluate
from workbench.alerting.notify import deliver_due


class HungReceiver:
    """A loopback TCP server that, while ``hang`` is set, accepts and never answers.

    With ``hang`` cleared it answers each request ``200 ok`` and counts it in ``served``.
    """

    def __init__(self) -> None:
        self.hang = True
        self.served = 0
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self._srv = socket.socket()
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(16)
        self._srv.settimeout(0.2)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._srv.getsockname()[1]}/hook"

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._srv.accept()
            except OSError:
                continue
            if self.hang:
                self.held.append(conn)
                continue
            conn.settimeout(2)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            while len(body) < length:
                body += conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            conn.close()
            self.served += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for c in self.held:
            c.close()
        self._srv.close()


@pytest.fixture
def hung() -> Iterator[HungReceiver]:
    """A receiver that hangs until told otherwise; closed after the test."""
    server = HungReceiver()
    try:
        yield server
    finally:
        server.close()


def test_hung_receiver_times_out_and_is_retried(
    sqlite_engine: Engine, lake_url: str, clock: Clock, hung: HungReceiver
) -> None:
    """Injects: the channel's URL points at a server that never answers.

    Proves: ``deliver_due`` returns within its timeout (+ slack), records the
    attempt as retrying with a timeout error; once the receiver answers again
    , the next due round sends it
    exactly once.
    """
    engine = sqlite_engine
    add_rule(engine)
    add_channel(engine, hung.url)
    add_errors(lake_url, clock.now, 7)
    evaluate(engine=engine, lake_url=lake_url, now=clock.now, dashboard_url="http://127.0.0.1:8866")
    started = time.monotonic()
    report = deliver_due(engine=engine, now=clock.now, timeout=1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 5, elapsed
    assert (report.claimed, report.sent, report.retrying) == (1, 0, 1)
    [dl] = deliveries(engine)
    assert dl.last_error and "Timeout" in dl.last_error

    hung.hang = False  # the receiver comes back
    report = deliver_due(engine=engine, now=clock.advance(5), timeout=1.0)
    assert report.sent == 1 and hung.served == 1
    report = deliver_due(engine=engine, now=clock.advance(60), timeout=1.0)
    assert report.claimed == 0 and hung.served == 1
