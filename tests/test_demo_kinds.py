"""The demo shows every rule kind firing: generate(cases=True) plants one case per kind near
``now`` and seed_rules creates one rule per kind that catches it (issue 14 item 3).

End to end: a small demo lake and the demo rules in a temporary data directory, then a
real ``workbench evaluate --now`` process (SQLite catalog, local lake) opens one
incident per kind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from workbench.catalog.db import dispose_engine, get_engine, session_scope
from workbench.catalog.models import AlertIncident, AlertRule
from workbench.config import Settings
from workbench.demo import (
    DEMO_CASES,
    SILENT_MINUTES,
    TEMPLATES,
    demo_rule_names,
    generate,
    seed_rules,
    service_names,
)
from workbench.lake import reader

pytestmark = pytest.mark.slow

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday
KINDS = {"threshold", "ratio", "absence", "match", "new_pattern", "anomaly"}


def _lake(url: str, *, cases: bool, seed: int = 5) -> pl.DataFrame:
    generate(url, events=40_000, days=8, services=8, now=NOW, seed=seed, cases=cases)
    return reader.scan(url).collect()


def test_cases_off_leaves_the_lake_as_before_and_on_adds_each_case(tmp_path: Path) -> None:
    plain = _lake(str(tmp_path / "plain"), cases=False)
    with_cases = _lake(str(tmp_path / "cases"), cases=True)
    assert plain.height == 40_000
    cols = ["id", "timestamp", "service", "level", "message", "meta"]
    # everything the cases do not touch is the plain lake, row for row
    silent, since = DEMO_CASES["absence"]["service"], NOW - timedelta(minutes=SILENT_MINUTES)
    dropped = (pl.col("service") == silent) & (pl.col("timestamp") > since)
    kept = plain.filter(~dropped).sort("id").select(cols)
    assert (
        with_cases.filter(pl.col("id").is_in(kept["id"].implode()))
        .sort("id")
        .select(cols)
        .equals(kept)
    )
    assert plain.filter(dropped).height > 0 and with_cases.filter(dropped).height == 0
    recent = with_cases.filter(pl.col("timestamp") > NOW - timedelta(minutes=10))
    match = DEMO_CASES["match"]
    hits = recent.filter(
        (pl.col("service") == match["service"])
        & pl.col("message").str.to_lowercase().str.contains(match["match"].lower(), literal=True)
    )
    assert hits.height >= match["threshold"]
    assert with_cases["timestamp"].max() <= NOW  # type: ignore[operator]
    assert with_cases["id"].n_unique() == with_cases.height


def test_seed_rules_one_rule_per_kind_on_its_case_service(settings: Settings) -> None:
    try:
        assert seed_rules(settings.database_url, NOW) is True
        with session_scope(get_engine(settings.database_url)) as s:
            from sqlmodel import select

            rules = list(s.exec(select(AlertRule)))
        by_kind = {r.kind: r for r in rules}
        assert set(by_kind) == KINDS and len(rules) == len(KINDS)
        assert sorted(r.name for r in rules) == sorted(demo_rule_names())
        assert by_kind["threshold"].name == demo_rule_names()[0]
        assert by_kind["threshold"].service == service_names(8)[0]  # demo_traffic's bursts
        for kind, case in DEMO_CASES.items():
            assert by_kind[kind].service == case["service"]
        assert by_kind["ratio"].min_events is not None
        assert by_kind["anomaly"].sensitivity is not None
        assert by_kind["match"].match == DEMO_CASES["match"]["match"]
    finally:
        dispose_engine(settings.database_url)


@pytest.mark.parametrize("cases", [True, False], ids=["with-cases", "without-cases"])
def test_workbench_evaluate_opens_one_incident_per_kind_on_the_demo(
    data_dir: Path, cases: bool
) -> None:
    settings = Settings(WORKBENCH_DATA_DIR=data_dir)  # type: ignore[call-arg]
    generate(settings.lake_url, events=40_000, days=8, services=8, now=NOW, seed=42, cases=cases)
    seed_rules(settings.database_url, NOW)
    dispose_engine(settings.database_url)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "WORKBENCH_LAKE_URL")}
    env["WORKBENCH_DATA_DIR"] = str(data_dir)
    at = (NOW + timedelta(minutes=1)).isoformat()  # the scheduler's first tick after seeding
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "evaluate", "--now", at],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        with session_scope(get_engine(settings.database_url)) as s:
            from sqlmodel import select

            rules = {r.id: r for r in s.exec(select(AlertRule))}
            incidents = list(s.exec(select(AlertIncident)))
        fired = sorted(rules[i.rule_id].kind for i in incidents if i.rule_id in rules)
        if cases:
            assert fired == sorted(KINDS), done.stdout + done.stderr
        else:  # the same lake and rules without the cases: only a chance burst may page
            assert set(fired) <= {"threshold"}, done.stdout + done.stderr
    finally:
        dispose_engine(settings.database_url)


def test_live_demo_traffic_keeps_the_cases_true() -> None:
    """demo_traffic leaves the silent service silent and sends no error unseen in the demo."""
    import random

    from workbench import demo_traffic

    live = demo_traffic.live_services(8)
    assert DEMO_CASES["absence"]["service"] not in live
    assert live[0] == service_names(8)[0]  # the burst service
    # every live error comes from a template of the demo lake's (no "new pattern" of its own)
    starts = {t.split("{")[0] for level in ("error", "fatal") for t in TEMPLATES[level]}
    r = random.Random(3)
    for level in ("error", "fatal"):
        for _ in range(300):
            message = str(demo_traffic._event(r, live[0], level)["message"])
            assert any(message.startswith(s) for s in starts), message
