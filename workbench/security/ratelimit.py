"""Per-key ingest rate limits: a token bucket of events per API key.

Each key's bucket holds up to ``burst`` events and refills at ``rate`` events per
second. A request is admitted while the bucket holds at least one event; its
real cost (the events it carried, known only once the body is parsed) is charged
afterwards and may take the bucket below zero, so one large batch makes the next
requests wait in proportion instead of being refused half-read. The debt is capped
at ``burst``. Refused requests raise :class:`~workbench.errors.RateLimited`
(HTTP 429 with ``Retry-After``).

Buckets live in the process: with several workers or instances each has its own,
so the fleet's limit is the per-process limit times the number of processes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

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

    def wait_s(self, now: float, need: float = 1.0) -> float:
        """Return the seconds until ``need`` events are available (0.0 if they are now)."""
        self.refill(now)
        return 0.0 if self.tokens >= need else (need - self.tokens) / self.rate

    def charge(self, cost: float, now: float) -> None:
        """Take ``cost`` events, going into debt down to ``-burst`` at most."""
        self.refill(now)
        self.tokens = max(-self.burst, self.tokens - cost)


class IngestRateLimiter:
    """One token bucket per API key: ``admit`` before reading a request, ``charge`` after."""

    def __init__(
        self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[Hashable, TokenBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, key: Hashable, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, self.burst, now)
            self._buckets[key] = bucket
        return bucket

    def admit(self, key: Hashable) -> None:
        """Return if ``key`` may send now; raise RateLimited with the seconds to wait otherwise."""
        with self._lock:
            now = self._clock()
            wait = self._bucket(key, now).wait_s(now)
        if wait > 0:
            raise RateLimited(
                f"ingest rate limit of {self.rate:g} events/s for this API key exceeded",
                retry_after=max(1, math.ceil(wait)),
            )

    def charge(self, key: Hashable, events: int) -> None:
        """Take ``events`` from ``key``'s bucket (after the request, when the count is known)."""
        if events <= 0:
            return
        with self._lock:
            now = self._clock()
            self._bucket(key, now).charge(events, now)

    def available(self, key: Hashable) -> float:
        """Return the events ``key`` could send right now (negative while in debt)."""
        with self._lock:
            now = self._clock()
            bucket = self._bucket(key, now)
            bucket.refill(now)
            return bucket.tokens
