"""A small real lake with one case of each rule kind at ``NOW``, and the rules that catch them.

Shared by the in-process kind tests and the ``workbench evaluate --now`` test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.factories import write_events

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def rows(at: datetime, n: int, service: str, level: str, message: str) -> list[dict[str, Any]]:
    """``n`` events spread over the 5 minutes before ``at``."""
    return [
        {
            "timestamp": at - timedelta(minutes=5) + timedelta(seconds=300 * (i + 1) / n),
            "service": service,
            "level": level,
            "message": message,
        }
        for i in range(n)
    ]


def write_kinds_lake(lake_url: str) -> None:
    """Write the previous 7 days (baselines) and the window ending at ``NOW``."""
    for d in range(1, 8):
        day = NOW - d * DAY
        past = (
            rows(day, 2, "seasonal", "error", "slow query 12 ms")  # 2 errors at noon every day
            + rows(day, 3, "patterns", "error", "timeout after 31 ms")
            + rows(day, 1, "silent", "info", "heartbeat")
            + rows(day - timedelta(hours=3), 4, "ratio", "info", "ok")
        )
        write_events(lake_url, past)
    window = (
        rows(NOW, 5, "counted", "error", "boom")
        + rows(NOW, 6, "ratio", "error", "failed")
        + rows(NOW, 14, "ratio", "info", "ok")
        + rows(NOW, 3, "matched", "error", "Connection REFUSED by db-7")
        + rows(NOW, 5, "matched", "error", "other trouble")
        + rows(NOW, 2, "patterns", "error", "disk 91% full on /var")
        + rows(NOW, 5, "patterns", "error", "timeout after 7 ms")
        + rows(NOW, 12, "seasonal", "error", "slow query 800 ms")
    )
    write_events(lake_url, window)


#: One rule per kind that fires at NOW (name -> catalog fields), and the expectation.
FIRING: dict[str, dict[str, Any]] = {
    "threshold": {"service": "counted", "threshold": 5},
    "ratio": {"service": "ratio", "kind": "ratio", "threshold": 30, "min_events": 20},
    "absence": {
        "service": "silent",
        "kind": "absence",
        "threshold": 1,
        "levels": ["debug", "info", "warn", "error", "fatal"],
    },
    "match": {"service": "matched", "kind": "match", "threshold": 3, "match": "connection refused"},
    "new_pattern": {
        "service": "patterns",
        "kind": "new_pattern",
        "threshold": 2,
        "baseline_days": 7,
    },
    "anomaly": {
        "service": "seasonal",
        "kind": "anomaly",
        "threshold": 5,
        "baseline_days": 7,
        "sensitivity": 3.0,
    },
}
#: (error count, observed value, baseline) each firing rule records on its incident.
EXPECTED: dict[str, tuple[int, float, float | None]] = {
    "threshold": (5, 5.0, None),
    "ratio": (6, 30.0, 20.0),
    "absence": (0, 0.0, None),
    "match": (3, 3.0, None),
    "new_pattern": (2, 2.0, None),
    "anomaly": (12, 12.0, 2.0),
}
