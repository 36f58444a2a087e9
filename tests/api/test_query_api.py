"""HTTP contract of GET /api/logs and GET /api/metrics/errors over a lake written in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ingest_api.app import _install_error_handlers
from ingest_api.routes import query
from tests.factories import T0, write_events
from workbench import clock
from workbench.config import Settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client of an app with only the query router (the ingestor's lifespan is not needed)."""
    rows = [
        {
            "timestamp": T0 - timedelta(minutes=i),
            "service": "api" if i % 2 else "db",
            "level": ("info", "error", "fatal")[i % 3],
            "message": f"Request {i} failed",
            "meta": {"userId": f"u{i % 4}", "latencyMs": i} if i % 5 else None,
        }
        for i in range(30)
    ]
    write_events(settings.lake_url, rows)
    app = FastAPI()
    app.state.settings = settings
    _install_error_handlers(app)
    app.include_router(query.router)
    with clock.frozen(T0 + timedelta(seconds=30)), TestClient(app) as c:
        yield c


def test_logs_shape_and_order(client: TestClient) -> None:
    body = client.get("/api/logs", params={"limit": 5}).json()
    assert body["total"] == 30 and len(body["logs"]) == 5 and body["nextCursor"]
    first = body["logs"][0]
    assert set(first) == {"id", "service", "level", "message", "timestamp", "meta"}
    assert first["timestamp"] == "2026-11-20T12:00:00.000Z"
    assert first["meta"] is None and body["logs"][1]["meta"] == {"userId": "u1", "latencyMs": 1}


def test_levels_repeated_or_comma_separated(client: TestClient) -> None:
    a = client.get("/api/logs?level=error&level=fatal").json()["total"]
    b = client.get("/api/logs?level=error,FATAL").json()["total"]
    assert a == b == 20


def test_filters_text_meta_service_range(client: TestClient) -> None:
    assert client.get("/api/logs", params={"q": "request 1"}).json()["total"] == 11
    assert client.get("/api/logs?meta=userId:u1&meta=latencyMs:1").json()["total"] == 1
    assert client.get("/api/logs", params={"service": "api"}).json()["total"] == 15
    params = {"from": "2026-11-20T11:55:00Z", "to": "2026-11-20T12:00:00+00:00"}
    assert client.get("/api/logs", params=params).json()["total"] == 6


def test_cursor_pages_follow_each_other(client: TestClient) -> None:
    first = client.get("/api/logs", params={"limit": 20}).json()
    second = client.get("/api/logs", params={"limit": 20, "cursor": first["nextCursor"]}).json()
    ids = [log["id"] for log in first["logs"] + second["logs"]]
    assert len(ids) == len(set(ids)) == 30 and second["nextCursor"] is None


@pytest.mark.parametrize(
    ("query_string", "field"),
    [
        ("limit=101", "limit"),
        ("page=0", "page"),
        ("level=loud", "level"),
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("cursor=zzz", "cursor"),
        ("meta=novalue", "meta"),
        ("limit=abc", "limit"),
    ],
)
def test_bad_params_are_400_naming_the_field(
    client: TestClient, query_string: str, field: str
) -> None:
    response = client.get(f"/api/logs?{query_string}")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] and field in body["details"]


def test_error_trend_every_bucket(client: TestClient) -> None:
    response = client.get("/api/metrics/errors", params={"service": "api", "range": "1h"})
    points = response.json()
    assert response.status_code == 200 and len(points) == 61
    assert points[-1] == {"time": "2026-11-20T12:00:00.000Z", "count": 0}
    # api = odd minutes; error/fatal = i % 3 != 0: i in 1,5,7,11,13,17,19,23,25,29
    assert sum(p["count"] for p in points) == 10


def test_error_trend_unknown_range_is_400(client: TestClient) -> None:
    response = client.get("/api/metrics/errors", params={"range": "2d"})
    assert response.status_code == 400 and "range" in response.json()["details"]


@pytest.mark.slow  # starts the real lifespan (ingestor) for the wiring check
def test_wired_into_the_real_app(settings: Settings) -> None:
    from ingest_api.app import create_app

    write_events(settings.lake_url, [{"timestamp": T0, "level": "error"}])
    with TestClient(create_app(settings)) as c:
        body = c.get("/api/logs").json()
        assert body["total"] == 1 and body["logs"][0]["level"] == "error"
        assert c.get("/api/logs?limit=500").status_code == 400
        assert c.get("/api/metrics/errors?range=1h").status_code == 200


# Offsets push these past datetime's range (0001-01-01 .. 9999-12-31) once converted to UTC.
OUT_OF_RANGE = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00")
# In range, at the very edges: answered (200, or 400 from the span limit), never a 500.
EXTREME = ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00")


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize("param", ["from", "to"])
def test_out_of_range_times_are_400_naming_the_parameter(
    client: TestClient, param: str, value: str
) -> None:
    res = client.get("/api/logs", params={param: value})
    assert res.status_code == 400, res.text
    assert "out of range" in res.json()["details"][param][0]


@pytest.mark.parametrize("value", EXTREME)
@pytest.mark.parametrize("param", ["from", "to"])
def test_extreme_times_are_answered(client: TestClient, param: str, value: str) -> None:
    res = client.get("/api/logs", params={param: value})
    assert res.status_code in (200, 400), res.text
    if res.status_code == 400:
        assert param in res.json()["details"]
