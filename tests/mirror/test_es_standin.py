"""The stand-in itself (NOT Elasticsearch) is strict where the mirror relies on it.

These check the test double, so they run only against the stand-in.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.mirror.es_standin import ElasticStandin

NDJSON = {"Content-Type": "application/x-ndjson"}


def _bulk(server: ElasticStandin, body: bytes, **headers: str) -> httpx.Response:
    return httpx.put(f"{server.url}/_bulk", content=body, headers=headers or NDJSON)


def _error_type(resp: httpx.Response) -> str:
    body: dict[str, Any] = resp.json()
    return str(body["error"]["type"])


@pytest.mark.parametrize(
    ("body", "status", "etype"),
    [
        (b"", 400, "parse_exception"),
        (b'{"index":{"_index":"a"}}\n{"x":1}', 400, "illegal_argument_exception"),
        (b'{"upsert":{"_index":"a"}}\n{"x":1}\n', 400, "illegal_argument_exception"),
        (b'{"index":{"_index":"a","colour":"red"}}\n{"x":1}\n', 400, "illegal_argument_exception"),
        (b'{"index":{}}\n{"x":1}\n', 400, "action_request_validation_exception"),
        (b"not json\n", 400, "x_content_parse_exception"),
    ],
)
def test_standin_rejects_malformed_bulk_bodies(
    knobs: ElasticStandin, body: bytes, status: int, etype: str
) -> None:
    resp = _bulk(knobs, body)
    assert (resp.status_code, _error_type(resp)) == (status, etype)
    assert resp.headers["X-Elastic-Product"] == "Elasticsearch"


def test_standin_bulk_item_errors_do_not_fail_the_request(knobs: ElasticStandin) -> None:
    body = (
        b'{"index":{"_index":"app-logs-2026-11-20","_id":"1"}}\n{"meta":{"n":1}}\n'
        b'{"index":{"_index":"app-logs-2026-11-20","_id":"2"}}\n[1,2]\n'
        b'{"index":{"_index":"app-logs-2026-11-20","_id":"3"}}\n{"meta":{"n":"x"}}\n'
        b'{"index":{"_index":"App-Logs","_id":"4"}}\n{"meta":{}}\n'
        b'{"create":{"_index":"app-logs-2026-11-20","_id":"1"}}\n{"meta":{"n":2}}\n'
    )
    resp = _bulk(knobs, body)
    assert resp.status_code == 200
    out = resp.json()
    assert out["errors"] is True
    statuses = [next(iter(i.values()))["status"] for i in out["items"]]
    assert statuses == [201, 400, 400, 400, 409]
    types = [next(iter(i.values())).get("error", {}).get("type") for i in out["items"]]
    assert types[1:4] == [
        "document_parsing_exception",
        "document_parsing_exception",
        "invalid_index_name_exception",
    ]
    assert knobs.count("app-logs-*") == 1


def test_standin_rejects_unsupported_media_types_and_queries(knobs: ElasticStandin) -> None:
    resp = _bulk(knobs, b'{"index":{"_index":"a"}}\n{}\n', **{"Content-Type": "text/plain"})
    assert (resp.status_code, _error_type(resp)) == (400, "media_type_header_exception")
    resp = httpx.post(f"{knobs.url}/_search", json={"query": {"fuzzy_magic": {}}})
    assert (resp.status_code, _error_type(resp)) == (400, "parsing_exception")
    resp = httpx.post(f"{knobs.url}/missing/_count", json={})
    assert (resp.status_code, _error_type(resp)) == (404, "index_not_found_exception")
    resp = httpx.post(f"{knobs.url}/missing*/_count", json={})
    assert resp.json()["count"] == 0


def test_standin_template_validation(knobs: ElasticStandin) -> None:
    url = f"{knobs.url}/_index_template/t1"
    assert httpx.put(url, json={"template": {}}).status_code == 400
    bad = {
        "index_patterns": ["x-*"],
        "template": {"mappings": {"properties": {"a": {"type": "nope"}}}},
    }
    resp = httpx.put(url, json=bad)
    assert (resp.status_code, _error_type(resp)) == (400, "mapper_parsing_exception")
    ok = {"index_patterns": ["x-*"], "priority": 5}
    assert httpx.put(url, json=ok).json() == {"acknowledged": True}
    clash = httpx.put(
        f"{knobs.url}/_index_template/t2", json={"index_patterns": ["x-1*"], "priority": 5}
    )
    assert clash.status_code == 400
