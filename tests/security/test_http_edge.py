"""The HTTP edge: Host and Origin checks in open mode, ingest Content-Type and -Encoding,
bounded work before authentication (header size, key cache, NDJSON item count, refused
bodies charged by size), a catalog outage's 503 wording, and offline ``/docs`` and ``/``.

In-process tests use ``base_url="http://127.0.0.1:4000"`` so the app sees a request that
arrived on a loopback interface address, as under uvicorn; ``test_live_*`` run the real
``workbench serve``.
"""

from __future__ import annotations

import gzip
import re
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ingest_api.app import create_app
from tests.live_server import LiveServer, free_port
from tests.security.conftest import MakeKey
from workbench.config import Settings
from workbench.security.keys import KeyCache

EVENT = {"service": "checkout", "level": "error", "message": "boom"}
BASE = "http://127.0.0.1:4000"
JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """A client of the app on a migrated catalog, talking to it as over 127.0.0.1:4000."""
    with TestClient(create_app(settings), base_url=BASE) as c:
        yield c


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- Host (DNS rebinding) ----------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:4000", "10.0.0.7:4000"])
def test_open_mode_refuses_a_foreign_host(client: TestClient, host: str) -> None:
    """A page on a rebinding domain reaches 127.0.0.1 with its own name in ``Host``."""
    for method, path in (("GET", "/api/logs"), ("GET", "/api/alerts/rules")):
        r = client.request(method, path, headers={"Host": host})
        assert r.status_code == 400, (path, r.text)
        assert "Host" in r.json()["error"] and "WORKBENCH_ALLOWED_HOSTS" in r.json()["error"]
    r = client.post("/api/logs", json=EVENT, headers={"Host": host})
    assert r.status_code == 400


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:4000", "localhost:4000", "localhost", "[::1]:4000", "127.0.0.2", "app.localhost"],
)
def test_open_mode_answers_loopback_names(client: TestClient, host: str) -> None:
    assert client.get("/api/logs", headers={"Host": host}).status_code == 200


def test_allowed_hosts_extend_the_loopback_names(settings: Settings, engine: Engine) -> None:
    allowed = settings.model_copy(update={"allowed_hosts": "Logs.Internal, other.example"})
    with TestClient(create_app(allowed), base_url=BASE) as c:
        assert c.get("/api/logs", headers={"Host": "logs.internal:4000"}).status_code == 200
        assert c.get("/api/logs", headers={"Host": "other.example"}).status_code == 200
        assert c.get("/api/logs", headers={"Host": "evil.example"}).status_code == 400


def test_the_servers_own_names_are_allowed(settings: Settings, engine: Engine) -> None:
    """WORKBENCH_HOST and WORKBENCH_API_URL name this server: clients are told to use them."""
    named = settings.model_copy(update={"api_url": "http://api.box:4000"})
    with TestClient(create_app(named), base_url=BASE) as c:
        assert c.get("/api/logs", headers={"Host": "api.box:4000"}).status_code == 200
        assert c.get("/api/logs", headers={"Host": "evil.example"}).status_code == 400


def test_keyed_mode_does_not_check_host(client: TestClient, make_key: MakeKey) -> None:
    """With keys, a request needs a key a rebinding page does not have; any Host is served."""
    token = make_key("read")
    r = client.get("/api/logs", headers={"Host": "logs.example.com", **_bearer(token)})
    assert r.status_code == 200
    assert client.get("/api/logs", headers={"Host": "evil.example"}).status_code == 401


# -- Origin (cross-site writes) ----------------------------------------------------------


def test_open_mode_refuses_a_cross_site_write(client: TestClient) -> None:
    for origin in ("https://evil.example", "null", "http://127.0.0.1:9999"):
        r = client.post("/api/logs", json=EVENT, headers={"Origin": origin})
        assert r.status_code == 403, (origin, r.text)
        assert "Origin" in r.json()["error"] and "WORKBENCH_CORS_ORIGINS" in r.json()["error"]
    rule = {"service": "x", "threshold": 1, "windowMinutes": 5}
    r = client.post("/api/alerts/rules", json=rule, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    # Same origin (Swagger UI at /docs), no Origin (curl, shippers): served.
    assert client.post("/api/logs", json=EVENT, headers={"Origin": BASE}).status_code == 202
    assert client.post("/api/logs", json=EVENT).status_code == 202
    # Reading is not a write: a GET with an Origin is left to CORS (no headers: unreadable).
    assert client.get("/api/logs", headers={"Origin": "https://evil.example"}).status_code == 200


def test_cors_origins_may_write_in_open_mode(settings: Settings, engine: Engine) -> None:
    cors = settings.model_copy(update={"cors_origins": "https://ops.example"})
    with TestClient(create_app(cors), base_url=BASE) as c:
        r = c.post("/api/logs", json=EVENT, headers={"Origin": "https://ops.example"})
        assert r.status_code == 202
        r = c.post("/api/logs", json=EVENT, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403


def test_a_key_authenticates_a_cross_site_write(client: TestClient, make_key: MakeKey) -> None:
    token = make_key("ingest")
    headers = {"Origin": "https://evil.example", **_bearer(token)}
    assert client.post("/api/logs", json=EVENT, headers=headers).status_code == 202


# -- Content-Type and Content-Encoding of POST /api/logs ---------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain; charset=utf-8", "multipart/form-data; boundary=x", "text/html"],
)
def test_ingest_refuses_browser_form_types(client: TestClient, content_type: str) -> None:
    r = client.post(
        "/api/logs", content=orjson.dumps(EVENT), headers={"Content-Type": content_type}
    )
    assert r.status_code == 415, r.text
    body = r.json()
    assert "Content-Type" in body["details"] and "application/json" in body["error"]


@pytest.mark.parametrize(
    "headers",
    [
        {},  # httpx with content= and no header: no Content-Type at all
        {"Content-Type": ""},
        {"Content-Type": "application/json; charset=utf-8"},
        {"Content-Type": "application/vnd.shipper+json"},
        {"Content-Type": "application/x-www-form-urlencoded"},  # curl -d without -H
    ],
)
def test_ingest_accepts_json_types_and_curls_default(
    client: TestClient, headers: dict[str, str]
) -> None:
    r = client.post("/api/logs", content=orjson.dumps(EVENT), headers=headers)
    assert r.status_code == 202, r.text


@pytest.mark.parametrize("ndjson_type", ["application/x-ndjson", "application/jsonl"])
def test_ingest_accepts_ndjson_types(client: TestClient, ndjson_type: str) -> None:
    body = orjson.dumps(EVENT) + b"\n" + orjson.dumps(EVENT) + b"\n"
    r = client.post("/api/logs", content=body, headers={"Content-Type": ndjson_type})
    assert r.status_code == 202 and r.json()["accepted"] == 2


def test_gzip_ingest_is_decoded(client: TestClient) -> None:
    body = gzip.compress(orjson.dumps([EVENT, EVENT]))
    r = client.post("/api/logs", content=body, headers={**JSON, "Content-Encoding": "gzip"})
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 2
    lines = gzip.compress(orjson.dumps(EVENT) + b"\n" + orjson.dumps(EVENT))
    r = client.post("/api/logs", content=lines, headers={**NDJSON, "Content-Encoding": "gzip"})
    assert r.status_code == 202 and r.json()["accepted"] == 2


def test_gzip_ingest_has_the_body_bounds(settings: Settings, engine: Engine) -> None:
    small = settings.model_copy(update={"max_body_bytes": 10_000})
    with TestClient(create_app(small), base_url=BASE) as c:
        bomb = gzip.compress(b"[" + b" " * 5_000_000 + b"]")  # ~5 KB in, 5 MB out
        r = c.post("/api/logs", content=bomb, headers={**JSON, "Content-Encoding": "gzip"})
        assert r.status_code == 413 and "max_body_bytes" in r.json()["error"]
        r = c.post("/api/logs", content=b"not gzip", headers={**JSON, "Content-Encoding": "gzip"})
        assert r.status_code == 400 and "gzip" in r.json()["error"]
        r = c.post("/api/logs", content=b"{}", headers={**JSON, "Content-Encoding": "br"})
        assert r.status_code == 415 and "Content-Encoding" in r.json()["details"]


# -- Bounded work before authentication and limits ---------------------------------------


def test_oversized_headers_are_431_before_any_key_lookup(
    client: TestClient, make_key: MakeKey
) -> None:
    make_key("ingest")
    r = client.post("/api/logs", json=EVENT, headers=_bearer("wb_" + "x" * 64 * 1024))
    assert r.status_code == 431, r.text
    assert "header" in r.json()["error"]
    many = {f"X-Pad-{i}": "y" * 1000 for i in range(20)}  # each small, 20 KB together
    assert client.get("/health", headers=many).status_code == 431
    assert client.get("/health", headers={"X-Pad": "y" * 1000}).status_code == 200


def test_key_cache_never_keeps_impossible_tokens(engine: Engine, make_key: MakeKey) -> None:
    token = make_key("ingest")
    cache = KeyCache(engine)
    for i in range(50):
        assert cache.grant(f"bogus-{i}-" + "z" * 10_000) is None
        assert cache.grant("wb_" + "q" * 200 + str(i)) is None  # too long to be ours
    assert len(cache) == 0
    assert cache.grant("wb_" + "A" * 43) is None  # well-formed, unknown: remembered (by hash)
    grant = cache.grant(token)
    assert grant is not None and len(cache) == 2
    assert cache.cached_grant(token) == (True, grant)


def test_ndjson_item_count_is_bounded_before_parsing(settings: Settings, engine: Engine) -> None:
    """A body of many ``{}`` lines is refused (413) without building an object per line."""
    limits = settings.model_copy(update={"max_batch_events": 100, "max_body_bytes": 4_000_000})
    body = b"{}\n" * 1_000_000  # 3 MB, a million items
    with TestClient(create_app(limits), base_url=BASE) as c:
        tracemalloc.start()
        try:
            r = c.post("/api/logs", content=body, headers=NDJSON)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert r.status_code == 413, r.text
    assert "max_batch_events" in r.json()["error"]
    # The body itself (and a copy or two of it) at most; a list of a million lines or
    # dicts would be well over 60 MB.
    assert peak < 6 * len(body), peak


def test_array_item_count_is_bounded_before_parsing(settings: Settings, engine: Engine) -> None:
    """The same for a JSON array: ``[{},{},...]`` is 413 without a dict per item."""
    limits = settings.model_copy(update={"max_batch_events": 100, "max_body_bytes": 4_000_000})
    body = b" [" + b"{}," * 1_000_000 + b"{}]"
    with TestClient(create_app(limits), base_url=BASE) as c:
        tracemalloc.start()
        try:
            r = c.post("/api/logs", content=body, headers=JSON)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert r.status_code == 413, r.text
        assert "max_batch_events" in r.json()["error"]
        assert peak < 6 * len(body), peak
        # Commas inside strings and nested values are not items.
        odd = [{**EVENT, "level": "WARNING", "message": "a,b," * 50, "meta": {"l": [1] * 200}}]
        r = c.post("/api/logs", content=orjson.dumps(odd * 100), headers=JSON)
        assert r.status_code == 202 and r.json()["accepted"] == 100, r.text


def test_ndjson_with_blank_lines_counts_only_items(settings: Settings, engine: Engine) -> None:
    limits = settings.model_copy(update={"max_batch_events": 3})
    body = b"\n\n".join(orjson.dumps(EVENT) for _ in range(3)) + b"\n \n\r\n"
    with TestClient(create_app(limits), base_url=BASE) as c:
        r = c.post("/api/logs", content=body, headers=NDJSON)
        assert r.status_code == 202 and r.json()["accepted"] == 3
        r = c.post("/api/logs", content=body + orjson.dumps(EVENT), headers=NDJSON)
        assert r.status_code == 413


def test_refused_bodies_are_charged_by_size(
    settings: Settings, engine: Engine, make_key: MakeKey
) -> None:
    """A key sending 413s pays for the bytes it made the server read."""
    tight = settings.model_copy(
        update={"ingest_rate_per_key": 1.0, "ingest_burst_per_key": 100, "max_batch_events": 10}
    )
    token = make_key("ingest")
    with TestClient(create_app(tight), base_url=BASE) as c:
        big = b"\n".join(orjson.dumps(EVENT) for _ in range(4000))  # ~200 KB, over 10 items
        r = c.post("/api/logs", content=big, headers={**NDJSON, **_bearer(token)})
        assert r.status_code == 413
        r = c.post("/api/logs", json=EVENT, headers=_bearer(token))
        assert r.status_code == 429, r.text


# -- A catalog outage's 503 --------------------------------------------------------------


def _dead_catalog(settings: Settings) -> tuple[Settings, int]:
    port = free_port()  # nothing listens there
    url = f"postgresql+psycopg://wbsecretrole:pw@127.0.0.1:{port}/wbcatalogdb?connect_timeout=2"
    return settings.model_copy(update={"database_url": url}), port


def _assert_names_nothing(text: str, port: int) -> None:
    for secret in ("127.0.0.1", str(port), "wbsecretrole", "wbcatalogdb", "psycopg", "connection"):
        assert secret not in text, (secret, text)


def test_catalog_outage_503_names_no_host_port_role_or_driver(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    dead, port = _dead_catalog(settings)
    with TestClient(create_app(dead), base_url=BASE) as c:
        for path in ("/api/alerts/rules", "/api/logs"):
            r = c.get(path)
            assert r.status_code == 503, r.text
            assert r.json() == {"error": "catalog unavailable"}
            assert r.headers["Retry-After"].isdigit()
            _assert_names_nothing(r.text, port)
    assert str(port) in caplog.text  # the detail goes to the server log


def test_catalog_outage_inside_a_route_is_503_catalog_unavailable(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the key check (open mode known), the route's own catalog query fails."""
    dead, port = _dead_catalog(settings)
    monkeypatch.setattr(KeyCache, "cached_keys_configured", lambda self: False)
    with TestClient(create_app(dead), base_url=BASE, raise_server_exceptions=False) as c:
        r = c.get("/api/alerts/rules")
        assert r.status_code == 503, r.text
        assert r.json() == {"error": "catalog unavailable"}
        _assert_names_nothing(r.text, port)


# -- Offline /docs and the root page -----------------------------------------------------


def test_docs_reference_no_external_host_and_their_assets_answer(
    client: TestClient, make_key: MakeKey
) -> None:
    make_key("read")  # keyed mode: the pages and their assets stay open
    for page in ("/docs", "/redoc"):
        r = client.get(page)
        assert r.status_code == 200
        html = r.text
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), html
        assert "cdn." not in html and "fonts.googleapis" not in html
        assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
        assert assets, html
        for asset in assets:
            a = client.get(asset)
            assert a.status_code == 200 and len(a.content) > 1000, asset


def test_root_points_at_docs_dashboard_and_health(
    client: TestClient, settings: Settings, make_key: MakeKey
) -> None:
    make_key("read")
    r = client.get("/")
    assert r.status_code == 200
    for link in ("/docs", "/health", settings.dashboard_url):
        assert link in r.text, link
    assert client.get("/", headers={"Accept": "application/json"}).json()["docs"] == "/docs"


# -- Over real HTTP ----------------------------------------------------------------------


@pytest.mark.slow
def test_live_server_refuses_big_headers_and_foreign_hosts(tmp_path: Path) -> None:
    """``workbench serve`` (uvicorn, httptools): 431 for a 64 KB header, 400 for a rebinding Host."""
    data = tmp_path / "data"
    data.mkdir()
    server = LiveServer(data).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            r = http.post(
                "/api/logs", json=EVENT, headers={"Authorization": "Bearer " + "x" * 65536}
            )
            assert r.status_code == 431
            assert http.get("/api/logs", headers={"Host": "rebind.example:4000"}).status_code == 400
            r = http.post("/api/logs", json=EVENT, headers={"Origin": "https://evil.example"})
            assert r.status_code == 403
            assert http.post("/api/logs", json=EVENT).status_code == 202
            assert http.get("/").status_code == 200
    finally:
        server.stop()
