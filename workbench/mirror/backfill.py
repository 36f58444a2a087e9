"""Re-index a past range of the lake into Elasticsearch (a new cluster, a deleted index).

Independent of the follower's cursor and safe to run while it runs: documents are
keyed by event id, so events already there are overwritten, not duplicated.
Permanent failures go to the same failure table; events that now succeed leave it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from elasticsearch import ApiError, Elasticsearch, TransportError

from workbench.config import Settings
from workbench.lake import fs as lakefs
from workbench.lake.reader import file_stats
from workbench.mirror.bulk import (
    MirrorUnavailable,
    Retry,
    file_batches,
    read_file,
    relative_path,
    send_tables,
)
from workbench.mirror.elastic import MirrorSettings, install_template
from workbench.mirror.state import MirrorState, state_path


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """What a backfill re-indexed."""

    files: int
    events: int
    indexed: int
    failed: int


def backfill(
    settings: Settings,
    ms: MirrorSettings,
    es: Elasticsearch,
    start: datetime,
    end: datetime,
    *,
    retry: Retry | None = None,
    state: MirrorState | None = None,
) -> BackfillResult:
    """Re-index every lake event with ``start <= timestamp < end`` (new cluster, deleted index).

    Independent of the follower's cursor; safe to run while it runs (same ids).
    Permanent failures go to the failure table like the follower's.
    """
    retry = retry or Retry(max_backoff_s=ms.max_backoff_s)
    own_state = state is None
    st = state or MirrorState(state_path(settings))
    filesystem, root = lakefs.resolve(settings.lake_url)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    files = events = indexed = failed = 0
    try:
        install_template(es, ms)
        stats = file_stats(settings.lake_url, start, end)
        for batch in file_batches(stats, ms.batch_events):
            tables = []
            for s in batch:
                t = read_file(filesystem, s.path)
                ts = t["timestamp"]
                t = t.filter(
                    pc.and_(
                        pc.greater_equal(ts, pa.scalar(start, ts.type)),
                        pc.less(ts, pa.scalar(end, ts.type)),
                    )
                )
                tables.append((relative_path(s.path, root), t))
                events += t.num_rows
            result = send_tables(es, tables, index_prefix=ms.index_prefix, retry=retry)
            st.record_failures(result.failures, result.succeeded_ids)
            files += len(batch)
            indexed += result.indexed
            failed += len(result.failures)
    except (ApiError, TransportError) as exc:
        raise MirrorUnavailable(f"Elasticsearch failed during backfill: {exc}") from exc
    finally:
        if own_state:
            st.close()
    return BackfillResult(files=files, events=events, indexed=indexed, failed=failed)
