"""The one clock: every "now" the library makes comes from :func:`now`.

Decisions never read the clock themselves: they take ``now`` as an argument
(``workbench.alerting.decide``, trend bucketing, retention). The entry points (a
route, a CLI command, a scheduler tick, a row default) ask this module once and
pass the answer down. Tests that need a fixed or moving time use :func:`frozen`
instead of patching ``datetime`` in each module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def _system() -> datetime:
    return datetime.now(UTC)


_source: Clock = _system


def now() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return _source()


def minute() -> datetime:
    """Return the current minute in UTC (seconds and microseconds cut off)."""
    return floor_minute(now())


def floor_minute(moment: datetime) -> datetime:
    """Return ``moment`` in UTC cut down to the minute."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


@contextmanager
def frozen(at: datetime | Clock) -> Iterator[None]:
    """Make :func:`now` answer ``at`` (a fixed aware time, or a callable) inside the block.

    For tests and backtests in this process only; other processes keep the system clock.
    """
    global _source
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("clock.frozen: give an aware datetime (naive times are ambiguous)")
        fixed = at.astimezone(UTC)
        source: Clock = lambda: fixed  # noqa: E731
    else:
        source = at
    previous, _source = _source, source
    try:
        yield
    finally:
        _source = previous
