"""Unique, time-ordered event ids: 32 lower-case hex characters that sort by accept time.

Layout (128 bits, like a ULID but hex so that formatting is one cheap f-string):

    48 bits  milliseconds since the Unix epoch (accept time)
    32 bits  random per-generator node id (keeps two processes apart)
    48 bits  per-generator sequence, strictly increasing

Ids of one generator sort exactly in issue order, even if the wall clock steps
back (the millisecond part never decreases). Ids of different processes sort by
millisecond first; within one millisecond their order is arbitrary but they are
still unique (different node ids).
"""

from __future__ import annotations

import secrets
import threading

import numpy as np
import pyarrow as pa

_MASK48 = 0xFFFFFFFFFFFF


class IdGenerator:
    """Issues unique time-ordered ids; thread-safe; one per process is enough."""

    def __init__(self, node: int | None = None) -> None:
        self._node = secrets.randbits(32) if node is None else node & 0xFFFFFFFF
        self._last_ms = 0
        self._seq = secrets.randbits(24)  # random start: restarts do not reuse low numbers
        self._lock = threading.Lock()

    def _reserve(self, count: int, now_ms: int) -> tuple[str, int]:
        """Return the id prefix (time and node) and the first of ``count`` sequence numbers."""
        with self._lock:
            ms = max(now_ms, self._last_ms)  # a clock step back must not break the order
            self._last_ms = ms
            start = self._seq
            self._seq = (start + count) & _MASK48
        return f"{ms & _MASK48:012x}{self._node:08x}", start

    def new_ids(self, count: int, now_ms: int) -> list[str]:
        """Return ``count`` new ids for events accepted at ``now_ms`` (epoch milliseconds)."""
        prefix, start = self._reserve(count, now_ms)
        if start + count <= 0xFFFFFFFFFFFF:
            return [f"{prefix}{s:012x}" for s in range(start, start + count)]
        # Wrap-around of the 48-bit sequence (practically never): keep uniqueness.
        return [f"{prefix}{(s & 0xFFFFFFFFFFFF):012x}" for s in range(start, start + count)]

    def new_id_array(self, count: int, now_ms: int) -> pa.Array:
        """Return ``count`` new ids as an Arrow string array: the same ids as :meth:`new_ids`,
        built with numpy (about 20 ns per id instead of 200 for an f-string each)."""
        prefix, start = self._reserve(count, now_ms)
        seq = (np.arange(count, dtype=np.uint64) + np.uint64(start)) & np.uint64(_MASK48)
        # bytes.hex() of the big-endian sequence numbers: 16 hex digits each, keep the last 12.
        digits = np.frombuffer(seq.astype(">u8").tobytes().hex().encode(), dtype=np.uint8)
        chars = np.empty((count, 32), dtype=np.uint8)
        chars[:, :20] = np.frombuffer(prefix.encode(), dtype=np.uint8)
        chars[:, 20:] = digits.reshape(count, 16)[:, 4:]
        offsets = np.arange(0, 32 * (count + 1), 32, dtype=np.int32)
        return pa.Array.from_buffers(
            pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(chars)]
        )

    def new_id(self, now_ms: int) -> str:
        """Return one new id for an event accepted at ``now_ms``."""
        return self.new_ids(1, now_ms)[0]


def id_time_ms(event_id: str) -> int:
    """Return the accept time (epoch milliseconds) encoded in an id."""
    return int(event_id[:12], 16)
