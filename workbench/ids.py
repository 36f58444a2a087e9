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


class IdGenerator:
    """Issues unique time-ordered ids; thread-safe; one per process is enough."""

    def __init__(self, node: int | None = None) -> None:
        self._node = secrets.randbits(32) if node is None else node & 0xFFFFFFFF
        self._last_ms = 0
        self._seq = secrets.randbits(24)  # random start: restarts do not reuse low numbers
        self._lock = threading.Lock()

    def new_ids(self, count: int, now_ms: int) -> list[str]:
        """Return ``count`` new ids for events accepted at ``now_ms`` (epoch milliseconds)."""
        with self._lock:
            ms = max(now_ms, self._last_ms)  # a clock step back must not break the order
            self._last_ms = ms
            start = self._seq
            self._seq = (start + count) & 0xFFFFFFFFFFFF
        prefix = f"{ms & 0xFFFFFFFFFFFF:012x}{self._node:08x}"
        if start + count <= 0xFFFFFFFFFFFF:
            return [f"{prefix}{s:012x}" for s in range(start, start + count)]
        # Wrap-around of the 48-bit sequence (practically never): keep uniqueness.
        return [f"{prefix}{(s & 0xFFFFFFFFFFFF):012x}" for s in range(start, start + count)]

    def new_id(self, now_ms: int) -> str:
        """Return one new id for an event accepted at ``now_ms``."""
        return self.new_ids(1, now_ms)[0]


def id_time_ms(event_id: str) -> int:
    """Return the accept time (epoch milliseconds) encoded in an id."""
    return int(event_id[:12], 16)
