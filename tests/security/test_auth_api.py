"""The HTTP API with keys configured: 401 without or with a bad key, 403 without the scope, 200 with it.

``test_every_route_refuses_*`` is generated from the app's route table, so a new
endpoint cannot slip through unguarded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ingest_api.app import create_app
from ingest_api.auth import required_scope
from tests.security.conftest import NOW, MakeKey
from workbench.catalog.db import session_scope
from workbench.config import Settings
from workbench.security.keys import revoke_key

EVENT = {"service": "checkout", "level": "error", "message": "boom"}
SCOPES = ("ingest", "read", "admin")
OTHER = {"ingest": "read", "read": "ingest", "admin": "ingest"}


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """A client of the app on a migrated catalog (keys are added by each test)."""
    with TestClient(create_app(settings)) as c:
        yield c


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_open_on_loopback_without_keys(client: TestClient) -> None:
    assert client.post("/api/logs", json=EVENT).status_code == 202
    assert client.get("/api/logs").status_code == 200
    assert client.get("/api/alerts/rules").status_code == 200


def test_health_and_docs_stay_open_with_keys(client: TestClient, make_key: MakeKey) -> None:
    make_key("read")
    for path in ("/health", "/openapi.json", "/docs"):
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize(
    "method,path,body,scope",
    [
        ("POST", "/api/logs", EVENT, "ingest"),
        ("GET", "/api/logs", None, "read"),
        ("GET", "/api/metrics/errors", None, "read"),
        ("GET", "/api/alerts/incidents", None, "read"),
        ("POST", "/api/alerts/rules", {"service": "x", "threshold": 1, "windowMinutes": 5}, "admin"),
    ],
)
def test_each_area_needs_its_scope(
    client: TestClient, make_key: MakeKey, method: str, path: str, body: object, scope: str
) -> None:
    right, wrong = make_key(scope), make_key(OTHER[scope])
    none = client.request(method, path, json=body)
    assert none.status_code == 401
    assert none.json() == {"error": "API key required"}
    assert none.headers["WWW-Authenticate"].startswith("Bearer")
    bad = client.request(method, path, json=body, headers=_bearer("wb_" + "x" * 43))
    assert bad.status_code == 401 and "invalid" in bad.json()["error"]
    forbidden = client.request(method, path, json=body, headers=_bearer(wrong))
    assert forbidden.status_code == 403
    assert forbidden.json()["requiredScope"] == scope
    ok_bearer = client.request(method, path, json=body, headers=_bearer(right))
    ok_header = client.request(method, path, json=body, headers={"X-API-Key": right})
    assert ok_bearer.status_code < 300, ok_bearer.text
    assert ok_header.status_code < 300, ok_header.text


def test_admin_key_also_reads_but_does_not_ingest(client: TestClient, make_key: MakeKey) -> None:
    admin = make_key("admin")
    assert client.get("/api/alerts/rules", headers=_bearer(admin)).status_code == 200
    assert client.post("/api/logs", json=EVENT, headers=_bearer(admin)).status_code == 403


def test_otlp_needs_ingest(client: TestClient, make_key: MakeKey) -> None:
    ingest, read = make_key("ingest"), make_key("read")
    body: dict[str, list[object]] = {"resourceLogs": []}
    assert client.post("/v1/logs", json=body).status_code == 401
    assert client.post("/v1/logs", json=body, headers=_bearer(read)).status_code == 403
    assert client.post("/v1/logs", json=body, headers=_bearer(ingest)).status_code == 200


def test_revoked_key_is_refused_within_seconds(
    client: TestClient, engine: Engine, make_key: MakeKey
) -> None:
    token = make_key("read")
    assert client.get("/api/logs", headers=_bearer(token)).status_code == 200
    with session_scope(engine) as s:
        revoke_key(session=s, ident=token[:11], now=NOW)
    deadline = time.monotonic() + 5
    status = 200
    while time.monotonic() < deadline and status != 401:
        time.sleep(0.2)
        status = client.get("/api/logs", headers=_bearer(token)).status_code
    assert status == 401


def test_revoking_the_last_key_keeps_the_api_closed(
    client: TestClient, engine: Engine, make_key: MakeKey
) -> None:
    token = make_key("read")
    with session_scope(engine) as s:
        revoke_key(session=s, ident=token[:11], now=NOW)
    client.app.state.key_cache.clear()  # type: ignore[attr-defined]
    assert client.get("/api/logs").status_code == 401


def test_not_open_when_bound_beyond_loopback(settings: Settings, engine: Engine) -> None:
    wide = settings.model_copy(update={"host": "0.0.0.0"})
    with TestClient(create_app(wide)) as c:
        assert c.get("/api/logs").status_code == 401
        assert c.get("/health").status_code == 200


def test_not_open_when_the_connection_arrives_on_a_public_interface(
    settings: Settings, engine: Engine
) -> None:
    with TestClient(create_app(settings), base_url="http://192.0.2.10") as c:
        assert c.get("/api/logs").status_code == 401


def test_cors_off_by_default_and_on_when_configured(settings: Settings, engine: Engine) -> None:
    preflight = {"Origin": "https://ops.example", "Access-Control-Request-Method": "GET"}
    with TestClient(create_app(settings)) as c:
        r = c.options("/api/logs", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
    cors = settings.model_copy(update={"cors_origins": "https://ops.example, https://b.example"})
    with TestClient(create_app(cors)) as c:
        r = c.options("/api/logs", headers=preflight)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://ops.example"
        r = c.options("/api/logs", headers={**preflight, "Origin": "https://evil.example"})
        assert r.headers.get("access-control-allow-origin") != "https://evil.example"


def test_openapi_documents_schemes_and_scopes(client: TestClient, make_key: MakeKey) -> None:
    schema = client.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"bearerKey", "apiKeyHeader"}
    assert schema["paths"]["/api/logs"]["post"]["x-required-scope"] == "ingest"
    assert schema["paths"]["/api/logs"]["get"]["x-required-scope"] == "read"
    assert "security" not in schema["paths"]["/health"]["get"]


# --- generated from the route table ------------------------------------------------


def _operations() -> list[tuple[str, str]]:
    # The OpenAPI paths are the route table (every route is in the schema, see
    # tests/test_conventions.py); a path that is not is still guarded: default deny.
    paths = create_app(Settings()).openapi()["paths"]
    found = []
    for template, operations in paths.items():
        path = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", template)
        for method in operations:
            if required_scope(method.upper(), template) is not None:
                found.append((method.upper(), path))
    return found


OPERATIONS = _operations()


def test_the_route_table_is_covered() -> None:
    assert len(OPERATIONS) >= 20
    assert ("POST", "/api/logs") in OPERATIONS and ("POST", "/v1/logs") in OPERATIONS


@pytest.fixture
def guarded(client: TestClient, make_key: MakeKey) -> tuple[TestClient, dict[str, str]]:
    """The client with keys configured, and one token per scope."""
    return client, {scope: make_key(scope) for scope in SCOPES}


@pytest.mark.parametrize("method,path", OPERATIONS, ids=lambda v: v)
def test_every_route_refuses_no_key_and_the_wrong_scope(
    guarded: tuple[TestClient, dict[str, str]], method: str, path: str
) -> None:
    client, tokens = guarded
    need = required_scope(method, path)
    assert need is not None
    assert client.request(method, path).status_code == 401
    wrong = [s for s in SCOPES if s != need and not (need == "read" and s == "admin")]
    for scope in wrong:
        r = client.request(method, path, headers=_bearer(tokens[scope]))
        assert r.status_code == 403, (scope, r.text)
    r = client.request(method, path, headers=_bearer(tokens[need]))
    assert r.status_code not in (401, 403), r.text


# --- request size limits beyond ingest ------------------------------------------------


def test_rest_bodies_are_limited_but_ingest_keeps_its_own_limit(
    settings: Settings, engine: Engine
) -> None:
    small = settings.model_copy(update={"max_api_body_bytes": 200})
    rule = {"service": "x", "threshold": 1, "windowMinutes": 5, "name": "n" * 100}
    with TestClient(create_app(small)) as c:
        too_big = c.post("/api/alerts/rules", json={**rule, "name": "n" * 300})
        assert too_big.status_code == 413
        assert "body" in too_big.json()["details"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
            yield b'{"service": "x", "name": "'
            yield b"n" * 300
            yield b'"}'

        chunked = c.post(
            "/api/alerts/rules", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert chunked.status_code == 413
        assert c.post("/api/alerts/rules", json=rule).status_code == 201
        batch = [{**EVENT, "message": "m" * 100}] * 5  # > 200 bytes: ingest has its own limit
        assert c.post("/api/logs", json=batch).status_code == 202
