"""An outsider's attacks on today's rule kinds and channel templates, through the HTTP API.

Each hostile input must be a 400 naming the field (never a 500 or a traceback) or
be handled: text fields refuse NUL (PostgreSQL cannot store it: a 500 there), numeric
fields refuse ``true``/``false``, and a channel template can neither crash the
preview or the tick (recursion), change the payload it renders (evidence lost from
the Slack/email body), nor make one render allocate or loop without bound.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.test_alerts_api import _app
from workbench.alerting.preview import sample_payload
from workbench.catalog.db import dispose_engine, get_engine, init_db
from workbench.catalog.templates import render_or_none
from workbench.config import Settings

RULE = {"service": "svc", "threshold": 5, "windowMinutes": 5}
HOOK = "https://example.com/hook"


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    init_db(get_engine(settings.database_url))
    with TestClient(_app(settings), raise_server_exceptions=False) as client:
        yield client
    dispose_engine(settings.database_url)


def _rule(api: TestClient, **body: Any) -> str:
    res = api.post("/api/alerts/rules", json={**RULE, **body})
    assert res.status_code == 201, res.text
    return str(res.json()["id"])


# ---------------------------------------------------------------- NUL in text fields


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/alerts/rules", {**RULE, "kind": "match", "match": "a\x00b"}, "match"),
        ("/api/alerts/rules", {**RULE, "service": "a\x00b"}, "service"),
        ("/api/alerts/rules", {**RULE, "name": "a\x00b"}, "name"),
        ("/api/alerts/rules", {**RULE, "messageContains": "\x00"}, "messageContains"),
        ("/api/alerts/channels", {"target": HOOK, "template": "hi\x00"}, "template"),
        ("/api/alerts/channels", {"target": HOOK, "name": "a\x00"}, "name"),
        (
            "/api/alerts/silences",
            {"service": "x", "durationMinutes": 5, "reason": "\x00"},
            "reason",
        ),
    ],
)
def test_nul_in_a_text_field_is_a_400_naming_it(
    api: TestClient, path: str, body: dict[str, Any], field: str
) -> None:
    res = api.post(path, json=body)
    assert res.status_code == 400, res.text
    assert "NUL" in " ".join(res.json()["details"][field])


def test_nul_in_a_patched_match_is_a_400_and_the_rule_is_unchanged(api: TestClient) -> None:
    rid = _rule(api, kind="match", match="a.*b")
    res = api.patch(f"/api/alerts/rules/{rid}", json={"match": "x\x00"})
    assert res.status_code == 400 and "match" in res.json()["details"]
    assert api.get(f"/api/alerts/rules/{rid}").json()["match"] == "a.*b"


def test_unicode_and_regex_looking_match_is_kept_literally(api: TestClient) -> None:
    for text in ("a.*b", "[", "é\u202e\u200b", "tab\there"):
        rid = _rule(api, kind="match", match=text)
        assert api.get(f"/api/alerts/rules/{rid}").json()["match"] == text


# ---------------------------------------------------------------- booleans as numbers


@pytest.mark.parametrize(
    "body",
    [
        {"threshold": True},
        {"windowMinutes": True},
        {"kind": "anomaly", "baselineDays": True},
        {"kind": "anomaly", "sensitivity": True},
        {"kind": "ratio", "minEvents": False},
        {"pendingMinutes": True},
        {"recoveryThreshold": False},
    ],
)
def test_a_boolean_where_a_number_is_expected_is_a_400(
    api: TestClient, body: dict[str, Any]
) -> None:
    res = api.post("/api/alerts/rules", json={**RULE, **body})
    assert res.status_code == 400, res.text
    field = next(k for k in body if k != "kind")
    assert field in res.json()["details"]
    rid = _rule(api, **{k: v for k, v in body.items() if k == "kind"})
    res = api.patch(f"/api/alerts/rules/{rid}", json={field: body[field]})
    assert res.status_code == 400 and field in res.json()["details"], res.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"sensitivity": NaN}', "sensitivity"),
        ('{"sensitivity": Infinity}', "sensitivity"),
        ('{"recoveryThreshold": NaN}', "recoveryThreshold"),
        ('{"baselineDays": 0}', "baselineDays"),
        ('{"baselineDays": 2.5}', "baselineDays"),
        ('{"threshold": 1e30}', "threshold"),
    ],
)
def test_nan_inf_zero_and_fractions_are_400s_naming_the_field(
    api: TestClient, body: str, field: str
) -> None:
    rid = _rule(api, kind="anomaly")
    res = api.patch(
        f"/api/alerts/rules/{rid}", content=body, headers={"content-type": "application/json"}
    )
    assert res.status_code == 400 and field in res.json()["details"], res.text


def test_kind_change_clears_stale_fields_and_match_needs_match(api: TestClient) -> None:
    rid = _rule(api, kind="anomaly", sensitivity=5, baselineDays=3)
    res = api.patch(f"/api/alerts/rules/{rid}", json={"kind": "match"})
    assert res.status_code == 400 and "match" in res.json()["details"]
    assert api.patch(f"/api/alerts/rules/{rid}", json={"kind": "match", "match": "x"}).is_success
    rule = api.get(f"/api/alerts/rules/{rid}").json()
    assert (rule["sensitivity"], rule["baselineDays"], rule["match"]) == (None, None, "x")


# ---------------------------------------------------------------- templates


def _channel(api: TestClient, template: str, channel_type: str = "slack") -> str:
    res = api.post(
        "/api/alerts/channels",
        json={"type": channel_type, "target": HOOK, "template": template, "enabled": False},
    )
    assert res.status_code == 201, res.text
    return str(res.json()["id"])


@pytest.mark.parametrize("channel_type", ["slack", "webhook"])
def test_a_recursive_macro_falls_back_to_the_default_text_in_preview(
    api: TestClient, channel_type: str
) -> None:
    cid = _channel(api, "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", channel_type)
    res = api.post(f"/api/alerts/channels/{cid}/preview")
    assert res.status_code == 200, res.text
    assert res.json()["text"].startswith("[FIRING] example")
    assert "Recursion" in res.json()["templateError"]


@pytest.mark.parametrize(
    "template",
    [
        "{{ payload.evidence.clear() }}x",
        "{{ payload.update(service='z') }}x",
        "{{ payload.evidence.sample.pop() }}x",
        "{{ payload.__setitem__('url', 'https://evil.example') }}x",
    ],
)
def test_a_template_cannot_change_the_payload_it_renders(api: TestClient, template: str) -> None:
    from datetime import UTC, datetime

    payload = sample_payload(datetime(2026, 12, 3, tzinfo=UTC), "http://dash")
    before = copy.deepcopy(payload)
    text, error = render_or_none(template, payload)
    assert payload == before
    assert text is None and error is not None
    cid = _channel(api, template)
    blocks = api.post(f"/api/alerts/channels/{cid}/preview").json()["body"]["blocks"]
    assert any("Top patterns" in b.get("text", {}).get("text", "") for b in blocks)


@pytest.mark.parametrize(
    "template",
    [
        "{{ lipsum(1000000) }}",
        "{{ 'x'|center(300000000) }}",
        "{{ 'x'.ljust(300000000) }}",
        "{{ '{:>300000000}'.format(1) }}",
        "{{ '%300000000d' % 1 }}",
        "{{ '%*d' % (300000000, 1) }}",
        "{{ '%300000000d'|format(1) }}",
        "{{ ((((9**99)**99)**99)**99)**99 }}",
        "{% set ns = namespace(a=9) %}{% for i in range(40) %}{% set ns.a = ns.a * ns.a %}"
        "{% endfor %}{{ 1 }}",
        "{% set ns = namespace(a='xy') %}{% for i in range(40) %}{% set ns.a = ns.a ~ ns.a %}"
        "{% endfor %}{{ 1 }}",
        "{% set ns = namespace(a='xy') %}{% for i in range(40) %}{% set ns.a = ns.a + ns.a %}"
        "{% endfor %}{{ 1 }}",
        "{{ ('x' * 99999).replace('x', 'y' * 99999) }}",
        "{{ ('x' * 99999)|replace('x', 'y' * 99999) }}",
        "{{ ('x' * 99999).join(['a'] * 99999) }}",
        "{{ ('x' * 99999).join((['a'] * 99999)|map('upper')) }}",
        "{{ (['a' * 99999] * 99999)|join }}",
        "{{ (['a'] * 99999)|join('x' * 99999) }}",
        "{{ ('\t' * 99999).expandtabs(99999) }}",
    ],
)
def test_a_template_cannot_allocate_or_compute_without_bound(template: str) -> None:
    _renders_refused_at_once(template)


_DOUBLED = (
    "{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}"
    "{% endfor %}"
)


@pytest.mark.parametrize(
    "template",
    [
        _DOUBLED + "{{ ns.a }}",
        _DOUBLED + "{{ ns.a|string|length }}",
        _DOUBLED + "{{ [ns.a]|join }}",
        _DOUBLED + "{{ 'x' ~ ns.a }}",
        _DOUBLED + "{{ '%s' % (ns.a,) }}",
        _DOUBLED + "{{ ns.a|tojson|length }}",
        _DOUBLED + "{{ '{}'.format(ns.a) }}",
        _DOUBLED + "{{ ns.a|pprint|length }}",
        "{{ ['x' * 99999] * 99999 }}",
        "{{ (['x' * 99999] * 99999)|string|length }}",
    ],
)
def test_a_template_cannot_print_a_structure_without_bound(template: str) -> None:
    """Shared references make a small structure whose text is exponential (2**40 lists)."""
    _renders_refused_at_once(template)


def _renders_refused_at_once(template: str) -> None:
    started = time.monotonic()
    text, error = render_or_none(template, {"service": "s", "type": "error_alert"})
    assert time.monotonic() - started < 1.0
    assert text is None and error is not None


# ---------------------------------------------------------------- the Logs page's link window


@pytest.mark.parametrize(
    ("start", "end"), [("9999-12-31", "9999-12-31"), ("2026-01-01", "9999-12-31")]
)
def test_a_link_window_ending_on_the_last_day_is_a_validation_error_naming_to(
    start: str, end: str
) -> None:
    from workbench.dashboard.logs import link_window
    from workbench.errors import ValidationError

    with pytest.raises(ValidationError) as caught:
        link_window(start, end)
    assert "to" in caught.value.details


# ---------------------------------------------------------------- what held (kept as tests)


def test_a_template_rendering_to_blank_sends_the_default_text(api: TestClient) -> None:
    for channel_type in ("slack", "webhook"):
        cid = _channel(api, "{% if false %}x{% endif %}  \n ", channel_type)
        res = api.post(f"/api/alerts/channels/{cid}/preview")  # the channel is disabled
        assert res.status_code == 200, res.text
        assert res.json()["subject"].startswith("[FIRING] example: 12 errors")
        assert res.json()["body"]["text"].startswith("[FIRING] example: 12 errors")


def test_an_email_subject_is_one_line_whatever_the_template(data_dir: Any) -> None:
    smtp = "smtp://127.0.0.1:2525?starttls=false&from=alerts@workbench.test"
    settings = Settings(WORKBENCH_DATA_DIR=data_dir, WORKBENCH_SMTP_URL=smtp)  # type: ignore[call-arg]
    init_db(get_engine(settings.database_url))
    with TestClient(_app(settings), raise_server_exceptions=False) as api:
        res = api.post(
            "/api/alerts/channels",
            json={
                "type": "email",
                "target": "oncall@example.com",
                "template": "\r\n  a\r\nBcc: evil@example.com\u2028\x0bb",
            },
        )
        assert res.status_code == 201, res.text
        preview = api.post(f"/api/alerts/channels/{res.json()['id']}/preview").json()
    dispose_engine(settings.database_url)
    assert preview["body"]["subject"] == preview["subject"] == "a"


def test_ratio_over_silence_anomaly_without_history_and_literal_match_evaluate_quietly(
    api: TestClient, settings: Settings
) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.factories import write_events
    from workbench.alerting.evaluate import evaluate

    now = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
    messages = ["axxb", "[oops", "A.*B literal", "100% cpu"]
    write_events(
        settings.lake_url,
        [
            {
                "timestamp": now - timedelta(seconds=5),
                "service": "svc",
                "level": "error",
                "message": m,
            }
            for m in messages
        ],
    )
    rules = {
        "ratio": dict(service="ghost", kind="ratio", threshold=50, minEvents=1),
        "anomaly": dict(service="ghost", kind="anomaly", threshold=1, sensitivity=0.0001),
        "new": dict(service="svc", kind="new_pattern", threshold=1, baselineDays=28),
        "a.*b": dict(kind="match", match="a.*b", threshold=1),
        "[": dict(kind="match", match="[", threshold=1),
        "_": dict(kind="match", match="_", threshold=1),
    }
    for name, body in rules.items():
        _rule(api, name=name, **body)
    result = evaluate(
        engine=get_engine(settings.database_url),
        lake_url=settings.lake_url,
        now=now,
        dashboard_url="http://dash",
        dry_run=True,
    )
    got = {o.name: (o.count, o.reason) for o in result.outcomes}
    assert got == {
        "ratio": (0, "too_few_events"),
        "anomaly": (0, "no_baseline"),
        "new": (got["new"][0], "no_baseline"),  # no history: nothing is new yet
        "a.*b": (1, "created"),
        "[": (1, "created"),
        "_": (0, "below_threshold"),
    }


@pytest.mark.parametrize(
    "template",
    [
        "{{ '{} errors'.format(errorCount) }}",
        "{{ '%d errors' % errorCount }}",
        "{{ '%d errors'|format(errorCount) }}",
        "{{ '%s errors' % (errorCount,) }}",
        "{{ errorCount ~ ' errors' }}",
        "{{ [errorCount, 'errors']|join(' ') }}",
    ],
)
def test_the_bounds_leave_big_counts_alone(template: str) -> None:
    text, error = render_or_none(template, {"errorCount": 2_000_000})
    assert (text, error) == ("2000000 errors", None)
