"""What keeps ingest fast without changing results: a lock-free backlog, and a writer that
skips copies (partition filter, sort) only when they would change nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from workbench.events import Limits, validate_event
from workbench.lake.records import events_to_ipc, records_to_table, to_us
from workbench.lake.wal import WalFolder, WriteAheadLog
from workbench.lake.writer import write_batch

NOW = datetime(2026, 11, 26, 23, 59, 59, tzinfo=UTC)


def test_backlog_does_not_wait_for_an_append_in_progress(tmp_path: Path) -> None:
    folder = WalFolder.create(tmp_path / "wal")
    wal = WriteAheadLog(folder, rotate_events=100)
    wal.append_group([b"abc"], 2)
    seen: list[tuple[int, int]] = []
    with wal._lock:  # as held by an append during its fsync
        reader = threading.Thread(target=lambda: seen.append(wal.backlog()))
        reader.start()
        reader.join(timeout=5)
        assert seen == [(2, 8 + 3)], "backlog() blocked on the append lock"
    wal.append_group([b"de"], 98)  # rotates: the sealed segment still counts
    assert wal.backlog() == (100, 8 + 3 + 8 + 2)
    wal.drop(wal.sealed()[0])
    assert wal.backlog() == (0, 0)
    wal.close()
    folder.release(remove=True)


def _table(offsets_s: list[int]) -> tuple[list[str], object]:
    events = [
        validate_event(
            {
                "service": "svc",
                "level": "info",
                "message": f"m{i}",
                "timestamp": (NOW + timedelta(seconds=s)).isoformat(),
            },
            now=NOW + timedelta(days=1),
            limits=Limits(),
        )
        for i, s in enumerate(offsets_s)
    ]
    ids = [f"id{i:02d}" for i in range(len(events))]
    return ids, records_to_table([events_to_ipc(events, ids, to_us(NOW))])


def test_writer_sorts_each_partition_stably_by_timestamp(tmp_path: Path) -> None:
    # Two days (23:59:59 + 0 s and + 5 s), out of order, with ties kept in input order.
    _, table = _table([5, 0, 5, 0, 1])
    paths = write_batch(table, lake_url=str(tmp_path), name="t")  # type: ignore[arg-type]
    assert len(paths) == 2
    got = {p: pq.read_table(p).column("id").to_pylist() for p in paths}
    assert sorted(got.values()) == [["id01", "id03"], ["id04", "id00", "id02"]]


def test_writer_keeps_an_ordered_single_day_batch_as_it_is(tmp_path: Path) -> None:
    ids, table = _table([-9, -5, -5, -1])
    [path] = write_batch(table, lake_url=str(tmp_path), name="t")  # type: ignore[arg-type]
    written = pq.read_table(path)
    assert written.column("id").to_pylist() == ids
    assert written.num_rows == 4
