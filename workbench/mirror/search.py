"""Explorer search through Elasticsearch, with the lake's semantics, when the mirror covers the range.

The log explorer may answer a full-text search from Elasticsearch instead of
scanning Parquet, but only when the answer is the same:

* :func:`covers` says whether every lake event of ``[start, end]`` is in
  Elasticsearch (no pending lake file overlaps the range, no recorded failure
  on those days); otherwise the caller searches the lake;
* :func:`search_elastic` mirrors :func:`workbench.query.search.search`: same
  filters (service, levels, inclusive time range, case-insensitive substring of
  the message through the ``message.wildcard`` field), same newest-first order
  (``timestamp`` at microsecond precision via ``date_nanos``, then ``id``), same
  totals, offset pages and cursors (interchangeable with the lake's).

``meta`` filters and offsets beyond Elasticsearch's 10 000-hit window are not
answered here (:class:`NotCovered`); the caller uses the lake for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from workbench import times
from workbench.config import Settings
from workbench.mirror.bulk import MirrorUnavailable
from workbench.mirror.elastic import DEFAULT_INDEX_PREFIX, mirror_settings
from workbench.mirror.state import MirrorState, state_path
from workbench.query.types import LogRecord, SearchQuery, SearchResult, encode_cursor, epoch_us

MAX_WINDOW = 10_000  # index.max_result_window default


class NotCovered(MirrorUnavailable):
    """Elasticsearch cannot give the lake's answer for this search; use the lake."""


def covers(
    settings: Settings,
    start: datetime | None,
    end: datetime | None,
    *,
    state: MirrorState | None = None,
) -> bool:
    """Return whether Elasticsearch holds every lake event with ``start <= timestamp <= end``."""
    from workbench.mirror.follower import Follower

    ms = mirror_settings(settings)
    if not ms.elastic_url:
        return False
    own = state is None
    st = state or MirrorState(state_path(settings))
    try:
        follower = Follower(settings, ms, None, state=st)
        pending, _ = follower.pending(record=False)
        lo = None if start is None else epoch_us(start)
        hi = None if end is None else epoch_us(end)
        for s in pending:
            if (lo is None or s.max_ts_us is None or s.max_ts_us >= lo) and (
                hi is None or s.min_ts_us is None or s.min_ts_us <= hi
            ):
                return False
        first = None if start is None else start.astimezone(UTC).date().isoformat()
        last = None if end is None else end.astimezone(UTC).date().isoformat()
        for f in st.failures(limit=1_000_000):
            day = f.index_name[-10:]  # daily index names end with YYYY-MM-DD
            if not day or ((first is None or day >= first) and (last is None or day <= last)):
                return False
        return True
    finally:
        if own:
            st.close()


def _escape_wildcard(text: str) -> str:
    return "".join("\\" + c if c in "*?\\" else c for c in text)


def search_elastic(
    es: Elasticsearch, query: SearchQuery, *, index_prefix: str = DEFAULT_INDEX_PREFIX
) -> SearchResult:
    """Return the page :func:`workbench.query.search.search` gives for ``query``, from Elasticsearch.

    Raises :class:`NotCovered` for what only the lake answers (``meta`` filters,
    offsets past 10 000 hits) and :class:`MirrorUnavailable` when Elasticsearch fails.
    """
    plan = query.plan()
    if plan.filter.meta:
        raise NotCovered("meta filters are answered by the lake")
    flt, after, offset, limit = plan.filter, plan.after, plan.offset, plan.limit
    if offset + limit + 1 > MAX_WINDOW:
        raise NotCovered("offset beyond Elasticsearch's result window; use a cursor or the lake")
    filters: list[dict[str, Any]] = []
    if flt.service is not None:
        filters.append({"term": {"service": flt.service}})
    if flt.levels is not None:
        filters.append({"terms": {"level": list(flt.levels)}})
    bounds: dict[str, str] = {}
    if flt.start is not None:
        bounds["gte"] = times.isoformat_z(flt.start)
    if flt.end is not None:
        bounds["lte"] = times.isoformat_z(flt.end)
    if bounds:
        filters.append({"range": {"timestamp": bounds}})
    if flt.text:
        filters.append(
            {
                "wildcard": {
                    "message.wildcard": {
                        "value": f"*{_escape_wildcard(flt.text)}*",
                        "case_insensitive": True,
                    }
                }
            }
        )
    es_query: dict[str, Any] = {"bool": {"filter": filters}} if filters else {"match_all": {}}
    sort = [{"timestamp": {"order": "desc"}}, {"id": {"order": "desc"}}]
    kwargs: dict[str, Any] = {}
    if after is not None:
        ts, event_id = after
        kwargs["search_after"] = [epoch_us(ts) * 1000, event_id]
    try:
        resp = es.search(
            index=f"{index_prefix}*",
            query=es_query,
            sort=sort,
            from_=offset,
            size=limit + 1,  # one beyond the page tells whether a next page exists
            track_total_hits=True,
            ignore_unavailable=True,
            allow_no_indices=True,
            **kwargs,
        )
    except Exception as exc:  # transport or API error: the caller falls back to the lake
        raise MirrorUnavailable(f"Elasticsearch search failed: {exc}") from exc
    hits = resp["hits"]["hits"]
    logs = [_record(h["_source"]) for h in hits[:limit]]
    next_cursor = None
    if logs and len(hits) > limit:
        next_cursor = encode_cursor(logs[-1].timestamp, logs[-1].id)
    return SearchResult(
        total=int(resp["hits"]["total"]["value"]), logs=logs, next_cursor=next_cursor
    )


def _record(src: Mapping[str, Any]) -> LogRecord:
    ts = times.parse_instant(str(src["timestamp"]), "timestamp")
    return LogRecord(
        id=str(src["id"]),
        service=str(src["service"]),
        level=str(src["level"]),
        message=str(src["message"]),
        timestamp=ts,
        meta=src.get("meta"),
    )
