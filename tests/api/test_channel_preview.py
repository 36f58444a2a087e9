"""Channels of the three types over the API: validation at save (template line, SMTP setting),
``POST /api/alerts/channels/{id}/preview`` (sample, most recent incident, 404, nothing sent),
and a manual resolve through the API queueing ``error_alert_resolved`` to the paged channels."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.alerting.conftest import add_errors, deliveries
from tests.api.test_alerts_api import _app
from workbench.alerting.evaluate import evaluate
from workbench.catalog.db import dispose_engine, get_engine, init_db
from workbench.config import Settings

SMTP = "smtp://user:pw@127.0.0.1:2525?starttls=false&from=alerts@workbench.test"


@pytest.fixture
def smtp_settings(data_dir: Path) -> Settings:
    return Settings(WORKBENCH_DATA_DIR=data_dir, WORKBENCH_SMTP_URL=SMTP)  # type: ignore[call-arg]


@pytest.fixture
def api(smtp_settings: Settings) -> Iterator[TestClient]:
    init_db(get_engine(smtp_settings.database_url))
    with TestClient(_app(smtp_settings)) as client:
        yield client
    dispose_engine(smtp_settings.database_url)


def _create(api: TestClient, **body: Any) -> dict[str, Any]:
    res = api.post("/api/alerts/channels", json=body)
    assert res.status_code == 201, res.text
    return dict(res.json())


@pytest.mark.parametrize(
    ("channel_type", "target"),
    [
        ("webhook", "https://example.com/hook"),
        ("slack", "https://hooks.slack.com/services/T0/B0/x"),
        ("email", "oncall@example.com"),
    ],
)
def test_each_type_is_saved_with_its_template(
    api: TestClient, channel_type: str, target: str
) -> None:
    channel = _create(api, type=channel_type, target=target, template="{{ service }} is on fire")
    assert (channel["type"], channel["target"], channel["template"]) == (
        channel_type,
        target,
        "{{ service }} is on fire",
    )
    listed = api.get("/api/alerts/channels").json()
    assert [c["type"] for c in listed] == [channel_type]


def test_template_syntax_error_is_400_naming_template_and_line(api: TestClient) -> None:
    res = api.post(
        "/api/alerts/channels",
        json={"type": "slack", "target": "https://example.com/h", "template": "ok\n{{ service "},
    )
    assert res.status_code == 400
    [message] = res.json()["details"]["template"]
    assert message.startswith("line 2:")
    cid = _create(api, type="webhook", target="https://example.com/h")["id"]
    res = api.patch(f"/api/alerts/channels/{cid}", json={"template": "{% if %}"})
    assert res.status_code == 400 and "template" in res.json()["details"]


@pytest.mark.parametrize(
    ("channel_type", "target"),
    [("slack", "oncall@example.com"), ("email", "https://example.com/x"), ("email", "a@b, c@d.io")],
)
def test_target_must_fit_the_type(api: TestClient, channel_type: str, target: str) -> None:
    res = api.post("/api/alerts/channels", json={"type": channel_type, "target": target})
    assert res.status_code == 400 and "target" in res.json()["details"]


def test_email_channel_needs_the_smtp_setting(settings: Settings) -> None:
    assert settings.smtp_url == ""
    init_db(get_engine(settings.database_url))
    with TestClient(_app(settings)) as client:
        res = client.post(
            "/api/alerts/channels", json={"type": "email", "target": "oncall@example.com"}
        )
    dispose_engine(settings.database_url)
    assert res.status_code == 400
    assert "WORKBENCH_SMTP_URL" in res.json()["details"]


def test_preview_unknown_channel_is_404(api: TestClient) -> None:
    assert api.post(f"/api/alerts/channels/{uuid.uuid4()}/preview").status_code == 404


def test_preview_without_incidents_renders_a_sample(api: TestClient) -> None:
    cid = _create(api, type="slack", target="https://example.com/h", template="*{{ service }}*")[
        "id"
    ]
    res = api.post(f"/api/alerts/channels/{cid}/preview")
    assert res.status_code == 200
    preview = res.json()
    assert (preview["source"], preview["incidentId"], preview["text"]) == (
        "sample",
        None,
        "*example*",
    )
    assert preview["body"]["text"] == "*example*"
    assert preview["body"]["blocks"][0]["text"]["type"] == "mrkdwn"


def test_preview_of_the_most_recent_incident_sends_nothing(
    api: TestClient, smtp_settings: Settings
) -> None:
    engine = get_engine(smtp_settings.database_url)
    api.post(
        "/api/alerts/rules",
        json={"service": "auth", "threshold": 5, "windowMinutes": 10, "cooldownMinutes": 0},
    )
    cid = _create(
        api, type="email", target="oncall@example.com", template="{{ service }}: {{ errorCount }}"
    )["id"]
    from workbench import clock

    now = clock.now()
    add_errors(str(smtp_settings.lake_url), now, 7, message="token expired for user 42")
    evaluate(engine=engine, lake_url=smtp_settings.lake_url, now=now, dashboard_url="http://d")
    before = [(d.id, d.status, d.attempts) for d in deliveries(engine)]
    [incident] = api.get("/api/alerts/incidents").json()

    preview = api.post(f"/api/alerts/channels/{cid}/preview").json()
    assert (preview["source"], preview["incidentId"]) == ("incident", incident["id"])
    assert preview["subject"] == "auth: 7"
    assert preview["body"]["subject"] == "auth: 7"
    assert "token expired for user <num>" in preview["body"]["text"]
    assert f"incident={incident['id']}" in preview["body"]["html"]
    assert [(d.id, d.status, d.attempts) for d in deliveries(engine)] == before  # nothing sent


def test_api_resolve_queues_resolved_to_the_paged_channel(
    api: TestClient, smtp_settings: Settings
) -> None:
    engine = get_engine(smtp_settings.database_url)
    api.post(
        "/api/alerts/rules",
        json={"service": "auth", "threshold": 5, "windowMinutes": 10, "cooldownMinutes": 0},
    )
    cid = _create(api, type="webhook", target="https://example.com/h")["id"]
    from workbench import clock

    now = clock.now()
    add_errors(str(smtp_settings.lake_url), now, 7)
    evaluate(engine=engine, lake_url=smtp_settings.lake_url, now=now, dashboard_url="http://d")
    [incident] = api.get("/api/alerts/incidents").json()
    res = api.post(f"/api/alerts/incidents/{incident['id']}/resolve", json={"actor": "carol"})
    assert res.status_code == 200
    resolved = [d for d in deliveries(engine) if d.event_type == "error_alert_resolved"]
    assert [(str(d.channel_id), d.payload["reason"]) for d in resolved] == [
        (cid, "resolved by carol")
    ]
    assert resolved[0].payload["url"].startswith(smtp_settings.dashboard_url)


def test_slack_targets_follow_the_webhook_url_rule(data_dir: Path) -> None:
    settings = Settings(WORKBENCH_DATA_DIR=data_dir, WORKBENCH_ALLOW_PRIVATE_WEBHOOKS=False)  # type: ignore[call-arg]
    init_db(get_engine(settings.database_url))
    with TestClient(_app(settings)) as client:
        res = client.post(
            "/api/alerts/channels", json={"type": "slack", "target": "http://169.254.169.254/x"}
        )
        cid = client.post(
            "/api/alerts/channels", json={"type": "slack", "target": "https://hooks.slack.com/s"}
        ).json()["id"]
        moved = client.patch(f"/api/alerts/channels/{cid}", json={"target": "http://10.0.0.1/"})
        to_email = client.patch(f"/api/alerts/channels/{cid}", json={"type": "email"})
    dispose_engine(settings.database_url)
    assert res.status_code == 400 and "target" in res.json()["details"]
    assert moved.status_code == 400 and "target" in moved.json()["details"]
    # The type changes only with a target that fits it.
    assert to_email.status_code == 400 and "target" in to_email.json()["details"]
