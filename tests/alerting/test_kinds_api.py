"""Rule kinds at the API edge (issue 14): the fields per kind, their defaults, 400s naming the field.

A body without ``kind`` is today's threshold rule, unchanged; the other kinds take
their own fields and refuse the others. Changes are checked against the rule as it
will be after the change.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ingest_api.app import _install_error_handlers
from ingest_api.routes import alerts
from workbench.catalog.db import dispose_engine, get_engine, init_db
from workbench.config import Settings

BASE = {"service": "auth-service", "threshold": 10, "windowMinutes": 5}


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    """A client of the alerts routes on a fresh, migrated SQLite catalog."""
    init_db(get_engine(settings.database_url))
    app = FastAPI()
    app.state.settings = settings
    _install_error_handlers(app)
    app.include_router(alerts.router)
    with TestClient(app) as client:
        yield client
    dispose_engine(settings.database_url)


def _create(api: TestClient, **fields: Any) -> dict[str, Any]:
    r = api.post("/api/alerts/rules", json={**BASE, **fields})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _refused(api: TestClient, body: dict[str, Any], field: str) -> str:
    r = api.post("/api/alerts/rules", json={**BASE, **body})
    assert r.status_code == 400, r.text
    details = r.json()["details"]
    assert field in details, details
    return str(details[field][0])


def test_a_body_without_kind_is_todays_threshold_rule(api: TestClient) -> None:
    rule = _create(api, messageContains="timeout")
    assert rule["kind"] == "threshold"
    assert rule["levels"] == ["error", "fatal"]
    assert rule["messageContains"] == "timeout"
    assert (rule["minEvents"], rule["match"], rule["baselineDays"], rule["sensitivity"]) == (
        None,
        None,
        None,
        None,
    )


def test_each_kind_gets_its_defaults(api: TestClient) -> None:
    assert _create(api, kind="ratio", threshold=20)["minEvents"] == 20
    assert _create(api, kind="ratio", threshold=20, minEvents=5)["minEvents"] == 5
    pattern = _create(api, kind="new_pattern", threshold=1)
    assert pattern["baselineDays"] == 7 and pattern["sensitivity"] is None
    anomaly = _create(api, kind="anomaly", threshold=3)
    assert (anomaly["baselineDays"], anomaly["sensitivity"]) == (7, 3.0)
    match = _create(api, kind="match", threshold=1, match="Connection REFUSED")
    assert match["match"] == "Connection REFUSED"
    absence = _create(api, kind="absence", threshold=1)
    assert absence["levels"] == ["debug", "info", "warn", "error", "fatal"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"kind": "match"}, "match", "required"),
        ({"kind": "match", "match": "   "}, "match", "required"),
        ({"kind": "ratio", "messageContains": "x"}, "messageContains", "ratio"),
        ({"kind": "threshold", "minEvents": 5}, "minEvents", "ratio"),
        ({"kind": "match", "match": "x", "baselineDays": 3}, "baselineDays", "anomaly"),
        ({"kind": "new_pattern", "sensitivity": 2}, "sensitivity", "anomaly"),
        ({"kind": "absence", "levels": ["error"]}, "levels", "every level"),
        ({"kind": "absence", "match": "x"}, "match", "absence"),
        ({"kind": "ratio", "threshold": 101}, "threshold", "percent"),
        ({"kind": "anomaly", "baselineDays": 0}, "baselineDays", ""),
        ({"kind": "anomaly", "baselineDays": 29}, "baselineDays", ""),
        ({"kind": "anomaly", "sensitivity": 0}, "sensitivity", ""),
        ({"kind": "ratio", "minEvents": 0}, "minEvents", ""),
        ({"kind": "seasonal"}, "kind", ""),
    ],
)
def test_invalid_combinations_are_400_naming_the_field(
    api: TestClient, body: dict[str, Any], field: str, words: str
) -> None:
    assert words in _refused(api, body, field)


def test_a_change_is_checked_against_the_rule_after_it(api: TestClient) -> None:
    ratio = _create(api, kind="ratio", threshold=20, minEvents=50)
    url = f"/api/alerts/rules/{ratio['id']}"
    r = api.patch(url, json={"messageContains": "x"})
    assert r.status_code == 400 and "messageContains" in r.json()["details"], r.text
    r = api.patch(url, json={"threshold": 120})
    assert r.status_code == 400 and "threshold" in r.json()["details"], r.text
    r = api.patch(url, json={"kind": "match"})
    assert r.status_code == 400 and "match" in r.json()["details"], r.text
    # Changing the kind clears the old kind's fields and fills the new one's defaults.
    assert api.patch(url, json={"kind": "anomaly", "threshold": 5}).status_code == 200
    after = api.get(url).json()
    assert (after["kind"], after["minEvents"], after["baselineDays"], after["sensitivity"]) == (
        "anomaly",
        None,
        7,
        3.0,
    )
    assert api.patch(url, json={"sensitivity": 4.5}).json() is not None
    assert api.get(url).json()["sensitivity"] == 4.5


def test_a_threshold_rule_toggles_and_tunes_as_before(api: TestClient) -> None:
    rule = _create(api, messageContains="timeout")
    url = f"/api/alerts/rules/{rule['id']}"
    assert api.patch(url, json={"enabled": False}).status_code == 200
    assert api.patch(url, json={"threshold": 500}).status_code == 200
    after = api.get(url).json()
    assert (after["enabled"], after["threshold"], after["messageContains"], after["kind"]) == (
        False,
        500,
        "timeout",
        "threshold",
    )
