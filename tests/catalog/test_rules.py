"""Rules, channels, silences and runs in the catalog (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError as SchemaError
from sqlmodel import Session

from tests.catalog.conftest import NOW
from tests.catalog.factories import add_incident
from workbench.catalog import channels, rules, runs, silences
from workbench.catalog.models import Decision, Delivery, EvaluationRun
from workbench.catalog.schemas import (
    ChannelCreate,
    ChannelPublic,
    ChannelUpdate,
    RuleCreate,
    RulePublic,
    RuleUpdate,
    SilenceCreate,
)
from workbench.errors import NotFound, ValidationError


def _rule(
    session: Session, service: str = "auth-service", now: datetime = NOW, **kw: object
) -> uuid.UUID:
    data = RuleCreate.model_validate(
        {"service": service, "threshold": 5, "windowMinutes": 10, **kw}
    )
    return rules.create_rule(session=session, data=data, now=now).id


def test_create_rule_defaults_and_roundtrip(session: Session) -> None:
    rule_id = _rule(session, cooldownMinutes=15)
    rule = rules.get_rule(session=session, rule_id=rule_id)
    assert (rule.threshold, rule.window_minutes, rule.cooldown_minutes) == (5, 10, 15)
    assert rule.levels == ["error", "fatal"]  # D4: fatal counts by default
    assert rule.severity == "warning" and rule.enabled
    assert rule.created_at == NOW and rule.created_at.tzinfo is not None
    public = RulePublic.model_validate(rule).model_dump(mode="json", by_alias=True)
    assert public["windowMinutes"] == 10 and public["cooldownMinutes"] == 15
    assert public["createdAt"] == "2026-11-20T12:00:00.000Z"
    assert public["lastTriggeredAt"] is None


def test_list_update_toggle_delete(session: Session) -> None:
    a = _rule(session, "a")
    b = _rule(session, "b", now=NOW + timedelta(seconds=1))
    assert [r.id for r in rules.list_rules(session=session)] == [a, b]
    later = NOW + timedelta(minutes=1)
    rules.update_rule(
        session=session,
        rule_id=a,
        data=RuleUpdate.model_validate({"threshold": 7, "messageContains": "timeout"}),
        now=later,
    )
    rules.set_rule_enabled(session=session, rule_id=a, enabled=False, now=later)
    rule = rules.get_rule(session=session, rule_id=a)
    assert (rule.threshold, rule.message_contains, rule.enabled) == (7, "timeout", False)
    assert rule.updated_at == later and rule.created_at == NOW
    rules.update_rule(
        session=session,
        rule_id=a,
        data=RuleUpdate.model_validate({"messageContains": None}),
        now=later,
    )
    assert rules.get_rule(session=session, rule_id=a).message_contains is None
    rules.delete_rule(session=session, rule_id=b, now=later)
    assert [r.id for r in rules.list_rules(session=session)] == [a]


def test_unknown_rule_raises_not_found(session: Session) -> None:
    missing = uuid.uuid4()
    with pytest.raises(NotFound):
        rules.get_rule(session=session, rule_id=missing)
    with pytest.raises(NotFound):
        rules.set_rule_enabled(session=session, rule_id=missing, enabled=True, now=NOW)
    with pytest.raises(NotFound):
        rules.delete_rule(session=session, rule_id=missing, now=NOW)


def test_deleting_a_rule_keeps_its_incidents(session: Session) -> None:
    rule_id = _rule(session)
    rule = rules.get_rule(session=session, rule_id=rule_id)
    incident = add_incident(session, now=NOW, rule=rule)
    rules.delete_rule(session=session, rule_id=rule_id, now=NOW)
    session.expire_all()
    from workbench.catalog.incidents import get_incident

    kept = get_incident(session=session, incident_id=incident.id)
    assert kept.rule_id is None and kept.fingerprint == incident.fingerprint
    assert kept.status == "resolved"  # history kept, but nothing left open forever


def test_deleting_a_rule_resolves_its_active_incidents(session: Session) -> None:
    from workbench.catalog.incidents import get_incident, incident_timeline

    rule_id = _rule(session)
    rule = rules.get_rule(session=session, rule_id=rule_id)
    active = add_incident(session, now=NOW, rule=rule)
    old = add_incident(
        session, now=NOW, rule=rule, status="resolved", resolved_at=NOW, fingerprint="old"
    )
    later = NOW + timedelta(minutes=5)
    rules.delete_rule(session=session, rule_id=rule_id, now=later, actor="bob")
    session.expire_all()
    done = get_incident(session=session, incident_id=active.id)
    assert (done.status, done.resolved_at, done.resolved_by, done.rule_id) == (
        "resolved",
        later,
        "bob",
        None,
    )
    assert incident_timeline(session=session, incident_id=active.id)[-1].data["reason"] == (
        "rule deleted"
    )
    assert get_incident(session=session, incident_id=old.id).resolved_at == NOW


def test_list_services_unions_rules_and_incidents(session: Session) -> None:
    _rule(session, "b-svc")
    _rule(session, "a-svc")
    _rule(session, "a-svc")
    add_incident(session, now=NOW, service="old-svc")
    assert rules.list_services(session=session) == ["a-svc", "b-svc", "old-svc"]


def test_naive_now_is_refused(session: Session) -> None:
    data = RuleCreate(service="x", threshold=1, window_minutes=1)
    with pytest.raises(ValueError, match="timezone"):
        rules.create_rule(session=session, data=data, now=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"threshold": 0, "windowMinutes": 5}, "threshold"),
        ({"threshold": 1, "windowMinutes": 0}, "windowMinutes"),
        ({"threshold": 1, "windowMinutes": 1441}, "windowMinutes"),
        ({"threshold": 1, "windowMinutes": 5, "cooldownMinutes": 10081}, "cooldownMinutes"),
        ({"threshold": 1, "windowMinutes": 5, "levels": ["panic"]}, "levels"),
        ({"threshold": 1, "windowMinutes": 5, "levels": []}, "levels"),
        ({"threshold": 1, "windowMinutes": 5, "severity": "huge"}, "severity"),
        ({"threshold": 1, "windowMinutes": 5, "service": ""}, "service"),
    ],
)
def test_rule_create_validation_names_the_camel_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(SchemaError) as err:
        RuleCreate.model_validate({"service": "x", **body})
    assert field in {str(e["loc"][0]) for e in err.value.errors()}


def test_levels_are_case_insensitive_and_deduplicated() -> None:
    rule = RuleCreate.model_validate(
        {"service": "x", "threshold": 1, "windowMinutes": 1, "levels": ["ERROR", "error", "Warn"]}
    )
    assert rule.levels == ["error", "warn"]


# ---------------------------------------------------------------- channels


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "https://",
        "example.com/hook",
        "http://exa mple.com",
        "https://x:99999/",
    ],
)
def test_channel_target_must_be_http_url_with_host(url: str) -> None:
    with pytest.raises(SchemaError) as err:
        ChannelCreate.model_validate({"type": "webhook", "target": url})
    assert err.value.errors()[0]["loc"][0] == "target"


def test_channel_crud_and_secret_is_never_shown(session: Session) -> None:
    data = ChannelCreate.model_validate(
        {"type": "webhook", "target": "https://hooks.example.com/x", "secret": "s3cr3t"}
    )
    channel = channels.create_channel(session=session, data=data, now=NOW)
    public = ChannelPublic.model_validate(channel).model_dump(mode="json", by_alias=True)
    assert public["hasSecret"] is True and "secret" not in public
    assert "s3cr3t" not in str(public)
    channels.set_channel_enabled(session=session, channel_id=channel.id, enabled=False)
    assert [c.id for c in channels.list_channels(session=session, enabled=False)] == [channel.id]
    channels.update_channel(
        session=session, channel_id=channel.id, data=ChannelUpdate.model_validate({"secret": None})
    )
    assert (
        ChannelPublic.model_validate(
            channels.get_channel(session=session, channel_id=channel.id)
        ).has_secret
        is False
    )
    channels.delete_channel(session=session, channel_id=channel.id)
    with pytest.raises(NotFound):
        channels.delete_channel(session=session, channel_id=channel.id)


def test_private_webhook_refused_when_not_allowed(session: Session) -> None:
    data = ChannelCreate(target="http://127.0.0.1:9/hook")
    with pytest.raises(ValidationError) as err:
        channels.create_channel(session=session, data=data, now=NOW, allow_private=False)
    assert "target" in err.value.details
    assert channels.create_channel(session=session, data=data, now=NOW).target == data.target


# ---------------------------------------------------------------- silences


def test_silences_active_window(session: Session) -> None:
    s1 = silences.create_silence(
        session=session,
        data=SilenceCreate.model_validate({"service": "a", "durationMinutes": 30}),
        now=NOW,
    )
    future = silences.create_silence(
        session=session,
        data=SilenceCreate.model_validate(
            {
                "ruleId": str(uuid.uuid4()),
                "startsAt": "2026-11-20T13:00:00+01:00",  # 12:00Z: normalised to UTC
                "endsAt": "2026-11-20T15:00:00Z",
            }
        ),
        now=NOW - timedelta(hours=1),
    )
    assert future.starts_at == NOW
    assert {s.id for s in silences.active_silences(session=session, now=NOW)} == {s1.id, future.id}
    later = NOW + timedelta(minutes=31)
    assert [s.id for s in silences.active_silences(session=session, now=later)] == [future.id]
    silences.delete_silence(session=session, silence_id=future.id)
    assert silences.active_silences(session=session, now=later) == []


@pytest.mark.parametrize(
    "body",
    [
        {"durationMinutes": 5},  # no scope
        {"service": "a"},  # no end
        {"service": "a", "endsAt": "2026-11-20T15:00:00"},  # naive
        {"service": "a", "endsAt": "2026-11-20T15:00:00Z", "durationMinutes": 5},
    ],
)
def test_silence_create_rejects(body: dict[str, object]) -> None:
    with pytest.raises(SchemaError):
        SilenceCreate.model_validate(body)


def test_silence_ending_in_the_past_is_refused(session: Session) -> None:
    data = SilenceCreate.model_validate({"service": "a", "endsAt": "2026-11-20T11:00:00Z"})
    with pytest.raises(ValidationError) as err:
        silences.create_silence(session=session, data=data, now=NOW)
    assert "endsAt" in err.value.details


# ---------------------------------------------------------------- runs, decisions, deliveries


def test_runs_decisions_deliveries_newest_first(session: Session) -> None:
    assert runs.latest_run(session=session) is None
    ids = []
    for i in range(3):
        t = NOW + timedelta(minutes=i)
        run = EvaluationRun(now=t, started_at=t, status="ok")
        session.add(run)
        session.flush()
        ids.append(run.id)
    assert runs.latest_run(session=session).id == ids[-1]  # type: ignore[union-attr]
    assert [r.id for r in runs.list_runs(session=session, limit=2)] == ids[:0:-1]
    rule_a, rule_b = uuid.uuid4(), uuid.uuid4()
    for i, rule_id in enumerate([rule_a, rule_b, rule_a]):
        session.add(
            Decision(
                run_id=ids[i],
                rule_id=rule_id,
                at=NOW + timedelta(minutes=i),
                fingerprint=f"s:{rule_id}",
                count=i,
                threshold=1,
                action="none",
                reason="below",
            )
        )
    session.flush()
    assert [d.count for d in runs.list_decisions(session=session, rule_id=rule_a)] == [2, 0]
    assert len(runs.list_decisions(session=session, limit=2)) == 2
    incident = add_incident(session, now=NOW)
    for i in range(2):
        session.add(
            Delivery(
                incident_id=incident.id,
                event_type="error_alert",
                url="https://h.example/x",
                payload={"n": i},
                next_attempt_at=NOW,
                created_at=NOW + timedelta(seconds=i),
            )
        )
    session.flush()
    found = runs.list_deliveries(session=session, incident_id=incident.id)
    assert [d.payload["n"] for d in found] == [1, 0]
    assert runs.list_deliveries(session=session, incident_id=uuid.uuid4()) == []


def test_timestamps_come_back_aware_utc(session: Session) -> None:
    rule_id = _rule(session)
    session.expire_all()
    rule = rules.get_rule(session=session, rule_id=rule_id)
    assert rule.created_at.utcoffset() == timedelta(0) and rule.created_at.tzinfo is not None
    assert rule.created_at == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
