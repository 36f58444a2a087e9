"""Per-key ingest rate limits: a token bucket of events per API key.

Each key's bucket holds up to ``burst`` events and refills at ``rate`` events per
second. A request is admitted while the bucket holds at least one event; its
real cost (the events it carried, known only once the body is parsed) is charged
afterwards and may take the bucket below zero, so one large batch makes the next
requests wait in proportion instead of being refused half-read. The debt is capped
at ``burst``. Refused requests raise :class:`~workbench.errors.RateLimited`
(HTTP 429 with ``Retry-After``).

Given a ``path``, the buckets live in a small memory-mapped file (one 32-byte slot
per key, each updated under a lock on its bytes), so every process that opens the
same file (the workers of ``workbench serve --workers N``, other servers on the same
data directory and machine) draws from the same bucket: the limit is per key, not
per process. Without a path they live in the process (tests, scripts).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import math
import mmap
import os
import struct
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import RateLimited


@dataclass(slots=True)
class TokenBucket:
    """Events available to one key now: ``tokens`` as of ``updated`` (monotonic seconds)."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        """Add what accrued since the last update, up to ``burst``."""
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        elif now < self.updated - 1.0:
            # A clock from before a reboot (a shared bucket file outlives processes):
            # start counting again from now rather than wait for the old time.
            self.updated = now

    def wait_s(self, now: float, need: float = 1.0) -> float:
        """Return the seconds until ``need`` events are available (0.0 if they are now)."""
        self.refill(now)
        return 0.0 if self.tokens >= need else (need - self.tokens) / self.rate

    def charge(self, cost: float, now: float) -> None:
        """Take ``cost`` events, going into debt down to ``-burst`` at most."""
        self.refill(now)
        self.tokens = max(-self.burst, self.tokens - cost)


class SharedBuckets:
    """Token bucket state of many processes in one memory-mapped file.

    The file holds ``slots`` slots of ``<16-byte key><f64 tokens><f64 updated>``;
    a key takes the first free slot from its hash on (linear probing), and each
    read-modify-write of a slot holds a POSIX lock on the slot's bytes. Record
    locks do not exclude threads of one process: callers serialise those
    themselves (:class:`IngestRateLimiter` does). ``updated`` is on the
    system-wide monotonic clock, which all processes of a machine share.
    """

    SLOT = struct.Struct("<16sdd")

    def __init__(self, path: Path, *, slots: int = 4096) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.slots = slots
        size = slots * self.SLOT.size
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self._fd).st_size < size:
            os.ftruncate(self._fd, size)  # zero-filled: every slot free
        self._map = mmap.mmap(self._fd, size)
        self._where: dict[bytes, int] = {}  # key -> slot, once found
        self._closer = weakref.finalize(self, _release, self._map, self._fd)

    @contextlib.contextmanager
    def _locked(self, slot: int) -> Iterator[int]:
        offset = slot * self.SLOT.size
        fcntl.lockf(self._fd, fcntl.LOCK_EX, self.SLOT.size, offset, os.SEEK_SET)
        try:
            yield offset
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, self.SLOT.size, offset, os.SEEK_SET)

    def update(
        self, key: bytes, fresh: TokenBucket, change: Callable[[TokenBucket], float]
    ) -> float:
        """Apply ``change`` to ``key``'s bucket (``fresh`` if it has none yet); return its result."""
        start = self._where.get(key)
        first = int.from_bytes(key[:8], "little") % self.slots if start is None else start
        for probe in range(self.slots):
            slot = (first + probe) % self.slots
            with self._locked(slot) as offset:
                owner, tokens, updated = self.SLOT.unpack_from(self._map, offset)
                if owner not in (key, bytes(16)):
                    continue  # another key's slot
                bucket = fresh
                if owner == key:
                    bucket = TokenBucket(fresh.rate, fresh.burst, tokens, updated)
                result = change(bucket)
                self.SLOT.pack_into(self._map, offset, key, bucket.tokens, bucket.updated)
                self._where[key] = slot
                return result
        raise RateLimited("ingest rate limit table is full; retry later", retry_after=1)

    def close(self) -> None:
        """Unmap and close the file."""
        self._closer()


def _release(mapping: mmap.mmap, fd: int) -> None:
    mapping.close()
    os.close(fd)


def _key_bytes(key: Hashable) -> bytes:
    """Return 16 bytes naming ``key`` in a shared bucket file (never all zero)."""
    raw = (
        key.bytes
        if isinstance(key, uuid.UUID)
        else hashlib.blake2b(repr(key).encode(), digest_size=16).digest()
    )
    return raw if any(raw) else b"\x01" + raw[1:]


class IngestRateLimiter:
    """One token bucket per API key: ``admit`` before reading a request, ``charge`` after."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        path: Path | None = None,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock  # monotonic seconds; tests move a fake one
        self._buckets: dict[Hashable, TokenBucket] = {}
        self._path = path
        self._shared: SharedBuckets | None = None  # opened on first use
        self._lock = threading.Lock()

    def _apply(self, key: Hashable, change: Callable[[TokenBucket, float], float]) -> float:
        """Return ``change(bucket, now)`` for ``key``'s bucket, updated in place."""
        with self._lock:
            now = self.clock()
            fresh = TokenBucket(self.rate, self.burst, self.burst, now)
            if self._path is not None:
                if self._shared is None:
                    self._shared = SharedBuckets(self._path)
                return self._shared.update(_key_bytes(key), fresh, lambda b: change(b, now))
            bucket = self._buckets.setdefault(key, fresh)
            return change(bucket, now)

    def admit(self, key: Hashable) -> None:
        """Return if ``key`` may send now; raise RateLimited with the seconds to wait otherwise."""
        wait = self._apply(key, lambda bucket, now: bucket.wait_s(now))
        if wait > 0:
            raise RateLimited(
                f"ingest rate limit of {self.rate:g} events/s for this API key exceeded",
                retry_after=max(1, math.ceil(wait)),
            )

    def charge(self, key: Hashable, events: int) -> None:
        """Take ``events`` from ``key``'s bucket (after the request, when the count is known)."""
        if events <= 0:
            return

        def take(bucket: TokenBucket, now: float) -> float:
            bucket.charge(events, now)
            return bucket.tokens

        self._apply(key, take)

    def available(self, key: Hashable) -> float:
        """Return the events ``key`` could send right now (negative while in debt)."""

        def peek(bucket: TokenBucket, now: float) -> float:
            bucket.refill(now)
            return bucket.tokens

        return self._apply(key, peek)

    def close(self) -> None:
        """Release the shared bucket file, if open (it is opened again on next use)."""
        with self._lock:
            if self._shared is not None:
                self._shared.close()
                self._shared = None
