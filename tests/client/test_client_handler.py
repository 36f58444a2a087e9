"""workbench_client.WorkbenchHandler over its own HTTP code (urllib) against a loopback receiver."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.waiting import wait_until
from workbench_client import WorkbenchHandler


class Receiver(ThreadingHTTPServer):
    """A tiny ingest API on 127.0.0.1: answers the queued statuses in order, then 202."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handle)
        self.answers: list[tuple[int, dict[str, str]]] = []
        self.requests: list[tuple[str, dict[str, str], list[dict[str, Any]]]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for _, _, body in self.requests if body for e in body]


class _Handle(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            status, headers = self.server.answers.pop(0) if self.server.answers else (202, {})
            events = [json.loads(line) for line in body.split(b"\n") if line]
            self.server.requests.append(
                (self.path, dict(self.headers), events if status == 202 else [])
            )
        payload = json.dumps(
            {"status": "queued", "rejected": []} if status == 202 else {"error": "x"}
        )
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _logger(handler: WorkbenchHandler) -> logging.Logger:
    logger = logging.getLogger(f"test-client-{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger


def test_ships_ndjson_with_the_api_key(receiver: Receiver) -> None:
    handler = WorkbenchHandler(
        receiver.url, service="billing", api_key="k-123", flush_interval=0.05
    )
    try:
        _logger(handler).warning("charge failed %s", 42, extra={"order_id": 42, "when": object()})
        assert handler.flush(10)
    finally:
        handler.close()
    path, headers, events = receiver.requests[0]
    assert path == "/api/logs"
    assert headers["Authorization"] == "Bearer k-123"
    assert headers["Content-Type"] == "application/x-ndjson"
    [event] = events
    assert event["service"] == "billing"
    assert event["level"] == "warn"
    assert event["message"] == "charge failed 42"
    assert event["timestamp"].endswith("+00:00")
    assert event["meta"]["order_id"] == 42
    assert event["meta"]["when"].startswith("<object object")
    assert handler.stats()["sent"] == 1


def test_retries_a_503_after_its_retry_after(receiver: Receiver) -> None:
    receiver.answers = [(503, {"Retry-After": "1"}), (429, {})]
    handler = WorkbenchHandler(receiver.url, service="billing", flush_interval=0.05)
    try:
        _logger(handler).error("once")
        wait_until(lambda: handler.stats()["sent"] == 1, what="the third attempt is accepted")
    finally:
        handler.close()
    assert [e["message"] for e in receiver.events()] == ["once"]
    stats = handler.stats()
    assert stats["failed_attempts"] == 2 and stats["last_error"] == "HTTP 429"


def test_a_413_splits_the_batch_and_a_400_is_not_retried(receiver: Receiver) -> None:
    receiver.answers = [(413, {}), (400, {})]
    handler = WorkbenchHandler(receiver.url, service="billing", flush_interval=30)
    try:
        logger = _logger(handler)
        for i in range(4):
            logger.info("m%d", i)
        assert handler.flush(10)
    finally:
        handler.close()
    assert [e["message"] for e in receiver.events()] == ["m2", "m3"]
    assert handler.stats()["rejected"] == 2
    assert handler.stats()["last_error"].startswith("HTTP 400: ")


def test_server_down_keeps_records_buffered() -> None:
    handler = WorkbenchHandler(
        "http://127.0.0.1:9", service="billing", flush_interval=0.05, exit_timeout=0.5
    )
    try:
        _logger(handler).error("kept")
        wait_until(lambda: handler.stats()["failed_attempts"] >= 1, what="a failed attempt")
        assert handler.stats()["buffered"] == 1
    finally:
        handler.close()
