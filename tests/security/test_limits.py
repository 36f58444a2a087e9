"""Query limits: the widest from/to span and the deepest offset page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ingest_api.app import create_app
from workbench.config import Settings
from workbench.errors import ValidationError
from workbench.security.limits import check_search_limits

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def check(
    start: datetime | None = None, end: datetime | None = None, page: int = 1, limit: int = 20,
    cursor: str | None = None,
) -> None:
    """Apply limits of 30 days and a page depth of 1000 at NOW."""
    check_search_limits(
        start=start, end=end, page=page, limit=limit, cursor=cursor, now=NOW, max_days=30,
        max_page_depth=1000,
    )


def test_within_limits() -> None:
    check(start=NOW - timedelta(days=30), end=NOW, page=10, limit=100)
    check()  # no range: the newest logs, as the original API


def test_span_too_wide_names_from() -> None:
    with pytest.raises(ValidationError) as err:
        check(start=NOW - timedelta(days=31))
    assert "30 days" in err.value.details["from"][0]


def test_page_too_deep_names_page_and_points_to_the_cursor() -> None:
    with pytest.raises(ValidationError) as err:
        check(page=11, limit=100)
    assert "nextCursor" in err.value.details["page"][0]
    check(page=11, limit=100, cursor="abc")  # with a cursor, page is ignored


def test_the_http_search_applies_the_limits(settings: Settings, engine: Engine) -> None:
    """``GET /api/logs`` answers 400 naming ``from`` or ``page``; a cursor goes deeper."""
    tight = settings.model_copy(update={"max_query_days": 7, "max_page_depth": 200})
    with TestClient(create_app(tight)) as client:
        wide = client.get("/api/logs", params={"from": "2020-01-01T00:00:00Z"})
        assert wide.status_code == 400
        assert "7 days" in wide.json()["details"]["from"][0]
        deep = client.get("/api/logs", params={"page": 3, "limit": 100})
        assert deep.status_code == 400
        assert "nextCursor" in deep.json()["details"]["page"][0]
        assert client.get("/api/logs", params={"page": 2, "limit": 100}).status_code == 200
        narrow = client.get(
            "/api/logs", params={"from": "2026-11-20T00:00:00Z", "to": "2026-11-26T00:00:00Z"}
        )
        assert narrow.status_code == 200
