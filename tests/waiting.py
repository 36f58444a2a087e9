"""Waiting in tests on what the code lets us observe, never on a guessed duration.

A ``time.sleep(0.5)  # let the thread get there`` is a race: too short on a loaded
machine, wasted time on an idle one. Wait for an event or condition the code
exposes when there is one; otherwise poll an observable state with
:func:`wait_until`, which returns as soon as it holds and fails, naming what was
awaited, only after a generous bound.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Long enough for a loaded 2-core machine; a passing test never waits for it.
DEFAULT_TIMEOUT_S = 30.0


def wait_until(
    predicate: Callable[[], object],
    timeout: float = DEFAULT_TIMEOUT_S,
    *,
    what: str | None = None,
    every: float = 0.01,
) -> float:
    """Return the seconds it took ``predicate()`` to become true; AssertionError after ``timeout``."""
    started = time.monotonic()
    pause = threading.Event()  # never set: wait() is an interruptible pause
    while not predicate():
        if time.monotonic() - started >= timeout:
            name = what or getattr(predicate, "__name__", repr(predicate))
            raise AssertionError(f"not true within {timeout:g} s: {name}")
        pause.wait(every)
    return time.monotonic() - started


class CountingEvent(threading.Event):
    """A :class:`threading.Event` that counts the returns of :meth:`wait`.

    Put it in place of a worker thread's wake-up event to know that the worker
    went round its loop ``n`` more times (``wait_until(lambda: e.waits >= n)``)
    without guessing how long a round takes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.waits = 0

    def wait(self, timeout: float | None = None) -> bool:
        woken = super().wait(timeout)
        self.waits += 1
        return woken
