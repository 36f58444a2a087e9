"""Timing shared by the benchmark scripts (imported as ``timing``: scripts run from bench/)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from workbench.lake import message_index


def measure(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Return (p50, p95) milliseconds of ``runs`` calls after one warm-up call.

    The warm-up may start the background message indexer (text search): it is waited for,
    so the runs time the steady state; scripts print cold figures apart.
    """
    fn()
    message_index.wait_for_message_index()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95
