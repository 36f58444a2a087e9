"""The write-ahead log: where an accepted event is made durable before its 202.

Layout: ``<wal_dir>/<writer_id>/`` holds ``LOCK`` and segment files
``seg-0000000001.wal``, ``seg-0000000002.wal``, … Each ingest process owns one
folder, claimed with an exclusive ``flock`` on ``LOCK`` held for the process's
life; the kernel drops the lock when the process dies (even on ``kill -9``), so
an unlocked folder is an orphan that any live process may adopt and replay.

A folder is created under a hidden name (``.new-…``), locked, then renamed into
place, so no other process can mistake a half-created folder for an orphan.

Segment records are framed as ``<u32 length><u32 crc32><payload>`` (little
endian). A crash in the middle of a write leaves a torn tail: a short header, a
short payload or a CRC mismatch. Replay stops at the first such record; those
bytes were never fsynced, so no client got a 202 for them.

Appends are group-committed by the caller: :meth:`WriteAheadLog.append_group`
writes many records with one ``write`` and one ``fsync``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import shutil
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import StorageError

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")
_LOCK_NAME = "LOCK"
_SEGMENT_PREFIX = "seg-"
_SEGMENT_SUFFIX = ".wal"


def encode_record(payload: bytes) -> bytes:
    """Return ``payload`` framed with its length and CRC32."""
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def read_records(path: Path) -> Iterator[bytes]:
    """Yield the complete records of a segment file, stopping at a torn or corrupt tail."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    view = memoryview(data)
    offset, end, header = 0, len(data), _HEADER.size
    while offset + header <= end:
        length, crc = _HEADER.unpack_from(data, offset)
        start = offset + header
        stop = start + length
        if stop > end:
            _report_stop(path, offset, end, torn=True)
            return  # torn: the payload was cut short
        payload = bytes(view[start:stop])
        if zlib.crc32(payload) != crc:
            # The last record of the file is a torn write; one followed by more
            # bytes is corruption. Either way nothing after it can be trusted.
            _report_stop(path, offset, end, torn=stop == end)
            return
        yield payload
        offset = stop
    if offset < end:
        _report_stop(path, offset, end, torn=True)


def _report_stop(path: Path, offset: int, end: int, *, torn: bool) -> None:
    """Log where replay of a segment stopped and how many bytes after it were not replayed."""
    if torn:
        log.info(
            "WAL segment %s: torn tail at offset %d; %d bytes not replayed (never acknowledged)",
            path,
            offset,
            end - offset,
        )
    else:
        log.warning(
            "WAL segment %s: corrupt record at offset %d; %d bytes after it not replayed",
            path,
            offset,
            end - offset,
        )


def segment_name(number: int) -> str:
    """Return the file name of segment ``number``."""
    return f"{_SEGMENT_PREFIX}{number:010d}{_SEGMENT_SUFFIX}"


def new_writer_id() -> str:
    """Return a fresh writer id: creation time in ms (hex) and random bits, sortable."""
    return f"w{int(time.time() * 1000):012x}{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class Segment:
    """A segment file of a WAL folder."""

    writer_id: str
    number: int
    path: Path

    @property
    def batch_name(self) -> str:
        """Return the deterministic lake file name for this segment's events."""
        return f"{self.writer_id}-{self.number:010d}"


class WalFolder:
    """A WAL folder claimed by this process with an exclusive lock."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self.writer_id = path.name
        self._lock_fd: int | None = lock_fd

    @classmethod
    def create(cls, wal_dir: Path) -> WalFolder:
        """Create, lock and return a fresh folder for this process."""
        wal_dir.mkdir(parents=True, exist_ok=True)
        writer_id = new_writer_id()
        staging = wal_dir / f".new-{writer_id}"
        staging.mkdir()
        fd = os.open(staging / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        final = wal_dir / writer_id
        os.rename(staging, final)
        _fsync_dir(wal_dir)
        return cls(final, fd)

    @classmethod
    def try_adopt(cls, path: Path) -> WalFolder | None:
        """Lock and return the orphan folder at ``path``, or None if a live process holds it."""
        try:
            fd = os.open(path / _LOCK_NAME, os.O_RDWR)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if not path.exists():  # another adopter finished and removed it meanwhile
            os.close(fd)
            return None
        return cls(path, fd)

    def segments(self) -> list[Segment]:
        """Return the folder's segment files, oldest first."""
        found: list[Segment] = []
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        for name in names:
            if name.startswith(_SEGMENT_PREFIX) and name.endswith(_SEGMENT_SUFFIX):
                number = int(name[len(_SEGMENT_PREFIX) : -len(_SEGMENT_SUFFIX)])
                found.append(Segment(self.writer_id, number, self.path / name))
        return sorted(found, key=lambda s: s.number)

    def release(self, *, remove: bool) -> None:
        """Unlock the folder; with ``remove``, delete it first (only when it holds no segment)."""
        if self._lock_fd is None:
            return
        if remove and not self.segments():
            shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._lock_fd)
        self._lock_fd = None


def orphan_folders(wal_dir: Path, *, own: str | None = None) -> list[Path]:
    """Return the WAL folders under ``wal_dir`` other than ``own`` (locked or not), oldest first."""
    try:
        names = sorted(os.listdir(wal_dir))
    except FileNotFoundError:
        return []
    return [wal_dir / n for n in names if not n.startswith(".") and n != own]


class WriteAheadLog:
    """Appends framed records to the active segment of a claimed folder; thread-safe.

    Tracks the backlog (events and bytes not yet flushed to the lake) of its own
    segments: the ingestor refuses new events when it is too large. Reading the
    backlog never waits for an append: the event loop checks it on every request,
    and an fsync under ``_lock`` can take tens of milliseconds on a busy disk.
    """

    def __init__(self, folder: WalFolder, *, rotate_events: int) -> None:
        self.folder = folder
        self._rotate_events = rotate_events
        self._lock = threading.Lock()
        existing = folder.segments()
        self._number = existing[-1].number + 1 if existing else 1
        self._fd = self._open(self._number)
        self._active_events = 0
        self._active_bytes = 0
        # Sealed segments waiting for the flusher: number -> (events, bytes).
        self._sealed: dict[int, tuple[int, int]] = {}
        # (events, bytes) of active + sealed segments, replaced whole (one atomic
        # store under the GIL) whenever they change, so backlog() needs no lock.
        self._backlog = (0, 0)
        # Set when the active segment must be sealed before anything else is written
        # (it is full, or a flush asked for it) and creating the next one failed.
        self._rotate_due = False
        # What is wrong with the WAL right now, for /health; None when it writes fine.
        self.problem: str | None = None

    def _open(self, number: int) -> int:
        """Create segment ``number`` and return its descriptor; StorageError when it cannot be."""
        path = self.folder.path / segment_name(number)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise StorageError(f"write-ahead log cannot create segment {path.name}: {exc}") from exc
        try:
            _fsync_dir(self.folder.path)  # the new file's name must survive a crash too
        except OSError as exc:
            os.close(fd)
            raise StorageError(
                f"write-ahead log cannot sync folder {self.folder.path}: {exc}"
            ) from exc
        return fd

    def append_group(self, payloads: list[bytes], events: int) -> bool:
        """Write ``payloads`` as records with one write and one fsync; return True if rotated.

        Rotation happens once the active segment holds ``rotate_events`` events,
        so one segment (hence one flush) stays bounded in memory. When the next
        segment cannot be created, the group just written stays acknowledged (it
        is fsynced in the active segment), and later groups raise StorageError
        until a rotation succeeds: nothing is written while the WAL is failing.
        """
        data = b"".join([encode_record(p) for p in payloads])
        with self._lock:
            if self._rotate_due:
                self._rotate_locked()  # raises StorageError while segments cannot be created
            fd = self._fd
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            except OSError as exc:
                # Cut off whatever part of the group reached the file, so the next
                # group does not follow garbage that replay would stop at.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, self._active_bytes)
                self.problem = f"append failed: {exc}"
                raise StorageError(f"write-ahead log append failed: {exc}") from exc
            self._active_events += events
            self._active_bytes += len(data)
            self._backlog = (self._backlog[0] + events, self._backlog[1] + len(data))
            if not self._rotate_due:
                self.problem = None
            if self._active_events >= self._rotate_events:
                self._rotate_due = True
                with contextlib.suppress(StorageError):  # retried by the next append or flush
                    self._rotate_locked()
                    return True
            return False

    def rotate(self) -> None:
        """Seal the active segment (if it holds anything) and start the next one.

        Raises StorageError when the next segment cannot be created; the active
        segment then stays active (and appends are refused until a rotation works).
        """
        with self._lock:
            if self._active_bytes:
                self._rotate_due = True
                self._rotate_locked()

    def _rotate_locked(self) -> None:
        # The next segment is opened before the active one is closed: when it
        # cannot be, nothing changes, and no descriptor number is kept after close.
        try:
            fd = self._open(self._number + 1)
        except StorageError as exc:
            if self.problem != str(exc):  # once per new failure, not once per request
                log.warning("%s; appends are refused until it can be", exc)
            self.problem = str(exc)
            raise
        old = self._fd
        self._sealed[self._number] = (self._active_events, self._active_bytes)
        self._number += 1
        self._fd = fd
        self._active_events = 0
        self._active_bytes = 0
        self._rotate_due = False
        if self.problem is not None:
            log.info("write-ahead log segments can be created again")
        self.problem = None
        os.close(old)

    def sealed(self) -> list[Segment]:
        """Return the sealed segments waiting to be flushed, oldest first."""
        with self._lock:
            numbers = sorted(self._sealed)
        return [
            Segment(self.folder.writer_id, n, self.folder.path / segment_name(n)) for n in numbers
        ]

    def drop(self, segment: Segment) -> None:
        """Delete a sealed segment whose events are now in the lake."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(segment.path)
        with self._lock:
            dropped = self._sealed.pop(segment.number, None)
            if dropped is not None:
                self._backlog = (self._backlog[0] - dropped[0], self._backlog[1] - dropped[1])

    def backlog(self) -> tuple[int, int]:
        """Return ``(events, bytes)`` written to the WAL and not yet flushed to the lake."""
        return self._backlog

    def close(self) -> None:
        """Close the active segment, deleting it when empty."""
        with self._lock:
            if self._fd < 0:
                return
            os.close(self._fd)
            self._fd = -1
            if not self._active_bytes:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.folder.path / segment_name(self._number))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
