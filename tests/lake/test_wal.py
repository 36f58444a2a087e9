"""The write-ahead log: framing, torn tails, folder ownership and orphans."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from workbench.lake.wal import (
    WalFolder,
    WriteAheadLog,
    encode_record,
    orphan_folders,
    read_records,
    segment_name,
)


def test_records_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "seg"
    path.write_bytes(b"".join(encode_record(p) for p in [b"a", b"", b"ccc" * 1000]))
    assert list(read_records(path)) == [b"a", b"", b"ccc" * 1000]


def test_torn_tail_is_ignored(tmp_path: Path) -> None:
    good = encode_record(b"first") + encode_record(b"second")
    torn = encode_record(b"third record")
    path = tmp_path / "seg"
    for cut in range(1, len(torn)):
        path.write_bytes(good + torn[:cut])
        assert list(read_records(path)) == [b"first", b"second"], cut


def test_corrupt_record_stops_replay(tmp_path: Path) -> None:
    data = bytearray(encode_record(b"first") + encode_record(b"second") + encode_record(b"third"))
    data[len(encode_record(b"first")) + 9] ^= 0xFF  # flip a payload byte of "second"
    path = tmp_path / "seg"
    path.write_bytes(bytes(data))
    assert list(read_records(path)) == [b"first"]


def test_append_rotate_drop_and_backlog(tmp_path: Path) -> None:
    folder = WalFolder.create(tmp_path / "wal")
    wal = WriteAheadLog(folder, rotate_events=10)
    assert wal.append_group([b"x", b"y"], 4) is False
    assert wal.backlog() == (4, 2 * (8 + 1))
    assert wal.append_group([b"z"], 6) is True  # reached rotate_events
    sealed = wal.sealed()
    assert [s.number for s in sealed] == [1]
    assert list(read_records(sealed[0].path)) == [b"x", b"y", b"z"]
    assert sealed[0].batch_name == f"{folder.writer_id}-0000000001"
    wal.rotate()  # empty active segment: nothing to seal
    assert [s.number for s in wal.sealed()] == [1]
    wal.drop(sealed[0])
    assert wal.backlog() == (0, 0) and not sealed[0].path.exists()
    wal.close()
    folder.release(remove=True)
    assert not folder.path.exists()


def test_a_locked_folder_cannot_be_adopted_but_an_unlocked_one_can(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    mine = WalFolder.create(wal_dir)
    assert WalFolder.try_adopt(mine.path) is None
    mine.release(remove=False)
    adopted = WalFolder.try_adopt(mine.path)
    assert adopted is not None
    adopted.release(remove=True)
    assert orphan_folders(wal_dir) == []


def test_folder_of_a_killed_process_is_an_orphan(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    # A child claims a folder, writes a record and is killed -9 while holding the lock.
    code = (
        "import os, sys, signal\n"
        "from pathlib import Path\n"
        "from workbench.lake.wal import WalFolder, WriteAheadLog\n"
        f"f = WalFolder.create(Path({str(wal_dir)!r}))\n"
        "w = WriteAheadLog(f, rotate_events=100)\n"
        "w.append_group([b'hello'], 1)\n"
        "print(f.writer_id, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    writer_id = proc.stdout.strip()
    [orphan_path] = orphan_folders(wal_dir)
    assert orphan_path.name == writer_id
    orphan = WalFolder.try_adopt(orphan_path)
    assert orphan is not None
    [segment] = orphan.segments()
    assert segment.path.name == segment_name(1)
    assert list(read_records(segment.path)) == [b"hello"]
    orphan.release(remove=False)


def test_half_created_folders_are_not_orphans(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    os.makedirs(wal_dir / ".new-w123")
    assert orphan_folders(wal_dir) == []


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8), st.data())
def test_any_truncation_replays_a_prefix(payloads: list[bytes], data: st.DataObject) -> None:
    blob = b"".join(encode_record(p) for p in payloads)
    cut = data.draw(st.integers(min_value=0, max_value=len(blob)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seg"
        path.write_bytes(blob[:cut])
        replayed = list(read_records(path))
    assert replayed == payloads[: len(replayed)]
    if cut == len(blob):
        assert replayed == payloads
