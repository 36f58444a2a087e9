"""The /api/alerts/* routes: the original contract (paths, codes, camelCase keys) and the extras.

The app here is the alerts router plus the app's error handlers on an isolated
catalog, so the ingestor of the full app's lifespan does not run.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ingest_api.app import _install_error_handlers
from ingest_api.routes import alerts
from tests.alerting.conftest import add_errors
from tests.catalog.factories import add_incident
from workbench.alerting.evaluate import evaluate
from workbench.catalog.db import dispose_engine, get_engine, init_db, session_scope
from workbench.catalog.models import Decision, EvaluationRun, IncidentEvent
from workbench.config import Settings

NOW = datetime.now(UTC).replace(microsecond=0)
RULE = {"service": "auth-service", "threshold": 10, "windowMinutes": 5, "cooldownMinutes": 15}


def _app(settings: Settings) -> FastAPI:
    app = FastAPI()
    app.state.settings = settings
    _install_error_handlers(app)
    app.include_router(alerts.router)
    return app


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    """A client of the alerts routes on a fresh, migrated SQLite catalog."""
    init_db(get_engine(settings.database_url))
    with TestClient(_app(settings)) as client:
        yield client
    dispose_engine(settings.database_url)


def _incident(settings: Settings, **kw: Any) -> uuid.UUID:
    with session_scope(get_engine(settings.database_url)) as s:
        return add_incident(s, now=NOW, **kw).id


# ---------------------------------------------------------------- rules


def test_rule_lifecycle_as_the_original(api: TestClient) -> None:
    assert api.get("/api/alerts/rules").json() == []
    created = api.post("/api/alerts/rules", json=RULE)
    assert created.status_code == 201
    rule = created.json()
    assert {k: rule[k] for k in RULE} == RULE
    assert rule["enabled"] is True and rule["lastTriggeredAt"] is None
    assert rule["levels"] == ["error", "fatal"] and rule["severity"] == "warning"
    assert rule["createdAt"].endswith("Z")
    uuid.UUID(rule["id"])

    toggled = api.patch(f"/api/alerts/rules/{rule['id']}", json={"enabled": False})
    assert (toggled.status_code, toggled.json()) == (200, {"status": "updated"})
    assert api.get("/api/alerts/rules").json()[0]["enabled"] is False

    changed = api.patch(
        f"/api/alerts/rules/{rule['id']}", json={"threshold": 3, "severity": "critical"}
    )
    assert changed.json() == {"status": "updated"}
    got = api.get(f"/api/alerts/rules/{rule['id']}").json()
    assert (got["threshold"], got["severity"], got["windowMinutes"]) == (3, "critical", 5)

    assert api.get("/api/alerts/services").json() == ["auth-service"]
    deleted = api.delete(f"/api/alerts/rules/{rule['id']}")
    assert (deleted.status_code, deleted.json()) == (200, {"status": "deleted"})
    assert api.get("/api/alerts/rules").json() == []
    assert api.delete(f"/api/alerts/rules/{rule['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**RULE, "threshold": 0}, "threshold"),
        ({**RULE, "windowMinutes": 2000}, "windowMinutes"),
        ({**RULE, "cooldownMinutes": -1}, "cooldownMinutes"),
        ({k: v for k, v in RULE.items() if k != "windowMinutes"}, "windowMinutes"),
        ({**RULE, "levels": ["nope"]}, "levels.0"),
        ({**RULE, "windowMinute": 5}, "windowMinute"),
    ],
)
def test_invalid_rule_is_400_naming_the_camel_field(
    api: TestClient, body: dict[str, Any], field: str
) -> None:
    res = api.post("/api/alerts/rules", json=body)
    assert res.status_code == 400
    assert res.json()["error"]
    assert field in res.json()["details"], res.json()


def test_patch_rule_rejects_nonsense(api: TestClient) -> None:
    rule_id = api.post("/api/alerts/rules", json=RULE).json()["id"]
    assert api.patch(f"/api/alerts/rules/{rule_id}", json={"enabled": "maybe"}).status_code == 400
    assert api.patch(f"/api/alerts/rules/{rule_id}", json={}).status_code == 400
    assert api.patch(f"/api/alerts/rules/{rule_id}", json={"threshold": None}).status_code == 400
    assert api.patch(f"/api/alerts/rules/{uuid.uuid4()}", json={"enabled": True}).status_code == 404


def test_malformed_id_is_400_naming_id(api: TestClient) -> None:
    res = api.patch("/api/alerts/rules/not-a-uuid", json={"enabled": True})
    assert res.status_code == 400 and "id" in res.json()["details"]
    assert api.post("/api/alerts/incidents/42/acknowledge").status_code == 400


# ---------------------------------------------------------------- channels


def test_channel_lifecycle_as_the_original(api: TestClient) -> None:
    body = {"type": "webhook", "target": "https://example.com/webhook"}
    created = api.post("/api/alerts/channels", json=body)
    assert created.status_code == 201
    channel = created.json()
    assert (channel["type"], channel["target"], channel["enabled"]) == (
        "webhook",
        "https://example.com/webhook",
        True,
    )
    assert channel["hasSecret"] is False
    cid = channel["id"]
    assert api.patch(f"/api/alerts/channels/{cid}", json={"enabled": False}).json() == {
        "status": "updated"
    }
    assert api.get("/api/alerts/channels").json()[0]["enabled"] is False
    assert api.delete(f"/api/alerts/channels/{cid}").json() == {"status": "deleted"}
    assert api.get("/api/alerts/channels").json() == []
    assert api.patch(f"/api/alerts/channels/{cid}", json={"enabled": True}).status_code == 404


def test_channel_secret_is_never_returned(api: TestClient) -> None:
    api.post(
        "/api/alerts/channels",
        json={"type": "webhook", "target": "https://example.com/h", "secret": "hunter2"},
    )
    listed = api.get("/api/alerts/channels")
    assert "hunter2" not in listed.text and listed.json()[0]["hasSecret"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"type": "webhook", "target": "not a url"},
        {"type": "webhook", "target": "ftp://example.com/x"},
        {"type": "webhook", "target": "https://"},
        {"type": "email", "target": "https://example.com/x"},
        {"type": "webhook"},
    ],
)
def test_invalid_channel_is_400(api: TestClient, body: dict[str, Any]) -> None:
    res = api.post("/api/alerts/channels", json=body)
    assert res.status_code == 400
    assert set(res.json()["details"]) & {"target", "type"}


def test_private_webhook_refused_when_settings_forbid(data_dir: Any) -> None:
    settings = Settings(WORKBENCH_DATA_DIR=data_dir, WORKBENCH_ALLOW_PRIVATE_WEBHOOKS=False)  # type: ignore[call-arg]
    with TestClient(_app(settings)) as client:
        res = client.post(
            "/api/alerts/channels", json={"type": "webhook", "target": "http://127.0.0.1:1/x"}
        )
    dispose_engine(settings.database_url)
    assert res.status_code == 400 and "target" in res.json()["details"]


# ---------------------------------------------------------------- incidents


def test_incidents_newest_first_with_original_keys(api: TestClient, settings: Settings) -> None:
    old = _incident(settings, service="a", triggered_at=NOW - timedelta(hours=1))
    new = _incident(settings, service="b")
    listed = api.get("/api/alerts/incidents").json()
    assert [i["id"] for i in listed] == [str(new), str(old)]
    keys = {
        "id", "service", "fingerprint", "errorCount", "windowMinutes", "triggeredAt",
        "lastSeenErrorAt", "status", "acknowledgedAt", "resolvedAt",
    }  # fmt: skip
    assert keys <= set(listed[0])
    assert listed[0]["triggeredAt"].endswith("Z") and listed[0]["acknowledgedAt"] is None
    assert [i["id"] for i in api.get("/api/alerts/incidents?service=a").json()] == [str(old)]
    assert api.get("/api/alerts/incidents?status=resolved").json() == []
    assert api.get("/api/alerts/incidents?status=closed").status_code == 400
    assert api.get("/api/alerts/services").json() == ["a", "b"]


def test_acknowledge_resolve_and_conflict(api: TestClient, settings: Settings) -> None:
    iid = _incident(settings)
    ack = api.post(f"/api/alerts/incidents/{iid}/acknowledge", json={"actor": "alice"})
    assert (ack.status_code, ack.json()) == (200, {"ok": True})
    assert api.post(f"/api/alerts/incidents/{iid}/acknowledge").json() == {"ok": True}
    res = api.post(f"/api/alerts/incidents/{iid}/resolve")  # no body at all: actor "api"
    assert res.json() == {"ok": True}
    assert api.post(f"/api/alerts/incidents/{iid}/resolve").json() == {"ok": True}
    conflict = api.post(f"/api/alerts/incidents/{iid}/acknowledge")
    assert conflict.status_code == 409
    assert conflict.json()["status"] == "resolved" and conflict.json()["error"]

    detail = api.get(f"/api/alerts/incidents/{iid}").json()
    assert detail["status"] == "resolved"
    assert (detail["acknowledgedBy"], detail["resolvedBy"]) == ("alice", "api")
    assert [(e["kind"], e["actor"]) for e in detail["timeline"]] == [
        ("created", "evaluator"),
        ("acknowledged", "alice"),
        ("resolved", "api"),
    ]
    assert detail["deliveries"] == []


def test_unknown_incident_is_404(api: TestClient) -> None:
    missing = uuid.uuid4()
    assert api.get(f"/api/alerts/incidents/{missing}").status_code == 404
    assert api.post(f"/api/alerts/incidents/{missing}/acknowledge").status_code == 404
    assert api.post(f"/api/alerts/incidents/{missing}/resolve").status_code == 404


def test_deleting_a_rule_resolves_its_open_incident(api: TestClient, settings: Settings) -> None:
    rule_id = uuid.UUID(api.post("/api/alerts/rules", json=RULE).json()["id"])
    from workbench.catalog.models import AlertRule

    with session_scope(get_engine(settings.database_url)) as s:
        rule = s.get(AlertRule, rule_id)
        iid = add_incident(s, now=NOW, rule=rule).id
    assert api.delete(f"/api/alerts/rules/{rule_id}").json() == {"status": "deleted"}
    detail = api.get(f"/api/alerts/incidents/{iid}").json()
    assert (detail["status"], detail["ruleId"]) == ("resolved", None)
    assert detail["timeline"][-1]["data"]["reason"] == "rule deleted"


def test_action_body_is_optional_but_checked(api: TestClient, settings: Settings) -> None:
    iid = _incident(settings)
    assert api.post(f"/api/alerts/incidents/{iid}/acknowledge", json={}).json() == {"ok": True}
    bad = api.post(f"/api/alerts/incidents/{iid}/resolve", json={"actor": ""})
    assert bad.status_code == 400 and "actor" in bad.json()["details"]


def test_query_parameters_are_named_in_camel_case(api: TestClient) -> None:
    res = api.get("/api/alerts/decisions?ruleId=nope")
    assert res.status_code == 400 and "ruleId" in res.json()["details"]
    assert api.get("/api/alerts/incidents?limit=0").status_code == 400


# ---------------------------------------------------------------- silences, runs, decisions


def test_silences_crud(api: TestClient) -> None:
    created = api.post(
        "/api/alerts/silences",
        json={"service": "auth-service", "durationMinutes": 30, "reason": "deploy"},
    )
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    assert created.json()["endsAt"].endswith("Z")
    assert [s["id"] for s in api.get("/api/alerts/silences?active=true").json()] == [sid]
    assert api.delete(f"/api/alerts/silences/{sid}").json() == {"status": "deleted"}
    assert api.get("/api/alerts/silences").json() == []
    naive = api.post("/api/alerts/silences", json={"service": "x", "endsAt": "2030-01-01T00:00:00"})
    assert naive.status_code == 400 and "endsAt" in naive.json()["details"]
    past = api.post("/api/alerts/silences", json={"service": "x", "endsAt": "2020-01-01T00:00:00Z"})
    assert past.status_code == 400 and "endsAt" in past.json()["details"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"startsAt": "0001-01-01T00:00:00+14:00", "durationMinutes": 5}, "startsAt"),
        ({"startsAt": "9999-12-31T23:59:59-14:00", "durationMinutes": 5}, "startsAt"),
        ({"endsAt": "0001-01-01T00:00:00+14:00"}, "endsAt"),
        ({"endsAt": "9999-12-31T23:59:59-14:00"}, "endsAt"),
        # In range, but its end (start + duration) is not.
        ({"startsAt": "9999-12-31T23:00:00Z", "durationMinutes": 120}, "durationMinutes"),
    ],
)
def test_out_of_range_silence_times_are_400_naming_the_field(
    api: TestClient, body: dict[str, Any], field: str
) -> None:
    res = api.post("/api/alerts/silences", json={"service": "x", **body})
    assert res.status_code == 400, res.text
    assert field in res.json()["details"], res.text


def test_silence_to_the_end_of_time_is_kept(api: TestClient) -> None:
    res = api.post("/api/alerts/silences", json={"service": "x", "endsAt": "9999-12-31T23:59:59Z"})
    assert res.status_code == 201, res.text
    assert res.json()["endsAt"] == "9999-12-31T23:59:59.000Z"


def test_silence_everything_must_be_explicit(api: TestClient) -> None:
    """Proves: no scope at all is refused (a forgotten field must not mute all alerting), and
    the refusal says how to ask for it; ``matchAll`` with a scope is refused as ambiguous."""
    implicit = api.post("/api/alerts/silences", json={"durationMinutes": 30})
    assert implicit.status_code == 400
    assert "matchAll" in implicit.text
    for scope in ({"service": "x"}, {"ruleId": str(uuid.uuid4())}):
        both = api.post(
            "/api/alerts/silences", json={"matchAll": True, "durationMinutes": 30, **scope}
        )
        assert both.status_code == 400 and "matchAll" in both.text, both.text
    assert api.get("/api/alerts/silences").json() == []


def test_maintenance_window_silences_every_rule(api: TestClient, settings: Settings) -> None:
    """Proves: ``{"matchAll": true}`` makes a silence with neither service nor rule, shown as
    such, and the evaluator then suppresses every rule's breach (reason ``silenced``)."""
    for service in ("auth-service", "billing"):
        assert api.post("/api/alerts/rules", json={**RULE, "service": service}).status_code == 201
    created = api.post(
        "/api/alerts/silences",
        json={"matchAll": True, "durationMinutes": 60, "reason": "maintenance window"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["matchAll"], body["service"], body["ruleId"]) == (True, None, None)
    assert api.get("/api/alerts/silences?active=true").json()[0]["matchAll"] is True
    scoped = api.post("/api/alerts/silences", json={"service": "x", "durationMinutes": 5})
    assert scoped.json()["matchAll"] is False

    now = datetime.now(UTC)
    for service in ("auth-service", "billing"):
        add_errors(settings.lake_url, now, 12, service=service)
    engine = get_engine(settings.database_url)
    result = evaluate(engine=engine, lake_url=settings.lake_url, now=now, dashboard_url="http://d")
    assert sorted((o.action, o.reason) for o in result.outcomes) == [("suppress", "silenced")] * 2
    assert api.get("/api/alerts/incidents").json() == []
    # Ending the window ends the silence: the same breach now pages.
    api.delete(f"/api/alerts/silences/{body['id']}")
    result = evaluate(engine=engine, lake_url=settings.lake_url, now=now, dashboard_url="http://d")
    assert sorted(o.action for o in result.outcomes) == ["create", "create"]


def test_runs_and_decisions(api: TestClient, settings: Settings) -> None:
    assert api.get("/api/alerts/runs/latest").json() is None
    rule_id = uuid.uuid4()
    with session_scope(get_engine(settings.database_url)) as s:
        run = EvaluationRun(
            now=NOW, started_at=NOW, finished_at=NOW, status="ok", outcomes={"none": 1}
        )
        s.add(run)
        s.flush()
        s.add(
            Decision(
                run_id=run.id, rule_id=rule_id, at=NOW, fingerprint=f"a:{rule_id}",
                count=3, threshold=10, action="none", reason="below_threshold",
            )
        )  # fmt: skip
        s.add(
            Decision(
                run_id=run.id, rule_id=uuid.uuid4(), at=NOW, fingerprint="b:x",
                count=0, threshold=1, action="none", reason="below_threshold",
            )
        )  # fmt: skip
    runs = api.get("/api/alerts/runs").json()
    assert runs[0]["status"] == "ok" and runs[0]["rulesEvaluated"] == 0
    assert api.get("/api/alerts/runs/latest").json()["id"] == runs[0]["id"]
    decisions = api.get(f"/api/alerts/decisions?ruleId={rule_id}").json()
    assert [(d["ruleId"], d["reason"]) for d in decisions] == [(str(rule_id), "below_threshold")]
    assert len(api.get("/api/alerts/decisions").json()) == 2


def test_timeline_event_times_are_utc_z(api: TestClient, settings: Settings) -> None:
    iid = _incident(settings)
    with session_scope(get_engine(settings.database_url)) as s:
        s.add(
            IncidentEvent(
                incident_id=iid, at=NOW + timedelta(seconds=1), kind="seen", data={"n": 1}
            )
        )
    timeline = api.get(f"/api/alerts/incidents/{iid}").json()["timeline"]
    assert [e["kind"] for e in timeline] == ["created", "seen"]
    assert all(e["at"].endswith("Z") for e in timeline)


@pytest.mark.postgres
def test_contract_on_postgres(postgres_url: str, data_dir: Any) -> None:
    settings = Settings(WORKBENCH_DATA_DIR=data_dir, DATABASE_URL=postgres_url)  # type: ignore[call-arg]
    try:
        with TestClient(_app(settings)) as client:
            rule = client.post("/api/alerts/rules", json=RULE).json()
            assert client.patch(
                f"/api/alerts/rules/{rule['id']}", json={"enabled": False}
            ).json() == {"status": "updated"}
            iid = _incident(settings)
            assert client.post(f"/api/alerts/incidents/{iid}/resolve").json() == {"ok": True}
            assert client.post(f"/api/alerts/incidents/{iid}/acknowledge").status_code == 409
            assert client.get("/api/alerts/incidents").json()[0]["resolvedAt"].endswith("Z")
    finally:
        dispose_engine(postgres_url)


# ---------------------------------------------------------------- send test (notifier edge)


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    answer = 204

    def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
        length = int(self.headers.get("Content-Length", "0"))
        type(self).received.append(json.loads(self.rfile.read(length) or b"{}"))
        self.send_response(type(self).answer)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    """A webhook receiver on loopback; yields its URL."""
    _Receiver.received = []
    _Receiver.answer = 204
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def test_send_test_to_a_channel(api: TestClient, receiver: str) -> None:
    pytest.importorskip(
        "workbench.alerting.notify", reason="notifier (workbench/alerting/notify.py) missing"
    )
    cid = api.post("/api/alerts/channels", json={"type": "webhook", "target": receiver}).json()[
        "id"
    ]
    res = api.post(f"/api/alerts/channels/{cid}/test")
    assert res.status_code == 200, res.text
    assert res.json()["ok"] is True and res.json()["delivery"]["status"] == "sent"
    assert len(_Receiver.received) == 1
    assert api.post(f"/api/alerts/channels/{uuid.uuid4()}/test").status_code == 404


def test_send_test_failure_is_502(api: TestClient, receiver: str) -> None:
    pytest.importorskip(
        "workbench.alerting.notify", reason="notifier (workbench/alerting/notify.py) missing"
    )
    _Receiver.answer = 500
    cid = api.post("/api/alerts/channels", json={"type": "webhook", "target": receiver}).json()[
        "id"
    ]
    res = api.post(f"/api/alerts/channels/{cid}/test")
    assert res.status_code == 502
    assert res.json()["ok"] is False and res.json()["error"]


def test_routes_are_wired_in_the_full_app(client: TestClient) -> None:
    """The real app (create_app, lifespan included) serves the alerts routes and documents them."""
    assert client.post("/api/alerts/rules", json=RULE).status_code == 201
    assert client.get("/api/alerts/services").json() == ["auth-service"]
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/alerts/rules",
        "/api/alerts/rules/{id}",
        "/api/alerts/channels",
        "/api/alerts/channels/{id}/test",
        "/api/alerts/incidents",
        "/api/alerts/incidents/{id}/acknowledge",
        "/api/alerts/incidents/{id}/resolve",
        "/api/alerts/services",
    ):
        assert path in paths
