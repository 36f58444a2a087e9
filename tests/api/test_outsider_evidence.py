"""An outsider's look at the evidence of a match rule's page: only the events it counted.

A ``match`` rule counts events whose message contains ``match`` (case-insensitive,
literal); its page's ``sample``, ``topPatterns`` and Logs link must be about those
events, not every error of the service. Real Parquet lake.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from tests.factories import write_events
from workbench.alerting.decide import RuleState
from workbench.alerting.evidence import gather_evidence
from workbench.config import Settings

NOW = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)


def _events(lake_url: str, message: str, n: int) -> None:
    write_events(
        lake_url,
        [
            {
                "timestamp": NOW - timedelta(seconds=i + 1),
                "service": "auth",
                "level": "error",
                "message": message,
            }
            for i in range(n)
        ],
    )


def test_a_match_rules_evidence_holds_only_the_matching_events(settings: Settings) -> None:
    _events(settings.lake_url, "timeout calling payments", 30)
    _events(settings.lake_url, "Disk FULL on /var (a.*b)", 3)
    rule = RuleState(
        rule_id="r1",
        service="auth",
        threshold=3,
        window=timedelta(minutes=5),
        kind="match",
        match="disk full on /var (a.*b",
    )
    evidence = gather_evidence(settings.lake_url, rule, NOW, "http://dash")
    assert [e["message"] for e in evidence["sample"]] == ["Disk FULL on /var (a.*b)"] * 3
    assert [p["count"] for p in evidence["topPatterns"]] == [3]
    query = parse_qs(urlsplit(evidence["logsUrl"]).query)
    assert query["text"] == ["disk full on /var (a.*b"]


def test_a_megabyte_message_and_meta_that_is_not_json_are_cut(settings: Settings) -> None:
    write_events(
        settings.lake_url,
        [
            {
                "timestamp": NOW - timedelta(seconds=1),
                "service": "auth",
                "level": "error",
                "message": "M" * 1_000_000,
                "meta": {"blob": "\x00\ud7ff" + "m" * 1_000_000},
            }
        ],
    )
    rule = RuleState(rule_id="r1", service="auth", threshold=1, window=timedelta(minutes=5))
    evidence = gather_evidence(settings.lake_url, rule, NOW, "http://dash")
    [event] = evidence["sample"]
    assert len(event["message"]) == 500 and event["message"].endswith("…")
    assert len(event["meta"]) == 1000 and event["meta"].endswith("…")
    assert len(evidence["topPatterns"][0]["example"]) == 500
