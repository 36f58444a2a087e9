"""Compaction: every intermediate state (crash points) shows each event exactly once."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from filelock import FileLock, Timeout

from tests.factories import T0, make_events, write_events
from workbench.lake import fs as lakefs
from workbench.lake import reader
from workbench.lake.compaction import (
    SmallFilePolicy,
    commit_compacted,
    compact,
    compact_hot,
    compact_partition,
    housekeep,
    select_small_files,
)
from workbench.lake.fs import Entry

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


# --- Hot partitions: tiered compaction of the small, settled files -----------------------


def _age(path: str | Path, seconds: float) -> None:
    """Make a committed file look committed ``seconds`` ago (its mtime is the commit time)."""
    at = time.time() - seconds
    os.utime(path, (at, at))


def _names(url: str) -> set[str]:
    return {Path(p).name for p in reader.visible_files(url)}


def test_hot_compaction_merges_only_small_settled_files(tmp_path: Path) -> None:
    url = str(tmp_path / "lake")
    for i in range(6):
        [path] = write_events(url, make_events(n=5, start=T0 + timedelta(minutes=i)), name=f"s{i}")
        _age(path, 600)
    [big] = write_events(url, make_events(n=50, start=T0 + timedelta(hours=1)), name="big")
    _age(big, 600)
    write_events(url, make_events(n=5, start=T0 + timedelta(hours=2)), name="new")  # just now
    before = _ids(url)
    policy = SmallFilePolicy(max_rows=20, min_files=3, min_age=timedelta(seconds=60))

    result = compact_partition(url, DAY, policy=policy, now=datetime.now(UTC))

    assert (result.merged, result.rows, result.deleted) == (6, 30, 6)
    assert result.compacted_file is not None
    assert _names(url) == {"part-big.parquet", "part-new.parquet", Path(result.compacted_file).name}
    assert _ids(url) == before


def test_hot_compaction_waits_for_enough_small_files(tmp_path: Path) -> None:
    url = str(tmp_path / "lake")
    for i in range(3):
        [path] = write_events(url, make_events(n=5, start=T0 + timedelta(minutes=i)), name=f"s{i}")
        _age(path, 600)
    policy = SmallFilePolicy(min_files=4, min_age=timedelta(seconds=60))
    result = compact_partition(url, DAY, policy=policy, now=datetime.now(UTC))
    assert result.merged == 0 and result.compacted_file is None
    # By bytes too: a file at or over max_bytes is never merged.
    policy = SmallFilePolicy(min_files=2, max_bytes=1, min_age=timedelta(0))
    assert compact_partition(url, DAY, policy=policy, now=datetime.now(UTC)).merged == 0
    assert len(_names(url)) == 3


def test_hot_recompaction_keeps_replays_and_late_files_exactly_once(tmp_path: Path) -> None:
    url = str(tmp_path / "lake")
    policy = SmallFilePolicy(min_files=2, min_age=timedelta(0))
    batches = {f"s{i}": make_events(n=4, start=T0 + timedelta(minutes=i)) for i in range(4)}
    for name, rows in batches.items():
        write_events(url, rows, name=name)
    expected = _ids(url)
    first = compact_partition(url, DAY, policy=policy, now=datetime.now(UTC)).compacted_file
    write_events(url, batches["s1"], name="s1")  # a WAL replay of a compacted (deleted) batch
    assert _ids(url) == expected
    late = make_events(n=3, start=T0 + timedelta(minutes=30))
    write_events(url, late, name="late")
    expected = sorted(expected + late["id"].to_pylist())
    # The small first compacted file is merged again with the late file: transitive names.
    second = compact_partition(url, DAY, policy=policy, now=datetime.now(UTC))
    assert second.merged == 2 and first and not Path(first).exists()
    assert second.compacted_file
    replaces = json.loads(pq.read_metadata(second.compacted_file).metadata[b"workbench.replaces"])
    assert {"part-s1.parquet", "part-late.parquet", Path(first).name} <= set(replaces)
    write_events(url, batches["s2"], name="s2")  # replayed again, after the second run
    assert _ids(url) == expected
    assert len(_names(url)) == 1


def test_hot_compaction_never_waits_for_a_held_lock(lake: tuple[str, list[str]]) -> None:
    url, before = lake
    policy = SmallFilePolicy(min_files=2, min_age=timedelta(0))
    with FileLock(str(_folder(url) / "_compact.lock")):
        with pytest.raises(Timeout):
            compact_partition(url, DAY, policy=policy, lock_timeout=0)
        result = housekeep(url, now=T0, policy=policy)  # the scheduler's pass: skip, no raise
    assert result.busy == [DAY] and result.compacted == []
    assert _ids(url) == before


def test_concurrent_ingest_and_hot_compaction_show_every_event_exactly_once(
    tmp_path: Path,
) -> None:
    """Writers, replays, compaction and deletion race; every read sees each committed event once."""
    url = str(tmp_path / "lake")
    policy = SmallFilePolicy(min_files=3, min_age=timedelta(0))
    committed: list[str] = []  # ids whose file is committed, appended after the rename
    batches: list[tuple[str, object]] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def ingest() -> None:
        try:
            for i in range(150):
                rows = make_events(n=7, start=T0 + timedelta(seconds=i))
                write_events(url, rows, name=f"b{i:04d}")
                batches.append((f"b{i:04d}", rows))
                committed.extend(rows["id"].to_pylist())
                if i % 10 == 9:  # a WAL replay: an earlier batch again, same name, same rows
                    name, old = batches[i // 2]
                    write_events(url, old, name=name)  # type: ignore[arg-type]
                time.sleep(0.005)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def compactor() -> None:
        try:
            while not done.is_set():
                compact_partition(
                    url, DAY, policy=policy, grace=timedelta(seconds=0.3), now=datetime.now(UTC)
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ingest), threading.Thread(target=compactor)]
    for t in threads:
        t.start()
    reads = 0
    seen_compacted = False
    while not done.is_set():
        must = set(committed)  # committed before this read started
        got = reader.scan(url).select("id").collect()["id"].to_list()
        assert len(got) == len(set(got)), "an event seen twice"
        assert must <= set(got), "a committed event missing"
        seen_compacted |= any(n.startswith("compact-") for n in _names(url))
        reads += 1
    for t in threads:
        t.join()
    assert not errors, errors
    assert reads > 10 and seen_compacted
    compact_partition(url, DAY, policy=policy, now=datetime.now(UTC))
    assert _ids(url) == sorted(committed)
    assert len(reader.visible_files(url)) < 10


def test_compact_hot_takes_only_recent_partitions(lake: tuple[str, list[str]]) -> None:
    url, before = lake
    for path in _folder(url).glob("part-*.parquet"):  # committed at the time of their events
        os.utime(path, (T0.timestamp(), T0.timestamp()))
    policy = SmallFilePolicy(min_files=2, min_age=timedelta(0))
    late = T0 + timedelta(days=2)
    assert compact_hot(url, now=late, policy=policy) == []
    [r] = compact_hot(url, now=T0 + timedelta(hours=1), policy=policy, grace=timedelta(0))
    assert (r.day, r.merged, r.deleted) == (DAY, 5, 5)
    assert _ids(url) == before


def test_housekeep_applies_retention_and_compacts_past_and_hot(tmp_path: Path) -> None:
    url = str(tmp_path / "lake")
    now = datetime.now(UTC)
    past = datetime(now.year, now.month, now.day, 12, tzinfo=UTC) - timedelta(days=3)
    hot = now - timedelta(seconds=30)
    for i in range(3):
        write_events(url, make_events(n=2, start=now - timedelta(days=10)))  # expired: 5 days
        write_events(url, make_events(n=2, start=past + timedelta(minutes=i)))  # past: whole
        write_events(url, make_events(n=2, start=hot))  # hot: tiered
    policy = SmallFilePolicy(min_files=2, min_age=timedelta(0))

    now = datetime.now(UTC)  # after the writes: they are settled (min_age 0)
    result = housekeep(url, now=now, policy=policy, grace=timedelta(0), retention_days=5)

    assert [p.day for p in result.expired] == [(now - timedelta(days=10)).date()]
    assert {(r.day, r.merged) for r in result.compacted} == {(past.date(), 3), (hot.date(), 3)}
    assert [d for d, _ in reader.partitions(url)] == [past.date(), hot.date()]
    assert len(reader.visible_files(url)) == 2
    assert len(_ids(url)) == 12


def test_hot_compaction_merges_a_fresh_small_compacted_file_again(tmp_path: Path) -> None:
    url = str(tmp_path / "lake")
    policy = SmallFilePolicy(min_files=2, min_age=timedelta(seconds=60))
    for i in range(2):
        [path] = write_events(url, make_events(n=5, start=T0 + timedelta(minutes=i)), name=f"s{i}")
        _age(path, 600)
    first = compact_partition(url, DAY, policy=policy, now=datetime.now(UTC))
    assert first.merged == 2  # its output is committed just now, yet not "new ingest"
    [path] = write_events(url, make_events(n=5, start=T0 + timedelta(minutes=5)), name="s5")
    _age(path, 600)
    second = compact_partition(url, DAY, policy=policy, now=datetime.now(UTC))
    assert second.merged == 2 and len(_names(url)) == 1 and len(_ids(url)) == 15


def test_select_small_files_takes_the_oldest_up_to_the_merge_bound() -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    at = int(now.timestamp() * 1e9)

    def file(
        name: str, size: int, age_s: int, rows: int = 10
    ) -> tuple[reader.FileStat, Entry]:
        path = f"/lake/logs/date=2026-11-20/{name}"
        stat = reader.FileStat(path, DAY, rows, None, None, frozenset())
        return stat, Entry(path, name, size, at - age_s * 10**9)

    files = [
        file("part-a.parquet", 100, 300),
        file("part-b.parquet", 100, 200),
        file("part-c.parquet", 100, 100),
        file("part-big.parquet", 1_000, 400),  # over max_bytes
        file("part-rows.parquet", 10, 400, rows=5_000),  # over max_rows
        file("part-new.parquet", 100, 10),  # not settled
        file("compact-x.parquet", 100, 1),  # a compacted file is settled at once
    ]
    visible = [s for s, _ in files]
    entries = {e.path: e for _, e in files}
    policy = SmallFilePolicy(
        max_bytes=1_000, max_rows=1_000, min_files=2, min_age=timedelta(seconds=60)
    )
    names = [Path(s.path).name for s in select_small_files(visible, entries, policy, now)]
    assert names == ["part-a.parquet", "part-b.parquet", "part-c.parquet", "compact-x.parquet"]
    capped = SmallFilePolicy(max_bytes=1_000, max_rows=1_000, min_files=2, max_merge_bytes=200)
    names = [Path(s.path).name for s in select_small_files(visible, entries, capped, now)]
    assert names == ["part-a.parquet", "part-b.parquet"]  # oldest first, the rest next time
    too_few = SmallFilePolicy(max_bytes=1_000, max_rows=1_000, min_files=5)
    assert select_small_files(visible, entries, too_few, now) == []
