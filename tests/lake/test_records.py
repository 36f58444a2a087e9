"""WAL records (``workbench.lake.records``): accepted events framed as JSON columns or Arrow IPC,
and a segment's records read back as one table in the lake schema."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from workbench.events import Limits, validate_event
from workbench.lake.records import (
    events_to_ipc,
    payloads_to_table,
    records_to_table,
    rows_payload,
    to_us,
)

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
LIMITS = Limits()
GOOD: dict[str, Any] = {"service": "auth-service", "level": "error", "message": "boom"}


def test_payloads_become_one_arrow_table_in_lake_schema() -> None:
    events = [validate_event(GOOD, now=NOW, limits=LIMITS)] * 3
    payload = rows_payload(events, ["a", "b", "c"], to_us(NOW))
    table = payloads_to_table([payload, rows_payload(events[:1], ["d"], to_us(NOW))])
    assert table.num_rows == 4
    assert table.column("id").to_pylist() == ["a", "b", "c", "d"]
    assert table.column("received_at")[0].as_py() == NOW
    assert table.column("meta").to_pylist() == [None] * 4


def test_wal_records_mix_json_and_arrow_ipc_in_order() -> None:
    events = [
        validate_event({**GOOD, "message": f"m{i}", "meta": {"i": i}}, now=NOW, limits=LIMITS)
        for i in range(5)
    ]
    recv = to_us(NOW)
    records = [
        orjson.dumps(rows_payload(events[:2], ["a", "b"], recv)),
        events_to_ipc(events[2:4], ["c", "d"], recv),
        orjson.dumps(rows_payload(events[4:], ["e"], recv)),
    ]
    table = records_to_table(records)
    assert table.column("id").to_pylist() == ["a", "b", "c", "d", "e"]
    assert table.column("message").to_pylist() == [f"m{i}" for i in range(5)]
    assert table.column("meta").to_pylist()[3] == '{"i":3}'
    assert table.column("received_at").to_pylist() == [NOW] * 5
    assert table.equals(payloads_to_table([rows_payload(events, list("abcde"), recv)]))
