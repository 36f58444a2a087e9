"""How far behind the mirror is, what failed, and whether lake and Elasticsearch agree.

* :func:`mirror_status`: lag (events and seconds behind), last error, failure count,
  computed live from the lake and the cursor (what ``workbench mirror status`` shows).
* :func:`mirror_health`: the same from the follower's last heartbeat only (cheap,
  for ``/health``); ``None`` when no ``ELASTIC_URL`` is configured.
* :func:`consistency`: counts per UTC day and service in the lake and in
  Elasticsearch over a range, with the differences listed.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from elasticsearch import Elasticsearch

from workbench.config import Settings
from workbench.lake.reader import file_stats, scan_files
from workbench.mirror.elastic import (
    DEFAULT_INDEX_PREFIX,
    MirrorSettings,
    index_for,
    mirror_settings,
)
from workbench.mirror.state import Failure, MirrorState, state_path

# The follower writes a heartbeat every pass (at least every poll interval or
# backoff step, capped at 60 s); older than this means it is not running.
_STALE_AFTER_S = 180.0


@dataclass(frozen=True, slots=True)
class MirrorStatus:
    """The mirror's position relative to the lake, and its recent trouble."""

    enabled: bool
    pending_files: int
    events_behind: int
    seconds_behind: float
    mirrored_files: int
    failure_count: int
    recent_failures: list[Failure] = field(default_factory=list)
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_success_at: datetime | None = None
    last_pass_at: datetime | None = None
    follower_running: bool = False
    healthy: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Return the status as JSON-ready plain data."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, datetime):
                d[k] = v.isoformat().replace("+00:00", "Z")
        d["recent_failures"] = [asdict(f) for f in self.recent_failures]
        return d


def _at(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


def mirror_status(
    settings: Settings,
    *,
    now: float | None = None,
    failures: int = 10,
    state: MirrorState | None = None,
) -> MirrorStatus:
    """Return the live status: pending lake files vs. the cursor, plus the follower's heartbeat."""
    from workbench.mirror.follower import Follower

    ms = mirror_settings(settings)
    clock = time.time if now is None else (lambda: now)
    own = state is None
    st = state or MirrorState(state_path(settings))
    try:
        # A Follower without a client only lists: pending() never talks to ES.
        follower = Follower(settings, ms, None, state=st, clock=clock)
        pending, _ = follower.pending(record=False)
        meta = st.meta()
        last_pass = _at(meta.get("last_pass_at"))
        t = clock()
        running = last_pass is not None and t - last_pass.timestamp() < _STALE_AFTER_S
        return MirrorStatus(
            enabled=ms.elastic_url is not None,
            pending_files=len(pending),
            events_behind=sum(s.num_rows for s in pending),
            seconds_behind=follower._lag_seconds(pending),
            mirrored_files=len(follower._mirrored),
            failure_count=st.failure_count(),
            recent_failures=st.failures(failures),
            last_error=meta.get("last_error"),
            last_error_at=_at(meta.get("last_error_at")),
            last_success_at=_at(meta.get("last_success_at")),
            last_pass_at=last_pass,
            follower_running=running,
            healthy=running and meta.get("healthy") == "1",
        )
    finally:
        if own:
            st.close()


def mirror_health(settings: Settings, *, now: float | None = None) -> dict[str, Any] | None:
    """Return the mirror's health from its last heartbeat, or ``None`` when no mirror is configured.

    ``status`` is ``ok`` (last pass succeeded recently), ``error`` (last pass
    failed: Elasticsearch down or rejecting), ``stopped`` (no recent heartbeat)
    or ``starting`` (never ran). Does not list the lake: safe for ``/health``.
    """
    ms = mirror_settings(settings)
    if not ms.elastic_url:
        return None
    path = state_path(settings)
    if not path.exists():
        return {
            "status": "starting",
            "events_behind": None,
            "seconds_behind": None,
            "last_error": None,
            "failure_count": 0,
        }
    st = MirrorState(path)
    try:
        meta = st.meta()
        failures = st.failure_count()
    finally:
        st.close()
    t = time.time() if now is None else now
    last_pass = meta.get("last_pass_at")
    if last_pass is None:
        status = "starting"
    elif t - float(last_pass) > _STALE_AFTER_S:
        status = "stopped"
    else:
        status = "ok" if meta.get("healthy") == "1" else "error"
    behind = meta.get("pending_events")
    lag = meta.get("lag_seconds")
    return {
        "status": status,
        "events_behind": None if behind is None else int(float(behind)),
        "seconds_behind": None if lag is None else round(float(lag), 1),
        "last_error": meta.get("last_error"),
        "last_error_at": _iso(_at(meta.get("last_error_at"))),
        "last_success_at": _iso(_at(meta.get("last_success_at"))),
        "failure_count": failures,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class CountDifference:
    """Events of one service on one UTC day: lake vs. Elasticsearch."""

    day: date
    service: str
    lake: int
    elastic: int

    @property
    def missing(self) -> int:
        """Return how many more events the lake has than Elasticsearch (negative: extra in ES)."""
        return self.lake - self.elastic


@dataclass(frozen=True, slots=True)
class ConsistencyReport:
    """Per day and service counts over ``[start, end)``, and where they differ."""

    start: datetime
    end: datetime
    lake_total: int
    elastic_total: int
    rows: list[CountDifference]

    @property
    def differences(self) -> list[CountDifference]:
        """Return the (day, service) rows whose lake and Elasticsearch counts differ."""
        return [r for r in self.rows if r.lake != r.elastic]

    @property
    def consistent(self) -> bool:
        """Return whether every (day, service) count agrees."""
        return not self.differences


def lake_counts(lake_url: str, start: datetime, end: datetime) -> dict[tuple[date, str], int]:
    """Return ``{(UTC day, service): events}`` in the lake for ``start <= timestamp < end``."""
    lf = scan_files([s.path for s in file_stats(lake_url, start, end)])
    df = (
        lf.filter((pl.col("timestamp") >= start) & (pl.col("timestamp") < end))
        .group_by(pl.col("timestamp").dt.date().alias("day"), "service")
        .len()
        .collect()
    )
    return {(d, s): int(n) for d, s, n in df.iter_rows()}


def elastic_counts(
    es: Elasticsearch, start: datetime, end: datetime, *, index_prefix: str = DEFAULT_INDEX_PREFIX
) -> dict[tuple[date, str], int]:
    """Return ``{(UTC day, service): documents}`` in the daily indices for ``start <= timestamp < end``."""
    out: dict[tuple[date, str], int] = {}
    day = start.astimezone(UTC).date()
    last = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    while day <= last:
        resp = es.search(
            index=index_for(day, index_prefix),
            ignore_unavailable=True,
            size=0,
            track_total_hits=True,
            query={
                "range": {
                    "timestamp": {
                        "gte": _iso(start.astimezone(UTC)),
                        "lt": _iso(end.astimezone(UTC)),
                    }
                }
            },
            aggregations={"services": {"terms": {"field": "service", "size": 65_536}}},
        )
        aggs = (resp.body.get("aggregations") or {}).get("services") or {"buckets": []}
        for b in aggs["buckets"]:
            out[(day, str(b["key"]))] = int(b["doc_count"])
        day += timedelta(days=1)
    return out


def consistency(
    lake_url: str,
    es: Elasticsearch,
    start: datetime,
    end: datetime,
    *,
    index_prefix: str = DEFAULT_INDEX_PREFIX,
    refresh: bool = False,
) -> ConsistencyReport:
    """Return lake vs. Elasticsearch counts per UTC day and service over ``[start, end)``.

    ``refresh`` makes just-indexed documents countable first (Elasticsearch
    exposes new documents only after a refresh, about every second).
    """
    if refresh:
        es.indices.refresh(index=f"{index_prefix}*", ignore_unavailable=True, allow_no_indices=True)
    lake = lake_counts(lake_url, start, end)
    elastic = elastic_counts(es, start, end, index_prefix=index_prefix)
    keys = sorted(set(lake) | set(elastic))
    rows = [CountDifference(d, s, lake.get((d, s), 0), elastic.get((d, s), 0)) for d, s in keys]
    return ConsistencyReport(
        start=start,
        end=end,
        lake_total=sum(lake.values()),
        elastic_total=sum(elastic.values()),
        rows=rows,
    )


__all__ = [
    "ConsistencyReport",
    "CountDifference",
    "MirrorSettings",
    "MirrorStatus",
    "consistency",
    "elastic_counts",
    "lake_counts",
    "mirror_health",
    "mirror_status",
]
