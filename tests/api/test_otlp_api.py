"""POST /v1/logs: the OTLP/HTTP contract in-process, and real OpenTelemetry SDK exporters end to end."""

from __future__ import annotations

import gzip
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber

from tests.live_server import LiveServer
from workbench.config import Settings
from workbench.errors import Overloaded
from workbench.lake import reader

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}


def _json_export(*messages: str, service: str = "otel-json") -> bytes:
    return orjson.dumps(
        {
            "resourceLogs": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                    },
                    "scopeLogs": [
                        {
                            "logRecords": [
                                {"severityNumber": 17, "body": {"stringValue": m}}
                                if m
                                else {"severityNumber": 17}
                                for m in messages
                            ]
                        }
                    ],
                }
            ]
        }
    )


def _pb_export(*messages: str) -> bytes:
    records = [
        LogRecord(
            severity_number=SeverityNumber.SEVERITY_NUMBER_INFO, body=AnyValue(string_value=m)
        )
        if m
        else LogRecord()
        for m in messages
    ]
    return ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=records)])]
    ).SerializeToString()


def _lake_rows(settings: Settings, client: TestClient) -> pl.DataFrame:
    client.app.state.ingestor.flush()  # type: ignore[attr-defined]
    return reader.scan(settings.lake_url).collect()


def test_json_export_is_accepted_and_stored(client: TestClient, settings: Settings) -> None:
    response = client.post("/v1/logs", content=_json_export("a", "b"), headers=JS)
    assert response.status_code == 200 and response.json() == {}
    assert response.headers["content-type"] == "application/json"
    rows = _lake_rows(settings, client)
    assert sorted(rows["message"]) == ["a", "b"]
    assert set(rows["service"]) == {"otel-json"} and set(rows["level"]) == {"error"}


def test_protobuf_export_partial_success(client: TestClient, settings: Settings) -> None:
    response = client.post("/v1/logs", content=_pb_export("ok", "", "ok too"), headers=PB)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    parsed = ExportLogsServiceResponse()
    parsed.ParseFromString(response.content)
    assert parsed.partial_success.rejected_log_records == 1
    assert "logRecord 1: message" in parsed.partial_success.error_message
    rows = _lake_rows(settings, client)
    assert sorted(rows["message"]) == ["ok", "ok too"]
    assert set(rows["service"]) == {"unknown_service"}


def test_json_partial_success_when_every_record_is_rejected(client: TestClient) -> None:
    response = client.post("/v1/logs", content=_json_export("", ""), headers=JS)
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedLogRecords"] == "2"


def test_gzip_body(client: TestClient, settings: Settings) -> None:
    response = client.post(
        "/v1/logs",
        content=gzip.compress(_pb_export("zipped")),
        headers={**PB, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200
    assert list(_lake_rows(settings, client)["message"]) == ["zipped"]


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"\xff\xff\xff", PB, 400),
        (b"{not json", JS, 400),
        (b"{}", {"Content-Type": "text/plain"}, 415),
        (b"\x00garbage", {**PB, "Content-Encoding": "gzip"}, 400),
        (b"{}", {**JS, "Content-Encoding": "br"}, 400),
    ],
)
def test_undecodable_bodies(
    client: TestClient, body: bytes, headers: dict[str, str], status: int
) -> None:
    response = client.post("/v1/logs", content=body, headers=headers)
    assert response.status_code == status
    if headers["Content-Type"] == "application/json" or status == 415:
        assert response.json()["code"] == 3


def test_body_and_batch_limits(data_dir: Path) -> None:
    from ingest_api.app import create_app

    small = Settings(  # type: ignore[call-arg]
        WORKBENCH_DATA_DIR=data_dir, WORKBENCH_MAX_BODY_BYTES=2000, WORKBENCH_MAX_BATCH_EVENTS=3
    )
    with TestClient(create_app(small)) as c:
        big = c.post("/v1/logs", content=_json_export("x" * 3000), headers=JS)
        assert big.status_code == 413
        many = c.post("/v1/logs", content=_json_export("a", "b", "c", "d"), headers=JS)
        assert many.status_code == 413
        # A gzip bomb: small on the wire, over the limit once inflated.
        bomb = gzip.compress(_json_export("y" * 10_000))
        assert len(bomb) < 2000
        inflated = c.post("/v1/logs", content=bomb, headers={**JS, "Content-Encoding": "gzip"})
        assert inflated.status_code == 413


def test_pushback_is_503_with_retry_after(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def overloaded(*_: Any, **__: Any) -> list[str]:
        raise Overloaded("backlog full", retry_after=3)

    monkeypatch.setattr(client.app.state.ingestor, "accept", overloaded)  # type: ignore[attr-defined]
    response = client.post("/v1/logs", content=_pb_export("x"), headers=PB)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "3"


# -- a real OpenTelemetry SDK against a real server ---------------------------


@pytest.fixture
def live(data_dir: Path) -> Iterator[LiveServer]:
    """A running ``workbench serve`` on a free loopback port; stopped after the test."""
    server = LiveServer(data_dir).start()
    try:
        yield server
    finally:
        server.stop()


def _exporter(encoding: str, endpoint: str) -> Any:
    if encoding == "protobuf":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    else:
        from opentelemetry.exporter.otlp.json.http._log_exporter import (  # type: ignore[assignment]
            OTLPLogExporter,
        )
    return OTLPLogExporter(endpoint=endpoint, timeout=10)


def _wait_for_rows(lake_url: str, run: str, n: int, timeout: float = 20.0) -> pl.DataFrame:
    deadline = time.monotonic() + timeout
    while True:
        rows = (
            reader.scan(lake_url).filter(pl.col("meta").str.contains(run, literal=True)).collect()
        )
        if rows.height >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_opentelemetry_sdk_exports_land_in_the_lake(
    live: LiveServer, settings: Settings, encoding: str
) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    run = uuid.uuid4().hex
    provider = LoggerProvider(
        resource=Resource.create({"service.name": f"otel-{encoding}", "deployment": "test"})
    )
    exporter = _exporter(encoding, f"{live.url}/v1/logs")
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    app_logger = logging.getLogger(f"otel-test-{run}")
    app_logger.propagate = False
    app_logger.setLevel(logging.DEBUG)
    app_logger.addHandler(handler)
    tracer = TracerProvider().get_tracer("test")
    try:
        app_logger.debug("cache miss for key %s", "k1", extra={"run": run})
        app_logger.info("request served in 31 ms", extra={"run": run, "status": 200})
        app_logger.warning("slow query", extra={"run": run})
        with tracer.start_as_current_span("checkout") as span:
            app_logger.error("card declined", extra={"run": run, "order_id": 42})
            span_context = span.get_span_context()
        app_logger.critical("payment service down", extra={"run": run})
        assert provider.force_flush(10_000)
    finally:
        app_logger.removeHandler(handler)
        provider.shutdown()
        trace.get_tracer_provider()  # keep the global untouched: the SDK tracer was local

    rows = _wait_for_rows(settings.lake_url, run, 5).sort("timestamp")
    assert rows.height == 5, rows
    assert set(rows["service"]) == {f"otel-{encoding}"}
    assert list(rows["level"]) == ["debug", "info", "warn", "error", "fatal"]
    assert list(rows["message"]) == [
        "cache miss for key k1",
        "request served in 31 ms",
        "slow query",
        "card declined",
        "payment service down",
    ]
    metas = [orjson.loads(m) for m in rows["meta"]]
    assert all(m["run"] == run for m in metas)
    assert metas[1]["status"] == 200
    assert metas[0]["resource"]["deployment"] == "test"
    assert metas[0]["resource"]["service.name"] == f"otel-{encoding}"
    error = metas[3]
    assert error["order_id"] == 42
    assert error["trace_id"] == format(span_context.trace_id, "032x")
    assert error["span_id"] == format(span_context.span_id, "016x")
    # The event time is the record's time (set by the SDK at emit), not the flush time.
    lags = [r - t for r, t in zip(rows["received_at"], rows["timestamp"], strict=True)]
    assert max(lags) < timedelta(seconds=30)
