"""WorkbenchHandler: record mapping, batching, retries, bounded buffer, exit flush; then a real server."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import polars as pl
import pytest

from tests.live_server import LiveServer
from tests.waiting import wait_until
from workbench.lake import reader
from workbench_client import WorkbenchHandler, level_name


class FakeServer:
    """An httpx transport standing in for the ingest API: up (202) or down (connection refused)."""

    def __init__(self) -> None:
        self.up = True
        self.status = 202
        self.headers: dict[str, str] = {}
        self.bodies: list[list[dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.posting = threading.Event()  # set by the first request
        self.gate: threading.Event | None = None  # when given, requests wait for it

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.posting.set()
        if self.gate is not None:
            self.gate.wait(30)
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        events = [orjson.loads(line) for line in request.content.split(b"\n") if line]
        if self.status != 202:
            return httpx.Response(self.status, headers=self.headers, json={"error": "no"})
        with self.lock:
            self.bodies.append(events)
        rejected = [
            {"index": i, "errors": {"message": ["bad"]}}
            for i, e in enumerate(events)
            if e["message"] == "invalid"
        ]
        return httpx.Response(202, json={"status": "queued", "rejected": rejected})

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for body in self.bodies for e in body]


@pytest.fixture
def fake() -> FakeServer:
    return FakeServer()


@pytest.fixture
def make_logger(
    fake: FakeServer,
) -> Iterator[Callable[..., tuple[logging.Logger, WorkbenchHandler]]]:
    """A factory of (logger, handler) pairs on the fake server; handlers are closed afterwards."""
    handlers: list[WorkbenchHandler] = []

    def make(**kwargs: Any) -> tuple[logging.Logger, WorkbenchHandler]:
        options: dict[str, Any] = {"flush_interval": 0.05, "exit_timeout": 2.0}
        options.update(kwargs)
        handler = WorkbenchHandler(
            service="billing", transport=httpx.MockTransport(fake), **options
        )
        handlers.append(handler)
        logger = logging.getLogger(f"test-handler-{uuid.uuid4().hex}")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        return logger, handler

    yield make
    for h in handlers:
        h.close()


@pytest.mark.parametrize(
    ("levelno", "level"),
    [
        (logging.DEBUG, "debug"),
        (5, "debug"),
        (logging.INFO, "info"),
        (logging.WARNING, "warn"),
        (logging.ERROR, "error"),
        (logging.CRITICAL, "fatal"),
        (60, "fatal"),
    ],
)
def test_levels(levelno: int, level: str) -> None:
    assert level_name(levelno) == level


def test_record_maps_to_event(make_logger: Any, fake: FakeServer) -> None:
    logger, handler = make_logger()
    try:
        raise KeyError("card")
    except KeyError:
        logger.exception("charge %s failed", "ch_1", extra={"order_id": 42, "obj": object()})
    assert handler.flush(5)
    [event] = fake.events()
    assert event["service"] == "billing"
    assert event["level"] == "error"
    assert event["message"] == "charge ch_1 failed"
    ts = datetime.fromisoformat(event["timestamp"])
    assert ts.tzinfo is not None and abs((datetime.now(UTC) - ts).total_seconds()) < 10
    meta = event["meta"]
    assert meta["order_id"] == 42
    assert meta["obj"].startswith("<object object")
    assert "KeyError: 'card'" in meta["exception"]
    assert meta["function"] == "test_record_maps_to_event" and meta["logger"] == logger.name


def test_batches_are_posted_and_counted(make_logger: Any, fake: FakeServer) -> None:
    logger, handler = make_logger(batch_size=10)
    for i in range(35):
        logger.info("event %d", i)
    logger.info("invalid")  # the fake server rejects this one
    assert handler.flush(5)
    assert [e["message"] for e in fake.events()][:35] == [f"event {i}" for i in range(35)]
    assert max(len(b) for b in fake.bodies) <= 10
    stats = handler.stats()
    assert stats["sent"] == 35 and stats["rejected"] == 1 and stats["dropped"] == 0


def test_server_down_then_up_loses_nothing(make_logger: Any, fake: FakeServer) -> None:
    logger, handler = make_logger(batch_size=5)
    fake.up = False
    for i in range(20):
        logger.warning("w%d", i)
    assert not handler.flush(0.5)  # still down: not flushed, and flush() did not hang
    stats = handler.stats()
    assert stats["failed_attempts"] >= 1 and stats["buffered"] == 20
    assert "ConnectError" in stats["last_error"]
    fake.up = True
    assert handler.flush(10)
    assert [e["message"] for e in fake.events()] == [f"w{i}" for i in range(20)]
    assert handler.stats()["sent"] == 20


def test_full_buffer_drops_oldest_and_reports_it(
    make_logger: Any, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    logger, handler = make_logger(max_buffer=10, batch_size=100)
    fake.up = False
    for i in range(25):
        logger.info("m%d", i)
    stats = handler.stats()
    assert stats["dropped"] == 15 and stats["buffered"] == 10
    fake.up = True
    assert handler.flush(10)
    events = fake.events()
    assert [e["message"] for e in events] == [f"m{i}" for i in range(15, 25)]  # the newest
    assert events[0]["meta"]["workbench_dropped"] == 15
    assert "workbench_dropped" not in events[1]["meta"]
    assert "15 log records dropped" in capsys.readouterr().err


def test_retryable_status_is_retried_and_invalid_is_not(make_logger: Any, fake: FakeServer) -> None:
    logger, handler = make_logger()
    fake.status, fake.headers = 503, {"Retry-After": "0"}
    logger.error("boom")
    assert not handler.flush(0.3)
    assert handler.stats()["last_error"] == "HTTP 503"
    fake.status = 202
    assert handler.flush(5)
    assert handler.stats()["sent"] == 1
    fake.status = 400
    logger.error("refused")
    assert handler.flush(5)  # a 400 is final: not buffered again
    assert handler.stats()["rejected"] == 1


def test_emit_does_not_wait_for_the_network(make_logger: Any, fake: FakeServer) -> None:
    """While a POST hangs, the application's log calls all return: emit does no I/O."""
    logger, handler = make_logger(batch_size=1)
    fake.gate = threading.Event()
    try:
        logger.info("first")  # the sender takes it and hangs in the POST
        assert fake.posting.wait(30)
        application = threading.Thread(target=lambda: [logger.info("m%d", i) for i in range(200)])
        application.start()
        application.join(30)  # a liveness bound: a passing run takes milliseconds
        assert not application.is_alive(), "a log call waited for the hanging POST"
        assert handler.stats()["buffered"] == 200
    finally:
        fake.gate.set()
    assert handler.flush(10)
    assert len(fake.events()) == 201


def test_close_is_bounded_when_the_server_is_down(make_logger: Any, fake: FakeServer) -> None:
    logger, handler = make_logger(exit_timeout=0.5)
    fake.up = False
    logger.error("never delivered")
    started = time.monotonic()
    handler.close()
    assert time.monotonic() - started < 3.0
    logger.error("after close")  # emitting to a closed handler still does not raise


def test_emit_ignores_the_senders_own_logging(make_logger: Any, fake: FakeServer) -> None:
    logger, handler = make_logger()
    # httpx logs each request from the sender thread; with the handler on the
    # root logger that would feed itself forever.
    logging.getLogger("httpx").addHandler(handler)
    try:
        logger.info("one")
        # httpx logs from inside the POST, before the sender finds its buffer empty: were
        # those records shipped, the buffer would never empty and flush() would say False.
        assert handler.flush(5)
        assert [e["message"] for e in fake.events()] == ["one"]
    finally:
        logging.getLogger("httpx").removeHandler(handler)


# -- a real server that goes down and comes back ---------------------------


def _lake_seqs(lake_url: str, run: str) -> list[int]:
    rows = reader.scan(lake_url).filter(pl.col("meta").str.contains(run, literal=True)).collect()
    return [orjson.loads(m)["seq"] for m in rows["meta"]]


@pytest.mark.slow
def test_application_logs_through_server_up_down_up(data_dir: Path) -> None:
    server = LiveServer(data_dir).start()
    handler = WorkbenchHandler(
        server.url, service="shop", batch_size=50, flush_interval=0.1, exit_timeout=20
    )
    logger = logging.getLogger(f"shop-{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    run = uuid.uuid4().hex
    seq = 0

    def log_some(n: int) -> None:
        nonlocal seq
        for _ in range(n):
            logger.error("order %d failed", seq, extra={"run": run, "seq": seq})
            seq += 1
            if seq % 20 == 0:
                time.sleep(0.01)  # an application doing other work between logs

    try:
        log_some(300)
        assert handler.flush(15), handler.stats()
        server.kill()  # SIGKILL: whatever it fsynced is replayed by the next server
        failed_before = handler.stats()["failed_attempts"]
        log_some(300)
        wait_until(
            lambda: handler.stats()["failed_attempts"] > failed_before,
            what="the sender failed against the dead port",
        )
        assert handler.stats()["buffered"] > 0
        server.start()  # same port, same data directory
        log_some(300)
        assert handler.flush(20), handler.stats()
    finally:
        handler.close()
        server.stop()  # graceful: flushes the WAL into the lake

    stats = handler.stats()
    assert stats["dropped"] == 0 and stats["rejected"] == 0
    assert stats["sent"] == 900
    seqs = _lake_seqs(str(data_dir / "lake"), run)
    # Nothing reported as sent is missing (a retried batch may appear twice: at least once).
    assert set(seqs) == set(range(900))
