"""``GET /health`` says whether the API is open (no key created yet) or keyed."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from workbench.catalog.db import get_engine, init_db, session_scope
from workbench.config import Settings
from workbench.security.keys import create_key, revoke_key

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_health_mode_goes_keyed_with_the_first_key_and_stays_keyed(
    client: TestClient, settings: Settings
) -> None:
    assert client.get("/health").json()["mode"] == "open"
    init_db(get_engine(settings.database_url))
    with session_scope(get_engine(settings.database_url)) as s:
        key, token = create_key(session=s, name="svc", scopes=["ingest"], now=NOW)
        key_id = str(key.id)
    client.app.state.key_cache.clear()  # type: ignore[attr-defined]  # else noticed within 2 s
    assert client.get("/health").json()["mode"] == "keyed"
    event = {"service": "a", "level": "info", "message": "m"}
    assert client.post("/api/logs", json=event).status_code == 401
    with session_scope(get_engine(settings.database_url)) as s:
        revoke_key(session=s, ident=key_id, now=NOW)
    client.app.state.key_cache.clear()  # type: ignore[attr-defined]
    assert client.get("/health").json()["mode"] == "keyed"  # revoking does not reopen the API
