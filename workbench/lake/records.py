"""WAL records: accepted events framed as the unit the write-ahead log stores, and back.

An accepted event is an :data:`Event` tuple
``(timestamp_us, service, level, message, meta_json)``: the event time in UTC
microseconds since the epoch, the stored level, and ``meta`` already serialized
as JSON text (or None). Validation (:mod:`workbench.events`) makes them; the
ingestor adds ``id`` and ``received_at`` and frames each request's events as one
record:

* :func:`rows_payload` - JSON columns, for small requests (a few Arrow arrays
  cost more than they save there);
* :func:`events_to_ipc` / :func:`columns_to_ipc` - one Arrow IPC stream in the
  lake schema, for batches (tuples, or Arrow columns from the fast lane);
* :func:`records_to_table` - a segment's records, either form, back into one
  Arrow table for the Parquet writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from workbench.lake.schema import SCHEMA

# (timestamp_us, service, level, message, meta_json)
Event = tuple[int, str, str, str, str | None]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_TS = pa.timestamp("us", tz="UTC")


def to_us(moment: datetime) -> int:
    """Return ``moment`` as UTC microseconds since the epoch (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE_US


def from_us(us: int) -> datetime:
    """Return the aware UTC datetime of epoch microseconds ``us``."""
    return _EPOCH + timedelta(microseconds=us)


def rows_payload(events: Sequence[Event], ids: Sequence[str], received_us: int) -> dict[str, Any]:
    """Return accepted events as columns (plain lists), the unit stored in the WAL."""
    ts, service, level, message, meta = zip(*events, strict=True) if events else ((),) * 5
    return {
        "id": list(ids),
        "received_at": received_us,
        "timestamp": list(ts),
        "service": list(service),
        "level": list(level),
        "message": list(message),
        "meta": list(meta),
    }


def events_to_ipc(events: Sequence[Event], ids: Sequence[str], received_us: int) -> bytes:
    """Return accepted events as one Arrow IPC stream (lake schema), the WAL form for batches.

    Building Arrow once at accept time and reading it back zero-copy costs about a
    third of a JSON round trip (dump, load, rebuild) per event; small requests stay
    JSON because a few Arrow arrays cost more than they save there.
    """
    ts, service, level, message, meta = zip(*events, strict=True)
    n = len(ids)
    return _ipc(
        [
            pa.array(ids, pa.string()),
            pa.array(ts, _TS),
            pa.repeat(pa.scalar(received_us, _TS), n),
            pa.array(service, pa.string()),
            pa.array(level, pa.string()),
            pa.array(message, pa.string()),
            pa.array(meta, pa.string()),
        ]
    )


def columns_to_ipc(columns: pa.RecordBatch, ids: pa.Array, received_us: int) -> bytes:
    """Return accepted events given as Arrow columns (``timestamp``, ``service``, ``level``,
    ``message``, ``meta``) with their ids as one Arrow IPC stream (lake schema)."""
    return _ipc(
        [
            ids,
            columns.column("timestamp"),
            pa.repeat(pa.scalar(received_us, _TS), columns.num_rows),
            columns.column("service"),
            columns.column("level"),
            columns.column("message"),
            columns.column("meta"),
        ]
    )


def _ipc(arrays: list[pa.Array]) -> bytes:
    batch = pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, SCHEMA) as writer:
        writer.write_batch(batch)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def records_to_table(records: Sequence[bytes]) -> pa.Table:
    """Return one Arrow table (lake schema) of WAL records, JSON columns or Arrow IPC alike.

    The order of rows follows the records, so replaying a segment rebuilds the
    same table as its first flush did.
    """
    tables: list[pa.Table] = []
    json_run: list[dict[str, Any]] = []
    for record in records:
        if record[:1] == b"{":
            json_run.append(orjson.loads(record))
            continue
        if json_run:
            tables.append(payloads_to_table(json_run))
            json_run = []
        tables.append(pa.ipc.open_stream(record).read_all())
    if json_run or not tables:
        tables.append(payloads_to_table(json_run))
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def payloads_to_table(payloads: Sequence[dict[str, Any]]) -> pa.Table:
    """Return one Arrow table (lake schema) of the column payloads, built column by column."""
    ids: list[str] = []
    ts: list[int] = []
    received: list[int] = []
    service: list[str] = []
    level: list[str] = []
    message: list[str] = []
    meta: list[str | None] = []
    for p in payloads:
        n = len(p["id"])
        ids += p["id"]
        ts += p["timestamp"]
        received += [p["received_at"]] * n
        service += p["service"]
        level += p["level"]
        message += p["message"]
        meta += p["meta"]
    tz = pa.timestamp("us", tz="UTC")
    return pa.Table.from_arrays(
        [
            pa.array(ids, pa.string()),
            pa.array(ts, pa.int64()).cast(tz),
            pa.array(received, pa.int64()).cast(tz),
            pa.array(service, pa.string()),
            pa.array(level, pa.string()),
            pa.array(message, pa.string()),
            pa.array(meta, pa.string()),
        ],
        schema=SCHEMA,
    )
