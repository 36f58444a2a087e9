"""Changing or deleting a rule through the API while its incident is open, with the real evaluator.

Held-out scenario (issue 12 item 7): a rule's service changed while its incident is
open used to leave that incident open forever, and the next breach of the new
service opened a second active incident for the same rule. Runs on SQLite and on
PostgreSQL (the alerts routes over a real catalog, the evaluator over a real lake).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from tests.alerting.conftest import add_errors
from tests.api.test_alerts_api import _app
from workbench.alerting.evaluate import evaluate
from workbench.catalog.db import dispose_engine, get_engine, init_db
from workbench.catalog.models import ACTIVE_STATUSES, AlertIncident
from workbench.config import Settings

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
MIN = timedelta(minutes=1)
RULE = {"name": "auth burst", "service": "auth-service", "threshold": 5, "windowMinutes": 5,
        "cooldownMinutes": 0}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def alerting(request: pytest.FixtureRequest, data_dir: Any) -> Iterator[tuple[TestClient, Settings]]:
    """The alerts routes and the settings of their catalog (SQLite file or a PostgreSQL database)."""
    extra = {}
    if request.param == "postgres":
        extra["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    settings = Settings(WORKBENCH_DATA_DIR=data_dir, **extra)  # type: ignore[arg-type]
    init_db(get_engine(settings.database_url))
    try:
        with TestClient(_app(settings)) as client:
            yield client, settings
    finally:
        dispose_engine(settings.database_url)


def _tick(settings: Settings, at: datetime) -> dict[str, int]:
    result = evaluate(
        engine=get_engine(settings.database_url), lake_url=settings.lake_url, now=at,
        dashboard_url="http://127.0.0.1/",
    )
    return result.counts()


def _incidents(settings: Settings, rule_id: str) -> list[AlertIncident]:
    with Session(get_engine(settings.database_url)) as s:
        return list(
            s.exec(select(AlertIncident).where(AlertIncident.rule_id == uuid.UUID(rule_id))).all()
        )


def _active(settings: Settings, rule_id: str) -> list[AlertIncident]:
    return [i for i in _incidents(settings, rule_id) if i.status in ACTIVE_STATUSES]


def _breaching_rule(client: TestClient, settings: Settings) -> tuple[str, str]:
    """Create the rule, make it breach and evaluate: return (rule id, open incident id)."""
    rule_id = client.post("/api/alerts/rules", json=RULE).json()["id"]
    add_errors(settings.lake_url, NOW, 8, service="auth-service")
    assert _tick(settings, NOW) == {"created": 1}
    (incident,) = _active(settings, rule_id)
    return rule_id, str(incident.id)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"service": "billing"}, "rule changed: service"),
        ({"levels": ["fatal"]}, "rule changed: levels"),
        ({"messageContains": "timeout"}, "rule changed: message filter"),
    ],
)
def test_changing_what_a_rule_watches_resolves_its_open_incident(
    alerting: tuple[TestClient, Settings], change: dict[str, Any], reason: str
) -> None:
    client, settings = alerting
    rule_id, incident_id = _breaching_rule(client, settings)
    assert client.patch(f"/api/alerts/rules/{rule_id}", json=change).status_code == 200
    detail = client.get(f"/api/alerts/incidents/{incident_id}").json()
    assert (detail["status"], detail["resolvedBy"]) == ("resolved", "api")
    assert detail["timeline"][-1]["data"]["reason"] == reason


def test_after_a_service_change_a_breach_has_one_active_incident(
    alerting: tuple[TestClient, Settings],
) -> None:
    client, settings = alerting
    rule_id, first = _breaching_rule(client, settings)
    client.patch(f"/api/alerts/rules/{rule_id}", json={"service": "billing"})
    add_errors(settings.lake_url, NOW + MIN, 9, service="billing")
    assert _tick(settings, NOW + MIN) == {"created": 1}
    (active,) = _active(settings, rule_id)
    assert active.service == "billing" and str(active.id) != first
    assert len(_incidents(settings, rule_id)) == 2


def test_tuning_the_threshold_keeps_the_incident_and_the_next_tick_decides(
    alerting: tuple[TestClient, Settings],
) -> None:
    client, settings = alerting
    rule_id, incident_id = _breaching_rule(client, settings)
    client.patch(f"/api/alerts/rules/{rule_id}", json={"threshold": 6, "windowMinutes": 10})
    assert client.get(f"/api/alerts/incidents/{incident_id}").json()["status"] == "open"
    assert _tick(settings, NOW + MIN) == {"updated": 1}  # 8 errors in 10 min still >= 6
    client.patch(f"/api/alerts/rules/{rule_id}", json={"threshold": 50})
    assert _tick(settings, NOW + 2 * MIN) == {"below_threshold": 1}
    assert [i.id for i in _active(settings, rule_id)] == [uuid.UUID(incident_id)]


def test_deleting_the_rule_resolves_its_incident(alerting: tuple[TestClient, Settings]) -> None:
    client, settings = alerting
    rule_id, incident_id = _breaching_rule(client, settings)
    assert client.delete(f"/api/alerts/rules/{rule_id}").json() == {"status": "deleted"}
    detail = client.get(f"/api/alerts/incidents/{incident_id}").json()
    assert (detail["status"], detail["ruleId"]) == ("resolved", None)
    assert detail["timeline"][-1]["data"]["reason"] == "rule deleted"
