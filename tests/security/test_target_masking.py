"""Webhook target URLs are secrets in practice (Slack-style paths, ``?token=``): ``read`` keys see
them masked (scheme and host only), ``admin`` keys and the open loopback mode see them whole."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ingest_api.app import create_app
from tests.catalog.factories import add_incident
from tests.security.conftest import NOW, MakeKey
from workbench.catalog.db import session_scope
from workbench.catalog.models import Delivery
from workbench.config import Settings
from workbench.security.webhooks import mask_target

TARGET = "https://hooks.example.com:8443/services/T0001/B0002/s3cr3tPath?token=s3cr3tQuery"
MASKED = "https://hooks.example.com:8443/***"


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def _seed(client: TestClient, engine: Engine, headers: dict[str, str]) -> str:
    """Create a channel on TARGET and one delivery to it; return the incident id."""
    res = client.post("/api/alerts/channels", json={"target": TARGET, "name": "pager"}, headers=headers)
    assert res.status_code == 201, res.text
    with session_scope(engine) as s:
        incident = add_incident(s, now=NOW)
        s.add(
            Delivery(
                incident_id=incident.id,
                event_type="error_alert",
                url=TARGET,
                payload={"type": "error_alert"},
                next_attempt_at=NOW,
                created_at=NOW,
            )
        )
        return str(incident.id)


def _views(client: TestClient, incident_id: str, headers: dict[str, str]) -> list[str]:
    """Every target/url the read routes show."""
    channels = client.get("/api/alerts/channels", headers=headers)
    deliveries = client.get("/api/alerts/deliveries", headers=headers)
    detail = client.get(f"/api/alerts/incidents/{incident_id}", headers=headers)
    for res in (channels, deliveries, detail):
        assert res.status_code == 200, res.text
    return (
        [c["target"] for c in channels.json()]
        + [d["url"] for d in deliveries.json()]
        + [d["url"] for d in detail.json()["deliveries"]]
    )


def test_read_key_sees_targets_masked(client: TestClient, engine: Engine, make_key: MakeKey) -> None:
    admin = {"X-API-Key": make_key("admin")}
    read = {"X-API-Key": make_key("read")}
    incident_id = _seed(client, engine, admin)
    assert _views(client, incident_id, read) == [MASKED] * 3
    for path in ("/api/alerts/channels", "/api/alerts/deliveries", f"/api/alerts/incidents/{incident_id}"):
        assert "s3cr3t" not in client.get(path, headers=read).text, path


def test_admin_key_sees_targets_whole(client: TestClient, engine: Engine, make_key: MakeKey) -> None:
    admin = {"X-API-Key": make_key("admin")}
    incident_id = _seed(client, engine, admin)
    assert _views(client, incident_id, admin) == [TARGET] * 3
    # A key with both scopes is an admin.
    both = {"X-API-Key": make_key("read", "admin")}
    assert _views(client, incident_id, both) == [TARGET] * 3


def test_open_loopback_mode_sees_targets_whole(client: TestClient, engine: Engine) -> None:
    # No key exists and the server is on loopback: the API is open, as for an admin.
    incident_id = _seed(client, engine, {})
    assert _views(client, incident_id, {}) == [TARGET] * 3


@pytest.mark.parametrize(
    "url,masked",
    [
        (TARGET, MASKED),
        ("https://hooks.example.com", "https://hooks.example.com/***"),
        ("http://[2606:2800:220:1::1]:80/x", "http://[2606:2800:220:1::1]:80/***"),
        ("HTTPS://Hooks.Example.com/a#frag", "https://hooks.example.com/***"),
        ("https://user:pw@hooks.example.com/a", "https://hooks.example.com/***"),
        ("not a url", "***"),
    ],
)
def test_mask_target_keeps_scheme_and_host_only(url: str, masked: str) -> None:
    assert mask_target(url) == masked
