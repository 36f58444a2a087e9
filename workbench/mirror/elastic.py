"""The Elasticsearch edge: client construction, index template, event -> bulk action.

Everything here is a thin layer over the official ``elasticsearch`` client. The
follower (``workbench.mirror.follower``) decides *what* to send; this module knows
*how* an event looks in Elasticsearch: a document with ``_id`` = event id in the
daily index ``{prefix}YYYY-MM-DD`` of its UTC timestamp, as the original system.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from elasticsearch import Elasticsearch

from workbench.config import DEFAULT_INDEX_PREFIX, MirrorSettings, Settings
from workbench.errors import ConfigError

# Above this, a message is still searchable as text but not kept in the keyword
# subfield (a keyword term is limited to 32766 bytes; long terms are useless for
# exact matching and aggregations anyway).
MESSAGE_KEYWORD_IGNORE_ABOVE = 1024
# Higher than the built-in templates (100, e.g. ``logs-*-*``) so ours wins if an
# operator's own patterns ever overlap.
TEMPLATE_PRIORITY = 500


def mirror_settings(settings: Settings | None = None, **overrides: Any) -> MirrorSettings:
    """Return the mirror settings from the environment, ``ELASTIC_URL`` taken from ``settings``."""
    try:
        ms = MirrorSettings(**overrides)
    except Exception as exc:  # pydantic's message names the variable (alias)
        raise ConfigError(f"invalid mirror configuration: {exc}") from exc
    if settings is not None and "ELASTIC_URL" not in overrides and "elastic_url" not in overrides:
        ms.elastic_url = settings.elastic_url
    return ms


def make_client(ms: MirrorSettings) -> Elasticsearch:
    """Return an Elasticsearch client for the configured URL, auth and CA.

    Transport-level retries are off: the follower owns retrying (with its own
    backoff and a record of the last error), so a dead cluster is noticed at once.
    """
    if not ms.elastic_url:
        raise ConfigError("ELASTIC_URL is not set: the mirror has nowhere to write")
    if ms.username and not ms.password:
        raise ConfigError("ELASTIC_USERNAME is set but ELASTIC_PASSWORD is not")
    kwargs: dict[str, Any] = {
        "request_timeout": ms.request_timeout_s,
        "max_retries": 0,
        "retry_on_timeout": False,
    }
    try:
        from elasticsearch.serializer import OrjsonSerializer

        # orjson: request bodies are most of the follower's CPU when catching up.
        kwargs["serializer"] = OrjsonSerializer()
    except ImportError:  # older clients: the standard JSON serializer is correct, slower
        pass
    if ms.api_key:
        kwargs["api_key"] = ms.api_key
    elif ms.username:
        kwargs["basic_auth"] = (ms.username, ms.password or "")
    if ms.ca_certs is not None:
        kwargs["ca_certs"] = str(ms.ca_certs)
    if not ms.verify_certs:
        kwargs["verify_certs"] = False
        kwargs["ssl_show_warn"] = False
    return Elasticsearch(ms.elastic_url, **kwargs)


def index_template(ms: MirrorSettings) -> dict[str, Any]:
    """Return the composable index template body for the daily log indices."""
    return {
        "index_patterns": [ms.index_pattern],
        "priority": TEMPLATE_PRIORITY,
        "template": {
            "mappings": {
                "dynamic": True,
                "properties": {
                    "id": {"type": "keyword"},
                    "service": {"type": "keyword"},
                    "level": {"type": "keyword"},
                    "message": {
                        "type": "text",
                        "fields": {
                            "keyword": {
                                "type": "keyword",
                                "ignore_above": MESSAGE_KEYWORD_IGNORE_ABOVE,
                            },
                            # Case-insensitive substring search, the lake's semantics
                            # for the explorer's text filter (workbench.mirror.search).
                            "wildcard": {"type": "wildcard"},
                        },
                    },
                    # date_nanos keeps the microseconds: the explorer's newest-first
                    # order and inclusive range bounds then match the lake exactly
                    # (plain "date" would round to milliseconds).
                    "timestamp": {"type": "date_nanos"},
                    "received_at": {"type": "date"},
                    "meta": {"type": "object", "dynamic": True},
                },
            }
        },
        "_meta": {"managed_by": "log-workbench mirror"},
    }


def install_template(es: Elasticsearch, ms: MirrorSettings) -> None:
    """Create or update the index template (idempotent; run on every start)."""
    body = index_template(ms)
    es.indices.put_index_template(
        name=ms.template_name,
        index_patterns=body["index_patterns"],
        priority=body["priority"],
        template=body["template"],
        meta=body["_meta"],
    )


def index_for(day: date, prefix: str = DEFAULT_INDEX_PREFIX) -> str:
    """Return the daily index name of a UTC day, e.g. ``app-logs-2026-11-26``."""
    return f"{prefix}{day.isoformat()}"


def _iso(value: datetime) -> str:
    # Microseconds kept: ES "date" accepts them (stored as ms, the source keeps
    # the full value, which the lake's ordering relies on).
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_meta(raw: str | None) -> dict[str, Any] | None:
    """Return the ``meta`` object of a lake row (``ValueError`` when it is not JSON)."""
    if raw is None:
        return None
    meta = orjson.loads(raw)
    if not isinstance(meta, dict):
        # The ingestor only accepts objects; anything else would break the
        # object mapping of every later document, so wrap it.
        meta = {"value": meta}
    return meta


def document(row: Mapping[str, Any]) -> dict[str, Any]:
    """Return the Elasticsearch ``_source`` of one lake row (``meta`` parsed to an object)."""
    source: dict[str, Any] = {
        "id": row["id"],
        "timestamp": _iso(row["timestamp"]),
        "received_at": _iso(row["received_at"]),
        "service": row["service"],
        "level": row["level"],
        "message": row["message"],
    }
    meta = parse_meta(row.get("meta"))
    if meta is not None:
        source["meta"] = meta
    return source


def actions(
    table: pa.Table, prefix: str = DEFAULT_INDEX_PREFIX
) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    """Yield ``(event id, bulk index action, None)`` per lake row, or ``(id, None, error)``.

    The action has ``_id`` = event id and ``_index`` = the daily index of the
    event's UTC timestamp. Timestamps and index names are formatted column-wise
    (Arrow), which is most of the cost of building documents row by row.
    """
    if table.num_rows == 0:
        return
    ts = table["timestamp"]
    iso = pc.strftime(ts, format="%Y-%m-%dT%H:%M:%SZ").to_pylist()
    days = pc.strftime(ts, format="%Y-%m-%d").to_pylist()
    received = pc.strftime(table["received_at"], format="%Y-%m-%dT%H:%M:%SZ").to_pylist()
    cols = zip(
        table["id"].to_pylist(),
        table["service"].to_pylist(),
        table["level"].to_pylist(),
        table["message"].to_pylist(),
        table["meta"].to_pylist(),
        iso,
        received,
        days,
        strict=True,
    )
    for event_id, service, level, message, raw_meta, at, recv, day in cols:
        try:
            meta = parse_meta(raw_meta)
        except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
            yield event_id, None, f"meta is not valid JSON: {exc}"
            continue
        source: dict[str, Any] = {
            "id": event_id,
            "timestamp": at,
            "received_at": recv,
            "service": service,
            "level": level,
            "message": message,
        }
        if meta is not None:
            source["meta"] = meta
        yield (
            event_id,
            {
                "_op_type": "index",
                "_index": f"{prefix}{day}",
                "_id": event_id,
                "_source": source,
            },
            None,
        )
