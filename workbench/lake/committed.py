"""Keep the facts of a file as it is committed, so that no reader has to read the file for them.

A reader learns each committed file's facts once (:mod:`workbench.lake.facts`): its footer
with its page CRCs checked (``reader.read_stat``), its ``(service, level)`` row counts
(``reader.key_counts``), its per-minute error counts (:func:`error_minutes_of`, summed by
``query.trends``) and its message index (:func:`message_index_of`, for text totals).
Without them the lake's first reader reads every file whole: 5-21 s for a 100M-event lake
on two cores (``docs/benchmarks.md``, "100M events").

The process that commits a file (an ingest flush, a compaction, the demo generator) already
holds its rows, so it keeps those facts at commit time: the counts, the rollup and the
message index from the rows in memory (:func:`keep`), with the same expressions a reader
uses, and the footer facts read back from the committed file with its page CRCs checked,
as a first reader would (``reader.keep_committed``). A later process, the lake's first
reader included, then reads a few kilobytes per file. Best effort: a fact that cannot be
kept is computed by the first reader, as before; a file changed afterwards (another size or
modification time) is read and checked again.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from workbench.lake import facts
from workbench.lake.schema import ERROR_LEVELS

MINUTE_US = 60_000_000
#: The kinds of the facts this module keeps (see ``workbench.lake.facts``).
KEYS_KIND = "keys"
ERRMIN_KIND = "errmin"
MSGIDX_KIND = "msgidx"
#: The kept message index: one row of list columns (see ``workbench.lake.message_index``).
MSGIDX_COLUMNS = ["messages", "services", "levels", "stops", "codes", "counts"]
#: A file with more distinct messages than this share of its rows is not indexed.
MSGIDX_DISTINCT_SHARE_MAX = 0.5
_INDEX_COLUMNS = ("service", "level", "message")


def key_counts_of(frame: pl.LazyFrame) -> dict[tuple[str, str], int]:
    """Return ``{(service, level): rows}`` of a file's rows."""
    counted = frame.group_by("service", "level").len().collect()
    return {(s, lv): n for s, lv, n in counted.iter_rows()}


def error_minutes_of(frame: pl.LazyFrame) -> pl.DataFrame:
    """Return ``service, minute, n``: error+fatal rows per minute (since the epoch) of a file."""
    return (
        frame.filter(pl.col("level").is_in(list(ERROR_LEVELS)))
        .group_by("service", (pl.col("timestamp").dt.epoch("us") // MINUTE_US).alias("minute"))
        .agg(pl.len().cast(pl.Int64).alias("n"))
        .collect()
    )


def message_index_of(table: pa.Table) -> pl.DataFrame | None:
    """Return the kept form of a file's message index (:data:`MSGIDX_COLUMNS`), or None.

    The file's distinct messages once, each row's position in them (its local code) with
    the rows grouped by ``(service, level)``, each group's stop, and the rows per message:
    what ``message_index`` keeps once it has indexed a file, built here from the rows without
    the process-wide dictionary. None when the file's messages are mostly distinct (not
    worth an index, as there) or the table is empty.
    """
    rows = table.num_rows
    if rows == 0:
        return None
    encoded = [table.column(c).combine_chunks().dictionary_encode() for c in _INDEX_COLUMNS]
    services, levels, messages = encoded
    if any(e.null_count for e in encoded) or len(messages.dictionary) > rows * (
        MSGIDX_DISTINCT_SHARE_MAX
    ):
        return None
    codes = np.asarray(messages.indices, dtype=np.int64)
    # Rows grouped by (service, level): a stable sort of small integer pair ids.
    n_levels = len(levels.dictionary)
    pairs = np.asarray(services.indices, dtype=np.int64) * n_levels + np.asarray(levels.indices)
    present = np.flatnonzero(np.bincount(pairs))
    group = np.searchsorted(present, pairs)
    order = np.argsort(
        group.astype(np.uint16 if len(present) <= 65_536 else np.int64), kind="stable"
    )
    local = np.uint16 if len(messages.dictionary) <= 65_536 else np.uint32
    return pl.DataFrame(
        {
            "messages": [pl.Series(messages.dictionary, dtype=pl.String)],
            "services": [pl.Series(services.dictionary.take(present // n_levels), dtype=pl.String)],
            "levels": [pl.Series(levels.dictionary.take(present % n_levels), dtype=pl.String)],
            "stops": [pl.Series(np.cumsum(np.bincount(group)), dtype=pl.Int64)],
            "codes": [pl.Series(codes[order].astype(local))],
            "counts": [
                pl.Series(np.bincount(codes, minlength=len(messages.dictionary)).astype(np.int32))
            ],
        }
    )


def keep(path: str, version: str, table: pa.Table) -> None:
    """Keep the row counts, the error rollup and the message index of ``path``.

    ``path`` was committed with the rows of ``table``; ``version`` ties the facts to this
    version of the file (``reader.fact_version``). The footer facts are kept by
    ``reader.keep_committed``, which calls this.
    """
    rows = pl.from_arrow(table.select(["service", "level", "timestamp"]))
    assert isinstance(rows, pl.DataFrame)
    counts = key_counts_of(rows.lazy())
    facts.write_json(path, KEYS_KIND, version, [[s, lv, n] for (s, lv), n in counts.items()])
    facts.write_frame(path, ERRMIN_KIND, version, error_minutes_of(rows.lazy()))
    index = message_index_of(table)
    if index is not None:
        facts.write_frame(path, MSGIDX_KIND, version, index)
