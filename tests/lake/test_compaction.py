"""Compaction: every intermediate state (crash points) shows each event exactly once."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.factories import T0, make_events, write_events
from workbench.lake import fs as lakefs
from workbench.lake import reader
from workbench.lake.compaction import commit_compacted, compact, compact_partition

DAY = T0.date()


def _ids(url: str) -> list[str]:
    return sorted(reader.scan(url).select("id").collect()["id"].to_list())


@pytest.fixture
def lake(tmp_path: Path) -> tuple[str, list[str]]:
    url = str(tmp_path / "lake")
    for i in range(5):
        write_events(url, make_events(n=10, start=T0 + timedelta(minutes=i)), name=f"s{i}")
    return url, _ids(url)


def _folder(url: str) -> Path:
    return Path(url) / "logs" / f"date={DAY.isoformat()}"


def test_compaction_merges_and_keeps_every_event_once(lake: tuple[str, list[str]]) -> None:
    url, before = lake
    result = compact_partition(url, DAY)
    assert (result.merged, result.rows, result.deleted) == (5, 50, 5)
    assert _ids(url) == before
    files = reader.visible_files(url)
    assert len(files) == 1 and Path(files[0]).name.startswith("compact-")
    table = pq.read_table(files[0])
    assert table["timestamp"].to_pylist() == sorted(table["timestamp"].to_pylist())


def test_crash_before_commit_leaves_sources_visible(lake: tuple[str, list[str]]) -> None:
    url, before = lake
    (_folder(url) / ".tmp-compact-dead.parquet").write_bytes(b"partial")
    assert _ids(url) == before


def test_crash_after_commit_before_delete_hides_sources(lake: tuple[str, list[str]]) -> None:
    url, before = lake
    fs, _ = lakefs.resolve(url)
    visible, _ = reader.partition_files(fs, str(_folder(url)), DAY)
    commit_compacted(fs, str(_folder(url)), visible)  # committed, no source deleted
    assert _ids(url) == before
    assert len(reader.visible_files(url)) == 1
    # Half the sources deleted (crash mid-delete): still exactly once.
    for name in ("part-s0.parquet", "part-s3.parquet"):
        (_folder(url) / name).unlink()
    assert _ids(url) == before
    # The next run finishes the job.
    result = compact_partition(url, DAY)
    assert result.merged == 0 and result.deleted == 3
    assert _ids(url) == before


def test_replayed_source_after_compaction_stays_hidden(lake: tuple[str, list[str]]) -> None:
    url, before = lake
    compact_partition(url, DAY)
    # A WAL replay rewrites the same batch under the same name: rows already compacted.
    write_events(url, make_events(n=10, start=T0), name="s0")
    assert len(_ids(url)) == 50


def test_late_file_stays_visible_and_recompaction_is_transitive(
    lake: tuple[str, list[str]],
) -> None:
    url, before = lake
    first = compact_partition(url, DAY).compacted_file
    late = make_events(n=3, start=T0 + timedelta(hours=3))
    write_events(url, late, name="late")
    expected = sorted(before + late["id"].to_pylist())
    assert _ids(url) == expected
    second = compact_partition(url, DAY).compacted_file
    assert second and first and not Path(first).exists()
    replaces = json.loads(pq.read_metadata(second).metadata[b"workbench.replaces"])
    assert {"part-s0.parquet", "part-late.parquet", Path(first).name} <= set(replaces)
    assert _ids(url) == expected


def test_grace_delays_deletion(lake: tuple[str, list[str]]) -> None:
    url, before = lake
    result = compact_partition(url, DAY, grace=timedelta(minutes=5))
    assert result.merged == 5 and result.deleted == 0
    assert len(list(_folder(url).glob("part-*.parquet"))) == 5
    assert _ids(url) == before


def test_compact_skips_recent_partitions(lake: tuple[str, list[str]]) -> None:
    url, _ = lake
    assert compact(url, now=T0, older_than=timedelta(hours=2)) == []
    done = compact(
        url, now=T0 + timedelta(days=1), older_than=timedelta(hours=2), grace=timedelta(0)
    )
    assert [r.day for r in done] == [date(2026, 11, 20)] and done[0].merged == 5
