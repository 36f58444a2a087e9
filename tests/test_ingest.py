"""The ingest call (``workbench.ingest.ingest``): a body in, events queued, the answer out.

Without a server: the body is handed over as bytes, the ingestor is a real one
on a temporary WAL (no flusher thread), ``now`` is fixed.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from workbench.config import Settings
from workbench.errors import PayloadTooLarge, ValidationError
from workbench.events import Limits
from workbench.ingest import Outcome, ingest, ingest_otlp, queue_items
from workbench.lake.ingestor import Ingestor

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
GOOD = {"service": "api", "level": "info", "message": "hello"}
LIMITS = Limits()


@pytest.fixture
def ingestor(settings: Settings) -> Iterator[Ingestor]:
    running = Ingestor(settings, clock=lambda: NOW)
    running.start(background=False)
    yield running
    running.stop()


def _body(data: bytes) -> Callable[[], Awaitable[bytes]]:
    async def read() -> bytes:
        return data

    return read


def _never_read() -> Awaitable[bytes]:
    raise AssertionError("the body was read although the headers refuse it")


def _ingest(
    ingestor: Ingestor,
    body: bytes | Callable[[], Awaitable[bytes]],
    content_type: str = "application/json",
    content_encoding: str = "",
    limits: Limits = LIMITS,
) -> Outcome:
    read = _body(body) if isinstance(body, bytes) else body
    return asyncio.run(
        ingest(
            read,
            content_type=content_type,
            content_encoding=content_encoding,
            limits=limits,
            now=NOW,
            ingestor=ingestor,
        )
    )


def _json(outcome: Outcome) -> Any:
    return orjson.loads(outcome.body)


def test_one_event_is_queued_with_the_original_reply(ingestor: Ingestor) -> None:
    outcome = _ingest(ingestor, orjson.dumps(GOOD))
    assert (outcome.status, outcome.body, outcome.queued) == (202, b'{"status":"queued"}', 1)
    assert ingestor.flush() == 1


def test_a_plain_batch_takes_the_arrow_lane_and_counts_what_it_queued(ingestor: Ingestor) -> None:
    body = b"\n".join(orjson.dumps({**GOOD, "message": f"m{i}"}) for i in range(20))
    outcome = _ingest(ingestor, body, "application/x-ndjson")
    assert outcome.status == 202 and outcome.queued == 20
    assert _json(outcome) == {"status": "queued", "accepted": 20, "rejected": []}
    assert ingestor.flush() == 20


def test_a_batch_keeps_good_events_and_names_the_rejected(ingestor: Ingestor) -> None:
    outcome = _ingest(ingestor, orjson.dumps([GOOD, {"service": "x"}, GOOD]))
    body = _json(outcome)
    assert outcome.status == 202 and outcome.queued == 2
    assert body["accepted"] == 2 and [r["index"] for r in body["rejected"]] == [1]
    assert ingestor.flush() == 2


def test_a_batch_with_every_event_rejected_is_400_and_queues_nothing(ingestor: Ingestor) -> None:
    outcome = _ingest(ingestor, orjson.dumps([{"service": "x"}, 7]))
    assert outcome.status == 400 and outcome.queued == 0
    body = _json(outcome)
    assert body["error"] == "Invalid log events"
    assert body["details"] == {"events": ["every event was rejected"]}
    assert body["accepted"] == 0 and [r["index"] for r in body["rejected"]] == [0, 1]
    assert ingestor.flush() == 0


def test_refused_headers_are_415_before_the_body_is_read(ingestor: Ingestor) -> None:
    outcome = _ingest(ingestor, _never_read, content_type="text/plain")
    assert outcome.status == 415
    assert outcome.body == (
        b'{"error":"Content-Type \'text/plain\' is not accepted; send application/json or '
        b'application/x-ndjson","details":{"Content-Type":["Content-Type \'text/plain\' is '
        b'not accepted; send application/json or application/x-ndjson"]}}'
    )
    outcome = _ingest(ingestor, _never_read, content_encoding="br")
    assert outcome.status == 415
    assert _json(outcome)["details"] == {
        "Content-Encoding": ["Content-Encoding 'br' is not accepted; send gzip, deflate or none"]
    }


def test_a_gzip_body_is_inflated_within_the_limit(ingestor: Ingestor) -> None:
    outcome = _ingest(ingestor, gzip.compress(orjson.dumps(GOOD)), content_encoding=" GZIP ")
    assert outcome.status == 202
    bomb = gzip.compress(b" " * 5000)
    with pytest.raises(PayloadTooLarge, match="max_body_bytes"):
        _ingest(ingestor, bomb, content_encoding="gzip", limits=Limits(max_body_bytes=1000))


def test_a_body_that_is_not_an_event_raises_for_the_edge_to_answer(ingestor: Ingestor) -> None:
    with pytest.raises(ValidationError, match="Invalid log event"):
        _ingest(ingestor, b'{"service": "x"}')
    with pytest.raises(ValidationError, match="Empty batch"):
        _ingest(ingestor, b"[]")


def test_queue_items_validates_and_queues_the_accepted(ingestor: Ingestor) -> None:
    result = asyncio.run(queue_items([GOOD, 7], now=NOW, limits=LIMITS, ingestor=ingestor))
    assert len(result.accepted) == 1 and [i for i, _ in result.rejected] == [1]
    assert ingestor.flush() == 1


def _otlp(
    ingestor: Ingestor, body: bytes | Callable[[], Awaitable[bytes]], **headers: str
) -> Outcome:
    read = _body(body) if isinstance(body, bytes) else body
    return asyncio.run(
        ingest_otlp(
            read,
            content_type=headers.get("content_type", "application/json"),
            content_encoding=headers.get("content_encoding", ""),
            limits=LIMITS,
            now=NOW,
            ingestor=ingestor,
        )
    )


def _otlp_json(*messages: str) -> bytes:
    records = [{"severityNumber": 17, "body": {"stringValue": m}} if m else {} for m in messages]
    return orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]})


def test_an_otlp_export_is_queued_and_answered_with_its_partial_success(
    ingestor: Ingestor,
) -> None:
    outcome = _otlp(ingestor, gzip.compress(_otlp_json("a", "", "b")), content_encoding="gzip")
    assert (outcome.status, outcome.queued, outcome.media_type) == (200, 2, "application/json")
    partial = _json(outcome)["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1" and partial["errorMessage"].startswith(
        "logRecord 1: message"
    )
    assert ingestor.flush() == 2
    whole = _otlp(ingestor, _otlp_json("c"), content_type="application/json; charset=utf-8")
    assert (whole.status, whole.body, whole.queued) == (200, b"{}", 1)


def test_an_otlp_export_of_another_type_is_415_before_the_body_is_read(
    ingestor: Ingestor,
) -> None:
    outcome = _otlp(ingestor, _never_read, content_type="text/plain")
    assert (outcome.status, outcome.media_type) == (415, "application/json")
    assert _json(outcome) == {
        "code": 3,
        "message": "Content-Type must be application/x-protobuf or application/json, got 'text/plain'",
    }


def test_an_otlp_export_in_a_refused_encoding_raises_for_the_edge(ingestor: Ingestor) -> None:
    with pytest.raises(ValidationError, match="Unsupported Content-Encoding 'br'"):
        _otlp(ingestor, _otlp_json("a"), content_encoding="br")
