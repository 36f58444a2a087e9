"""Per-file facts on disk: a new process answers from them instead of reading every lake file."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from tests.factories import T0, write_events
from workbench.lake import facts, reader
from workbench.query import trends
from workbench.query.search import search
from workbench.query.types import SearchQuery


def _forget() -> None:
    """Empty the in-memory caches, as a newly started process has them."""
    for cache in (reader._footer_cache, reader._key_counts_cache, trends._rollups):
        cache.clear()


def _events() -> list[dict[str, object]]:
    return [
        {
            "timestamp": T0 + timedelta(minutes=i),
            "service": "api" if i % 3 else "db",
            "level": "error" if i % 2 else "info",
        }
        for i in range(30)
    ]


def test_a_new_process_takes_footer_facts_from_disk(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    (path,) = write_events(lake, _events(), name="a")
    _forget()
    (stat,) = reader.file_stats(lake)
    kept = list((tmp_path / "lake" / facts.FACTS_DIR).rglob("*.stat-*"))
    assert [p.name.split(".stat-")[0] for p in kept] == [Path(path).name]
    value = json.loads(kept[0].read_bytes())
    value["num_rows"] = 999  # a hand edit shows which one the next process believes
    kept[0].write_text(json.dumps(value))
    _forget()
    (again,) = reader.file_stats(lake)
    assert again.num_rows == 999
    assert (again.min_ts_us, again.max_ts_us, again.row_groups) == (
        stat.min_ts_us,
        stat.max_ts_us,
        stat.row_groups,
    )


def test_a_file_rewritten_under_its_name_gets_new_facts(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    write_events(lake, _events(), name="a")
    _forget()
    assert reader.file_stats(lake)[0].num_rows == 30
    write_events(lake, _events()[:12], name="a")
    _forget()
    assert reader.file_stats(lake)[0].num_rows == 12
    assert search(lake, SearchQuery(service="db")).total == 4


def test_a_restarted_process_counts_and_trends_without_reading_the_files(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    (path,) = write_events(lake, _events(), name="a")
    now = T0 + timedelta(hours=1)
    _forget()
    total = search(lake, SearchQuery(service="db", limit=1)).total
    trend = trends.error_trend(lake, service="api", range="24h", now=now)
    assert total == 10 and sum(p.count for p in trend) == 10
    # Same size and modification time, other bytes: only the facts can answer now.
    before = os.stat(path)
    Path(path).write_bytes(b"\0" * before.st_size)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    _forget()
    assert reader.file_stats(lake)[0].num_rows == 30
    assert reader.key_counts(reader.file_stats(lake)[0])[("db", "info")] == 5
    assert trends.error_trend(lake, service="api", range="24h", now=now) == trend


def test_object_storage_paths_have_no_local_fact_path() -> None:
    """Facts of files on object storage are objects in the bucket (tests/scale/test_s3_lake.py)."""
    assert facts.fact_path("bucket/lake/logs/date=2026-11-20/part-a.parquet", "stat", "1") is None
    kept = facts.fact_path("/srv/lake/logs/date=2026-11-20/part-a.parquet", "stat", "1-2")
    assert kept == Path("/srv/lake/_facts/date=2026-11-20/part-a.parquet.stat-1-2")
