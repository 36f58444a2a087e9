"""``POST /api/logs`` (one event, JSON array, NDJSON) and ``GET /health``, over HTTP in-process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import polars as pl
import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ingest_api import lifecycle
from ingest_api.routes import ingest
from tests.strategies import json_values
from tests.test_events import BAD_EVENTS
from workbench.config import Settings
from workbench.errors import ValidationError
from workbench.events import Limits, validate_batch, validate_event
from workbench.lake.ingestor import Ingestor
from workbench.lake.reader import scan

README_EVENT = (
    '{\n    "service": "auth-service",\n    "level": "error",\n'
    '    "message": "Failed to authenticate user",\n    "meta": {\n'
    '      "userId": "123",\n      "ip": "192.168.1.1"\n    }\n  }'
)
GOOD = {"service": "api", "level": "info", "message": "hello"}
NDJSON = {"Content-Type": "application/x-ndjson"}


def _lake(client: TestClient, settings: Settings) -> pl.DataFrame:
    ingestor: Ingestor = client.app.state.ingestor  # type: ignore[attr-defined]
    ingestor.flush()
    return scan(settings.lake_url).collect()


def test_readme_curl_example_is_queued_and_lands_in_the_lake_with_meta(
    client: TestClient, settings: Settings
) -> None:
    # The original README's example, byte for byte:
    # curl -X POST http://localhost:4000/api/logs -H "Content-Type: application/json" -d '{...}'
    response = client.post(
        "/api/logs", content=README_EVENT, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 202
    assert response.json() == {"status": "queued"}
    [row] = _lake(client, settings).to_dicts()
    assert row["service"] == "auth-service" and row["level"] == "error"
    assert row["message"] == "Failed to authenticate user"
    assert orjson.loads(row["meta"]) == {"userId": "123", "ip": "192.168.1.1"}
    assert abs((row["timestamp"] - datetime.now(UTC)).total_seconds()) < 60
    assert row["received_at"] == row["timestamp"]


def test_client_timestamp_is_kept_beside_received_at(
    client: TestClient, settings: Settings
) -> None:
    sent = datetime.now(UTC).replace(microsecond=123000, second=0)
    response = client.post("/api/logs", json={**GOOD, "timestamp": sent.isoformat()})
    assert response.status_code == 202
    [row] = _lake(client, settings).to_dicts()
    assert row["timestamp"] == sent and row["received_at"] >= sent


@pytest.mark.parametrize(
    ("raw", "status", "field", "fragment"),
    [
        pytest.param(raw, st, f, frag, id=name)
        for name, raw, st, f, frag in BAD_EVENTS
        if name != "not an object"
    ],
)
def test_invalid_single_event_is_400_with_details(
    client: TestClient, raw: dict[str, Any], status: int, field: str, fragment: str
) -> None:
    # The table's times are relative to a fixed NOW; over HTTP shift them to the real clock.
    if field == "timestamp" and "future" in fragment:
        raw = {**raw, "timestamp": "2999-01-01T00:00:00Z"}
    response = client.post("/api/logs", json=raw)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "details"}
    assert any(fragment in m for m in body["details"][field]), body


def test_body_that_is_not_json_is_400(client: TestClient) -> None:
    response = client.post(
        "/api/logs", content=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and "body" in response.json()["details"]


def test_array_batch_accepts_good_and_lists_bad(client: TestClient, settings: Settings) -> None:
    response = client.post("/api/logs", json=[GOOD, {"service": "x"}, GOOD, "nope"])
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1, 3]
    assert "level" in body["rejected"][0]["errors"]
    assert _lake(client, settings).height == 2


def test_batch_where_all_are_bad_is_400_with_items(client: TestClient) -> None:
    response = client.post("/api/logs", json=[{"service": "x"}, {}])
    assert response.status_code == 400
    body = response.json()
    assert "error" in body and [r["index"] for r in body["rejected"]] == [0, 1]


def test_ndjson_batch_with_a_broken_line(client: TestClient, settings: Settings) -> None:
    lines = [orjson.dumps(GOOD), b"this is not json", orjson.dumps({**GOOD, "level": "WARN"})]
    response = client.post("/api/logs", content=b"\n".join(lines) + b"\n", headers=NDJSON)
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2
    assert body["rejected"][0]["index"] == 1
    assert "not valid JSON" in body["rejected"][0]["errors"]["body"][0]
    assert sorted(_lake(client, settings)["level"].to_list()) == ["info", "warn"]


@pytest.mark.parametrize("form", ["ndjson", "array"])
def test_plain_batch_lands_as_sent_through_the_arrow_lane(
    client: TestClient, settings: Settings, form: str
) -> None:
    # A batch of plain events takes workbench.events_arrow (no dict per event):
    # what lands must be what the general path would store, with fresh unique ids.
    sent = datetime.now(UTC).replace(microsecond=250000) - timedelta(minutes=5)
    events = [
        {**GOOD, "level": "WARN", "message": f"m{i}", "meta": {"i": i, "ok": True}}
        for i in range(40)
    ] + [{**GOOD, "timestamp": sent.isoformat(), "meta": {"nested": {"x": [1]}}}]
    if form == "ndjson":
        response = client.post(
            "/api/logs", content=b"\n".join(orjson.dumps(e) for e in events) + b"\n", headers=NDJSON
        )
    else:
        response = client.post("/api/logs", json=events)
    assert response.status_code == 202
    assert response.json() == {"status": "queued", "accepted": 41, "rejected": []}
    lake = _lake(client, settings).sort("id")
    assert lake["message"].to_list() == [f"m{i}" for i in range(40)] + ["hello"]
    assert set(lake["level"].to_list()) == {"warn", "info"}
    assert lake["meta"][3] == '{"i":3,"ok":true}'
    assert lake["meta"][40] == '{"nested":{"x":[1]}}'
    assert lake["timestamp"][40] == sent
    assert lake["id"].n_unique() == 41 and lake["id"].str.len_chars().unique().to_list() == [32]
    assert (lake["received_at"] == lake["received_at"][0]).all()


def test_body_over_the_limit_is_413_naming_it(settings: Settings) -> None:
    small = settings.model_copy(update={"max_body_bytes": 100})
    from ingest_api.app import create_app

    with TestClient(create_app(small)) as client:
        big = {**GOOD, "message": "x" * 200}
        response = client.post("/api/logs", json=big)
        assert response.status_code == 413
        assert "max_body_bytes" in response.json()["error"]

        def chunks() -> Any:  # no Content-Length: the limit is enforced while streaming
            yield b'{"service":"api","level":"info","message":"'
            yield b"x" * 200
            yield b'"}'

        response = client.post("/api/logs", content=chunks())
        assert response.status_code == 413


def test_batch_over_the_event_limit_is_413(settings: Settings) -> None:
    from ingest_api.app import create_app

    with TestClient(create_app(settings.model_copy(update={"max_batch_events": 3}))) as client:
        response = client.post("/api/logs", json=[GOOD] * 4)
        assert response.status_code == 413
        assert "max_batch_events" in response.json()["error"]


def test_overload_is_503_with_retry_after(settings: Settings) -> None:
    from ingest_api.app import create_app

    tight = settings.model_copy(update={"max_wal_backlog_bytes": 300, "flush_interval_s": 60})
    with TestClient(create_app(tight)) as client:
        statuses = [client.post("/api/logs", json=GOOD).status_code for _ in range(5)]
        assert statuses[0] == 202 and statuses[-1] == 503
        response = client.post("/api/logs", json=GOOD)
        assert response.headers["Retry-After"].isdigit()


def test_health_reports_backlog_flush_and_lake(client: TestClient, settings: Settings) -> None:
    client.post("/api/logs", json=GOOD)
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert set(body["wal"]) >= {"events", "bytes"} and set(body["lake"]) == {"bytes", "files"}
    assert body["wal"]["allWriters"]["writers"] == 1 and body["wal"]["allWriters"]["bytes"] > 0
    _lake(client, settings)
    body = client.get("/health").json()
    assert body["wal"]["events"] == 0 and body["lastFlushAt"] is not None


def test_a_dependency_added_to_the_app_is_enforced_on_the_ingest_route(settings: Settings) -> None:
    # The lean route skips FastAPI's dependency machinery only while there is none:
    # an API-key check added later must never be bypassed.
    def require_key(request: Request) -> None:
        if request.headers.get("x-api-key") != "secret":
            raise HTTPException(401)

    app = FastAPI(
        dependencies=[Depends(require_key)], lifespan=lambda a: lifecycle.running(a, settings)
    )
    app.state.settings = settings
    app.include_router(ingest.router)
    with TestClient(app) as client:
        assert client.post("/api/logs", json=GOOD).status_code == 401
        ok = client.post("/api/logs", json=GOOD, headers={"x-api-key": "secret"})
        assert ok.status_code == 202


def test_ndjson_items_are_judged_exactly_as_single_events(
    client: TestClient, settings: Settings
) -> None:
    # The batch path has a fast lane for plainly valid events; odd spellings, valid
    # or not, must come out exactly as validate_event() judges them one by one.
    recent = datetime.now(UTC).replace(microsecond=0).isoformat()
    items: list[object] = [
        GOOD,
        {**GOOD, "level": "WaRn"},
        {**GOOD, "level": "FATAL", "service": " api "},
        {**GOOD, "level": "Debug", "meta": {"a": [1, {"b": 2.5}], "c": None}},
        {**GOOD, "service": "\x1c\u2003"},  # whitespace to str.strip(), not to ASCII
        {**GOOD, "service": "s" * 129},
        {**GOOD, "level": "info "},
        {**GOOD, "level": "İNFO"},
        {**GOOD, "message": ""},
        {**GOOD, "meta": []},
        {**GOOD, "meta": "x", "timestamp": "soon"},
        {**GOOD, "timestamp": recent, "meta": {}},
        {**GOOD, "timestamp": 5},
        {**GOOD, "meta": {"k": {"k": {"k": {"k": {"k": {"k": {"k": {"k": {"k": {}}}}}}}}}}},
        5,
        [GOOD],
    ]
    limits = Limits.from_settings(settings)
    expected_rejected = []
    expected_levels = []
    for index, item in enumerate(items):
        try:
            expected_levels.append(validate_event(item, now=datetime.now(UTC), limits=limits)[2])
        except ValidationError as exc:
            expected_rejected.append({"index": index, "errors": exc.details})
    body = b"\n".join(orjson.dumps(i) for i in items)
    response = client.post("/api/logs", content=body, headers=NDJSON)
    assert response.status_code == 202
    got = response.json()
    assert got["rejected"] == expected_rejected
    assert got["accepted"] == len(expected_levels) == 5
    lake = _lake(client, settings)
    assert sorted(lake["level"].to_list()) == sorted(expected_levels)
    assert sorted(lake["service"].to_list()) == sorted(["api"] * 4 + [" api "])
    assert '{"a":[1,{"b":2.5}],"c":null}' in lake["meta"].to_list()


_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=12)
_values = json_values(_scalars, max_size=3, key_size=4, max_leaves=12)
_items = st.one_of(
    _values,
    st.fixed_dictionaries(
        {},
        optional={
            "service": st.sampled_from(["api", " api", "\x1c", " ", "", "s" * 129]) | _values,
            "level": st.sampled_from(["info", "WARN", "Error", "wArN", "İNFO", "fatal "]) | _values,
            "message": st.sampled_from(["m", ""]) | _values,
            "timestamp": st.sampled_from(["2026-11-26T11:00:00Z", "2026-11-26", "x"]) | _values,
            "meta": st.dictionaries(st.text(max_size=4), _values, max_size=3) | _values,
        },
    ),
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(items=st.lists(_items, min_size=1, max_size=8))
def test_batch_fast_lane_judges_every_item_as_validate_event_does(items: list[Any]) -> None:
    # The NDJSON/array route validates with validate_batch, whose fast lane must
    # accept, normalise and reject exactly as validate_event does, one item at a time.
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    limits = Limits(max_meta_depth=3, max_meta_bytes=60)
    expected_accepted, expected_rejected = [], []
    for index, item in enumerate(items):
        try:
            expected_accepted.append(validate_event(item, now=now, limits=limits))
        except ValidationError as exc:
            expected_rejected.append((index, exc.details))
    result = validate_batch(items, now=now, limits=limits)
    assert result.accepted == expected_accepted
    assert result.rejected == expected_rejected
