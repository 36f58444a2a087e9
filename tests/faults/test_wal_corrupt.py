"""Fault: a corrupt record in the middle of a WAL segment (not only a torn tail)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from workbench.lake.wal import WalFolder, WriteAheadLog, read_records


def test_corrupt_record_mid_segment(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Injects: one flipped byte inside the 2nd of 4 fsynced records of a segment.

    Proves: replay yields every record before the corruption intact and in order,
    never a damaged one, and logs a warning naming the segment, the offset and
    how many bytes after it were not replayed.
    """
    folder = WalFolder.create(tmp_path / "wal")
    wal = WriteAheadLog(folder, rotate_events=1000)
    payloads = [f"record-{i}".encode() * 10 for i in range(4)]
    for p in payloads:
        wal.append_group([p], 1)
    wal.close()
    [segment] = folder.segments()
    data = bytearray(segment.path.read_bytes())
    first_len = 8 + len(payloads[0])
    data[first_len + 8 + 3] ^= 0xFF  # inside the payload of the 2nd record
    segment.path.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING, logger="workbench.lake.wal"):
        got = list(read_records(segment.path))
    assert got == payloads[:1]
    [warning] = [r.getMessage() for r in caplog.records]
    assert segment.path.name in warning and f"offset {first_len}" in warning
    assert f"{len(data) - first_len} bytes" in warning
    folder.release(remove=False)


def test_torn_tail_is_silent_and_keeps_everything_before(tmp_path: Path) -> None:
    """Injects: a segment cut in the middle of its last record (a crash mid-write).

    Proves: every complete record is replayed; a torn tail is the normal result
    of a crash, so it is logged at INFO level at most (no warning spam).
    """
    folder = WalFolder.create(tmp_path / "wal")
    wal = WriteAheadLog(folder, rotate_events=1000)
    payloads = [b"a" * 50, b"b" * 50]
    for p in payloads:
        wal.append_group([p], 1)
    wal.close()
    [segment] = folder.segments()
    segment.path.write_bytes(segment.path.read_bytes()[:-10])
    assert list(read_records(segment.path)) == payloads[:1]
    folder.release(remove=False)
