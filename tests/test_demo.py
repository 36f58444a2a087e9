"""The demo generator: counts, shape of the data, determinism."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from workbench.config import Settings
from workbench.demo import generate
from workbench.lake import reader

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def test_generate_writes_realistic_lake(tmp_path: Path) -> None:
    url = str(tmp_path / "lake")
    assert generate(url, events=20_000, days=3, services=10, now=NOW, seed=7) == 20_000
    df = reader.scan(url).collect()
    assert df.height == 20_000 and df["id"].n_unique() == 20_000
    first, last = df["timestamp"].min(), df["timestamp"].max()
    assert isinstance(first, datetime) and isinstance(last, datetime)
    assert first >= NOW - timedelta(days=3) and last < NOW
    levels = dict(df.group_by("level").len().iter_rows())
    assert levels["info"] > levels["warn"] > levels["error"] > levels.get("fatal", 0)
    assert df["service"].n_unique() <= 10
    meta = json.loads(df.filter(pl.col("meta").is_not_null())["meta"][0])
    assert {"userId", "requestId", "latencyMs"} <= set(meta)
    # several files per day, not one per event batch
    assert 3 <= len(reader.visible_files(url)) <= 3 * 4 + 1
    # ids sort by accept time (their leading 12 hex digits are its milliseconds)
    ids = df.sort("received_at")["id"].to_list()
    assert [i[:12] for i in ids] == sorted(i[:12] for i in ids)


def test_same_seed_same_lake(tmp_path: Path) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    generate(a, events=2_000, days=1, services=3, now=NOW, seed=1)
    generate(b, events=2_000, days=1, services=3, now=NOW, seed=1)
    cols = ["id", "timestamp", "service", "level", "message", "meta"]
    assert (
        reader.scan(a)
        .sort("id")
        .select(cols)
        .collect()
        .equals(reader.scan(b).sort("id").select(cols).collect())
    )


def test_cli_demo_retention_compact(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    url = str(tmp_path / "lake")
    runner = CliRunner()
    out = runner.invoke(
        main, ["demo", "--events", "3000", "--days", "3", "--services", "4", "--lake", url]
    )
    assert out.exit_code == 0 and "wrote 3000 events" in out.output
    out = runner.invoke(main, ["retention", "--days", "1", "--dry-run", "--lake", url])
    assert out.exit_code == 0 and "would delete" in out.output
    out = runner.invoke(
        main, ["compact", "--older-than-hours", "0", "--grace-minutes", "0", "--lake", url]
    )
    assert out.exit_code == 0 and "compacted" in out.output
    assert reader.scan(url).collect().height == 3000
    out = runner.invoke(main, ["retention", "--days", "1", "--lake", url])
    assert out.exit_code == 0 and "deleted" in out.output
    assert reader.scan(url).collect().height < 3000


def test_seed_rules_once_one_rule_per_kind(settings: Settings) -> None:
    from workbench import api
    from workbench.catalog.db import dispose_engine
    from workbench.demo import demo_rule_names, seed_rules, service_names

    try:
        assert seed_rules(settings.database_url, NOW) is True
        assert seed_rules(settings.database_url, NOW) is False  # rules exist: left alone
        rules = api.rules(settings=settings)
        assert sorted(rules["name"].to_list()) == sorted(demo_rule_names())
        assert demo_rule_names()[0] == f"{service_names(8)[0]} error burst"  # demo_traffic's bursts
    finally:
        dispose_engine(settings.database_url)
