"""The Elasticsearch mirror: follows the Parquet lake into daily ``app-logs-YYYY-MM-DD`` indices.

The lake stays the source of truth; the mirror catches up. Modules:

* :mod:`~workbench.mirror.elastic`: settings, client, index template, event -> document;
* :mod:`~workbench.mirror.state`: the durable cursor, failure table and heartbeat (SQLite);
* :mod:`~workbench.mirror.bulk`: rows -> ``streaming_bulk``, item results sorted (shared);
* :mod:`~workbench.mirror.follower`: the follower loop over the lake, with its cursor;
* :mod:`~workbench.mirror.backfill`: re-index a past range;
* :mod:`~workbench.mirror.status`: lag, health and the lake/Elasticsearch consistency check;
* :mod:`~workbench.mirror.search`: explorer search answered by Elasticsearch, lake semantics.
"""

from __future__ import annotations

from workbench.mirror.backfill import BackfillResult, backfill
from workbench.mirror.bulk import MirrorUnavailable, Retry
from workbench.mirror.elastic import MirrorSettings, make_client, mirror_settings
from workbench.mirror.follower import Follower, MirrorBusy, run_follower
from workbench.mirror.status import (
    ConsistencyReport,
    MirrorStatus,
    consistency,
    mirror_health,
    mirror_status,
)

__all__ = [
    "BackfillResult",
    "ConsistencyReport",
    "Follower",
    "MirrorBusy",
    "MirrorSettings",
    "MirrorStatus",
    "MirrorUnavailable",
    "Retry",
    "backfill",
    "consistency",
    "make_client",
    "mirror_health",
    "mirror_settings",
    "mirror_status",
    "run_follower",
]
