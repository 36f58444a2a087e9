"""Send lake rows to Elasticsearch with the bulk helper; sort item results into done, retry, failed.

Shared by the follower and backfill. Documents are ``index`` actions keyed by event
id (see :mod:`workbench.mirror.elastic`), so sending a row twice never duplicates it.
Item errors that retrying can fix (429, 5xx) are retried by ``streaming_bulk`` with
backoff; if they persist, :class:`MirrorUnavailable` tells the caller not to record
the batch. Other item errors come back as :class:`~workbench.mirror.state.Failure`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch.helpers import streaming_bulk

from workbench.errors import WorkbenchError
from workbench.lake.reader import FileStat
from workbench.mirror.elastic import actions
from workbench.mirror.state import Failure

# Item statuses worth retrying: Elasticsearch overloaded (429) or a shard/node
# problem (5xx). Everything else (400 mapper_parsing_exception…) fails the same
# way every time.
RETRYABLE_STATUS: tuple[int, ...] = (429, 500, 502, 503, 504)


class MirrorUnavailable(WorkbenchError):
    """Elasticsearch could not take a batch now (down, overloaded); retry later."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Backoff parameters: item retries inside one send, and the follower's own backoff."""

    item_retries: int = 3
    item_backoff_s: float = 0.5
    item_max_backoff_s: float = 10.0
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 60.0


@dataclass(slots=True)
class SendResult:
    """What one bulk send achieved."""

    indexed: int = 0
    failures: list[Failure] = field(default_factory=list)
    succeeded_ids: list[str] = field(default_factory=list)


def relative_path(path: str, root: str) -> str:
    """Return a lake file's path relative to the lake root (the cursor's key)."""
    return path[len(root) :].lstrip("/") if path.startswith(root) else path


def folder_of(rel: str) -> str:
    """Return the partition folder part of a relative path."""
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


def send_tables(
    es: Elasticsearch,
    tables: Sequence[tuple[str, pa.Table]],
    *,
    index_prefix: str,
    retry: Retry,
    chunk_size: int = 500,
) -> SendResult:
    """Bulk-index the rows of ``(file, table)`` pairs; return counts, permanent failures, ids sent.

    Raises :class:`MirrorUnavailable` when Elasticsearch cannot be reached or keeps
    answering with retryable errors: the caller must not record the files.
    """
    result = SendResult()
    file_of: dict[str, str] = {}

    def stream() -> Iterator[dict[str, Any]]:
        for rel, table in tables:
            for event_id, action, error in actions(table, index_prefix):
                if action is None:  # cannot become a document: recorded, never sent
                    result.failures.append(
                        Failure(
                            event_id=event_id,
                            index_name="",
                            file=rel,
                            status=0,
                            error_type="invalid_document",
                            reason=error or "invalid document",
                        )
                    )
                    continue
                file_of[event_id] = rel
                yield action

    transient: list[dict[str, Any]] = []
    try:
        for ok, item in streaming_bulk(
            es,
            stream(),
            chunk_size=chunk_size,
            max_chunk_bytes=20 * 1024 * 1024,
            raise_on_error=False,
            raise_on_exception=True,
            max_retries=retry.item_retries,
            initial_backoff=retry.item_backoff_s,
            max_backoff=retry.item_max_backoff_s,
            retry_on_status=RETRYABLE_STATUS,
            yield_ok=True,
        ):
            _, info = next(iter(item.items()))
            if ok:
                result.indexed += 1
                result.succeeded_ids.append(str(info.get("_id")))
                continue
            status = int(info.get("status", 500))
            if status in RETRYABLE_STATUS:
                transient.append(info)
                continue
            err = info.get("error") or {}
            if isinstance(err, str):
                err = {"type": "error", "reason": err}
            event_id = str(info.get("_id"))
            result.failures.append(
                Failure(
                    event_id=event_id,
                    index_name=str(info.get("_index", "")),
                    file=file_of.get(event_id, ""),
                    status=status,
                    error_type=str(err.get("type", "unknown")),
                    reason=_reason(err),
                )
            )
    except ApiError as exc:
        raise MirrorUnavailable(f"bulk request failed: {exc.meta.status} {exc.message}") from exc
    except TransportError as exc:
        raise MirrorUnavailable(f"Elasticsearch unreachable: {exc}") from exc
    if transient:
        first = transient[0]
        raise MirrorUnavailable(
            f"{len(transient)} document(s) still rejected with status {first.get('status')} "
            f"after {retry.item_retries} retries: {_reason(first.get('error') or {})}"
        )
    return result


def _reason(err: Any) -> str:
    if not isinstance(err, dict):
        return str(err)
    reason = str(err.get("reason", ""))
    cause = err.get("caused_by")
    if isinstance(cause, dict) and cause.get("reason"):
        reason += f" (caused by {cause.get('type')}: {cause.get('reason')})"
    return reason or str(err.get("type", "unknown error"))


def read_file(filesystem: pafs.FileSystem, path: str) -> pa.Table:
    """Return the rows of one committed lake file."""
    with filesystem.open_input_file(path) as handle:
        return pq.read_table(handle)


def file_batches(stats: Sequence[FileStat], max_events: int) -> Iterator[list[FileStat]]:
    """Yield consecutive groups of files of about ``max_events`` rows (at least one file each)."""
    batch: list[FileStat] = []
    rows = 0
    for s in stats:
        if batch and rows + s.num_rows > max_events:
            yield batch
            batch, rows = [], 0
        batch.append(s)
        rows += s.num_rows
    if batch:
        yield batch
