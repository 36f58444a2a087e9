"""Evidence in firing notifications: top patterns, newest events (bounded), links; one read per
incident per tick, shared by every channel. Real Parquet lake, real SQLite catalog."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.engine import Engine

from tests.alerting.conftest import Clock, add_channel, add_errors, add_rule, deliveries, incidents
from tests.factories import write_events
from workbench.alerting import evidence as ev
from workbench.alerting.evaluate import evaluate

DASH = "http://dash.example/"


def _evaluate(engine: Engine, lake_url: str, clock: Clock) -> None:
    evaluate(engine=engine, lake_url=lake_url, now=clock.now, dashboard_url=DASH)


def test_evidence_has_top_patterns_newest_sample_and_links(
    sqlite_engine: Engine, lake_url: str, clock: Clock
) -> None:
    rule = add_rule(sqlite_engine, threshold=5, window_minutes=10, levels=["error", "fatal"])
    add_channel(sqlite_engine, "http://127.0.0.1:9/hook")
    # Seven patterns: the five biggest are kept, most frequent first.
    for i, n in enumerate([9, 8, 7, 6, 5, 2, 1]):
        add_errors(
            lake_url, clock.now - timedelta(minutes=1), n, message=f"kind{'x' * i} failed id {i}42"
        )
    add_errors(lake_url, clock.now, 3, level="info", message="not counted")  # other level
    add_errors(lake_url, clock.now, 3, service="billing", message="not counted")  # other service
    long_text = "L" * 2000
    write_events(
        lake_url,
        [
            {
                "timestamp": clock.now - timedelta(milliseconds=1),
                "service": "auth",
                "level": "fatal",
                "message": long_text,
                "meta": {"blob": "m" * 3000, "route": "/login"},
            }
        ],
    )
    write_events(  # outside the window: never sampled
        lake_url,
        [
            {
                "timestamp": clock.now - timedelta(minutes=11),
                "service": "auth",
                "level": "error",
                "message": "too old",
            }
        ],
    )
    _evaluate(sqlite_engine, lake_url, clock)

    [dl] = deliveries(sqlite_engine)
    [inc] = incidents(sqlite_engine)
    evidence: dict[str, Any] = dl.payload["evidence"]
    top = evidence["topPatterns"]
    assert len(top) == ev.TOP_PATTERNS
    assert [p["count"] for p in top] == [9, 8, 7, 6, 5]
    assert top[0]["pattern"] == "kind failed id <num>"
    assert top[0]["example"] == "kind failed id 042"

    sample = evidence["sample"]
    assert len(sample) == ev.SAMPLE_SIZE
    stamps = [s["timestamp"] for s in sample]
    assert stamps == sorted(stamps, reverse=True)
    newest = sample[0]
    assert newest["level"] == "fatal"
    assert len(newest["message"]) == ev.MESSAGE_CHARS and newest["message"].endswith("…")
    assert len(newest["meta"]) == ev.META_CHARS and newest["meta"].endswith("…")
    assert all(s["message"] not in ("not counted", "too old") for s in sample)

    assert evidence["dashboardUrl"] == (
        f"http://dash.example/voila/render/incidents.ipynb?incident={inc.id}"
    )
    logs = urlsplit(evidence["logsUrl"])
    assert logs.path == "/voila/render/logs.ipynb"
    query = parse_qs(logs.query)
    assert query["service"] == ["auth"] and query["level"] == ["error,fatal"]
    assert query["from"] == ["2026-11-20T11:50:00.000Z"] and query["to"] == [
        "2026-11-20T12:00:00.000Z"
    ]
    assert str(rule.id) == dl.payload["ruleId"]


def test_one_read_per_incident_whatever_the_number_of_channels(
    sqlite_engine: Engine, lake_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_rule(sqlite_engine, service="auth")
    add_rule(sqlite_engine, service="billing", name="billing errors")
    for i in range(3):
        add_channel(sqlite_engine, f"http://127.0.0.1:9/hook{i}")
    add_errors(lake_url, clock.now, 7, service="auth")
    add_errors(lake_url, clock.now, 7, service="billing")
    reads: list[str] = []
    real = ev.window_rows

    def counting(lake: str, rule: Any, now: Any) -> Any:
        reads.append(rule.service)
        return real(lake, rule, now)

    monkeypatch.setattr(ev, "window_rows", counting)
    _evaluate(sqlite_engine, lake_url, clock)
    assert sorted(reads) == ["auth", "billing"]  # one per incident, not one per channel
    sent = deliveries(sqlite_engine)
    assert len(sent) == 6
    by_service: dict[str, list[Any]] = {}
    for d in sent:
        by_service.setdefault(d.payload["service"], []).append(d.payload["evidence"])
    assert all(len({repr(e) for e in group}) == 1 for group in by_service.values())

    # A steady-state tick pages nobody and reads nothing for evidence.
    reads.clear()
    clock.advance(1)
    _evaluate(sqlite_engine, lake_url, clock)
    assert reads == []


def test_a_failing_read_still_pages_and_says_why(
    sqlite_engine: Engine, lake_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_rule(sqlite_engine)
    add_channel(sqlite_engine, "http://127.0.0.1:9/hook")
    add_errors(lake_url, clock.now, 7)

    def broken(*args: Any) -> Any:
        raise OSError("lake unreachable")

    monkeypatch.setattr(ev, "window_rows", broken)
    _evaluate(sqlite_engine, lake_url, clock)
    [dl] = deliveries(sqlite_engine)
    assert dl.payload["evidence"]["error"] == "OSError: lake unreachable"
    assert dl.payload["evidence"]["sample"] == []
    assert "logsUrl" in dl.payload["evidence"]
