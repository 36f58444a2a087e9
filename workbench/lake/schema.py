"""The lake's table schema and partition layout: the contract every reader and writer shares.

Columns (one row per log event):

============  ==========================  =============================================
column        Arrow type                  meaning
============  ==========================  =============================================
id            string                      unique, time-ordered (sorts by receive time)
timestamp     timestamp[us, tz=UTC]       the client's event time (receive time if absent)
received_at   timestamp[us, tz=UTC]       when the ingestor accepted it
service       string                      non-empty service name
level         string                      debug|info|warn|error|fatal (lower case)
message       string                      non-empty message text
meta          string (nullable)           JSON object text, or null
============  ==========================  =============================================

Partitioning is hive style on the UTC date of ``timestamp``:
``logs/date=2026-11-26/part-….parquet``. Retention deletes whole partitions.
A file is visible only once complete: on local disk writers write ``.tmp-…`` names and
rename; on object storage they upload once under the final name (``workbench.lake.fs``).
Readers ignore names that start with ``.`` or ``_``.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa

LEVELS: tuple[str, ...] = ("debug", "info", "warn", "error", "fatal")
ERROR_LEVELS: tuple[str, ...] = ("error", "fatal")
# Other names shippers give our levels (Python's ``logging``, syslog, many SDKs):
# accepted in any case, on ingest and in queries, as ours (docs/shipping.md, "Levels").
LEVEL_ALIASES: dict[str, str] = {"warning": "warn", "critical": "fatal", "err": "error"}
# Every lower-case name accepted, mapped to the stored level.
LEVEL_NAMES: dict[str, str] = {**{level: level for level in LEVELS}, **LEVEL_ALIASES}


def level_of(name: str) -> str | None:
    """Return the stored level for a level name in any case or alias (``"WARNING"`` -> ``"warn"``),
    or None for an unknown one."""
    return LEVEL_NAMES.get(name.strip().lower())


LOGS_TABLE = "logs"
# Damaged files are moved here (workbench.lake.integrity), beside the tables.
QUARANTINE_DIR = "_quarantine"
PARTITION_KEY = "date"

SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("received_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("service", pa.string(), nullable=False),
        pa.field("level", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("meta", pa.string(), nullable=True),
    ]
)

COLUMNS: tuple[str, ...] = tuple(SCHEMA.names)


def partition_dir(day: date) -> str:
    """Return the partition folder name for a UTC day, e.g. ``date=2026-11-26``."""
    return f"{PARTITION_KEY}={day.isoformat()}"


def parse_partition_dir(name: str) -> date | None:
    """Return the day of a partition folder name, or None if it is not one."""
    prefix = f"{PARTITION_KEY}="
    if not name.startswith(prefix):
        return None
    try:
        return date.fromisoformat(name[len(prefix) :])
    except ValueError:
        return None
