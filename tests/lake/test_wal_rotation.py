"""The write-ahead log when the next segment cannot be created (EMFILE, EACCES, a read-only disk)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from tests.lake.conftest import NOW, make_events
from workbench.config import Settings
from workbench.errors import StorageError
from workbench.lake import reader
from workbench.lake import wal as wal_module
from workbench.lake.ingestor import Ingestor
from workbench.lake.wal import WalFolder, WriteAheadLog, read_records


class SegmentOpens:
    """A stand-in for ``os.open`` that fails for new WAL segments while ``failing`` is set."""

    def __init__(self, error: int) -> None:
        self.error = error
        self.failing = False
        self.real = os.open

    def __call__(self, path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if self.failing and str(path).endswith(".wal"):
            raise OSError(self.error, os.strerror(self.error), str(path))
        return self.real(path, flags, *args, **kwargs)


def _replayed(folder: WalFolder) -> list[bytes]:
    return [r for s in folder.segments() for r in read_records(s.path)]


@pytest.mark.parametrize("error", [errno.EMFILE, errno.EACCES, errno.EROFS])
def test_failed_rotation_never_writes_to_a_reused_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    """Injects: the open of the next segment fails at rotation; the freed fd number is reused.

    Proves: no WAL record ever lands in the file that reused a descriptor number,
    appends while no segment can be created fail with StorageError (nothing
    acknowledged that is not in the WAL), the backlog never goes negative and
    matches what is in the segments, and everything works again once opens do.
    """
    opens = SegmentOpens(error)
    monkeypatch.setattr(wal_module.os, "open", opens)
    folder = WalFolder.create(tmp_path / "wal")
    log = WriteAheadLog(folder, rotate_events=2)
    acknowledged: list[bytes] = []

    def append(payload: bytes) -> bool:
        try:
            log.append_group([payload], 1)
        except StorageError:
            return False
        acknowledged.append(payload)
        return True

    assert append(b"a0")
    opens.failing = True
    # Reaches rotate_events: the rotation fails, but "a1" itself is durable.
    append(b"a1")
    # Whatever descriptor number the WAL may have freed is taken by another file now,
    # as a client socket or a lake file would take it in the server.
    victims = [tmp_path / f"victim-{i}" for i in range(4)]
    victim_fds = [os.open(v, os.O_WRONLY | os.O_CREAT, 0o644) for v in victims]
    try:
        for i in range(5):
            append(f"b{i}".encode())
            assert log.backlog()[0] >= 0 and log.backlog()[1] >= 0
            with pytest.raises(StorageError):
                log.rotate()
        opens.failing = False
        for i in range(5):
            assert append(f"c{i}".encode())
    finally:
        for fd in victim_fds:
            os.close(fd)
    assert all(v.read_bytes() == b"" for v in victims), "a WAL write landed in another file"
    assert acknowledged[-5:] == [b"c0", b"c1", b"c2", b"c3", b"c4"]
    # Every acknowledged record is in the WAL, in order; nothing else is.
    assert _replayed(folder) == acknowledged
    events, size = log.backlog()
    assert events == len(acknowledged)
    assert size == sum(s.path.stat().st_size for s in folder.segments())
    for segment in log.sealed():
        log.drop(segment)
        assert min(log.backlog()) >= 0
    log.rotate()
    for segment in log.sealed():
        log.drop(segment)
    assert log.backlog() == (0, 0)
    log.close()  # no EBADF: the descriptor it closes is its own
    folder.release(remove=True)


def test_stop_while_no_segment_can_be_created_keeps_the_events_for_replay(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Injects: segment creation fails (EMFILE) when the server stops.

    Proves: ``stop()`` returns (the final flush failure is logged, not raised),
    the events stay in the WAL, and the next process replays every one of them.
    """
    opens = SegmentOpens(errno.EMFILE)
    monkeypatch.setattr(wal_module.os, "open", opens)
    first = Ingestor(settings, clock=lambda: NOW)
    first.start(background=False)
    first.accept_sync(make_events(3), NOW)
    opens.failing = True
    first.stop()
    opens.failing = False
    second = Ingestor(settings, clock=lambda: NOW)
    second.start(background=False)
    try:
        assert second.adopt_orphans() == 3
    finally:
        second.stop()
    assert sorted(reader.scan(settings.lake_url).collect()["message"]) == ["m0", "m1", "m2"]
