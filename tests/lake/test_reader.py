"""Reader: visibility (hidden and temporary names), pruning by partition and file bounds."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.factories import T0, make_events, write_events
from workbench.lake import reader


def test_empty_or_missing_lake(tmp_path: Path) -> None:
    url = str(tmp_path / "nothing")
    assert reader.visible_files(url) == []
    assert reader.scan(url).collect().height == 0
    assert reader.scan(url).collect_schema() == reader.POLARS_SCHEMA


def test_temporary_and_hidden_files_are_invisible(tmp_path: Path) -> None:
    url = str(tmp_path / "lake")
    write_events(url, make_events(n=3))
    folder = next((Path(url) / "logs").iterdir())
    (folder / ".tmp-x.parquet").write_bytes(b"partial")
    (folder / "_meta.parquet").write_bytes(b"not data")
    (Path(url) / "logs" / "not-a-partition").mkdir()
    assert reader.scan(url).collect().height == 3


def test_partition_and_file_bounds_prune(tmp_path: Path) -> None:
    url = str(tmp_path / "lake")
    write_events(url, make_events(n=2, start=T0 - timedelta(days=2)), name="old")
    write_events(url, make_events(n=2, start=T0), name="morning")
    write_events(url, make_events(n=2, start=T0 + timedelta(hours=6)), name="evening")
    assert len(reader.visible_files(url)) == 3
    assert len(reader.visible_files(url, T0 - timedelta(hours=1), None)) == 2
    # Same partition, but the morning file ends before the range starts.
    only = reader.visible_files(url, T0 + timedelta(hours=5), T0 + timedelta(hours=7))
    assert [Path(p).name for p in only] == ["part-evening.parquet"]


def test_footer_facts(tmp_path: Path) -> None:
    url = str(tmp_path / "lake")
    write_events(url, make_events(n=4, start=T0, step=timedelta(minutes=1)))
    (stat,) = reader.file_stats(url)
    assert stat.num_rows == 4 and stat.day == T0.date()
    us = int(T0.timestamp()) * 1_000_000
    assert (stat.min_ts_us, stat.max_ts_us) == (us, us + 3 * 60_000_000)
    assert reader.key_counts(stat) == {("api", "info"): 4}


def test_map_remote_keeps_order_runs_inline_locally_and_on_a_bounded_pool_remotely() -> None:
    import threading

    threads: set[str] = set()
    lock = threading.Lock()

    def call(i: int) -> int:
        with lock:
            threads.add(threading.current_thread().name)
        return i * i

    items = list(range(40))
    assert reader.map_remote(call, items, remote=False) == [i * i for i in items]
    assert threads == {threading.current_thread().name}
    threads.clear()
    assert reader.map_remote(call, items, remote=True) == [i * i for i in items]
    assert threads and all(t.startswith("lake-remote") for t in threads)
    assert len(threads) <= reader._POOL_WORKERS


@pytest.mark.timeout(30)
def test_map_remote_called_from_its_own_worker_runs_inline_and_does_not_hang() -> None:
    def inner(i: int) -> int:
        return i + 1

    def outer(n: int) -> list[int]:
        return reader.map_remote(inner, list(range(n)), remote=True)

    # More outer calls than workers, each mapping again: a nested wait on the pool would hang.
    got = reader.map_remote(outer, [3] * (reader._POOL_WORKERS * 2), remote=True)
    assert got == [[1, 2, 3]] * (reader._POOL_WORKERS * 2)
