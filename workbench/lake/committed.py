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
    encoded = table.column("message").combine_chunks().dictionary_encode()
    messages = pl.Series("messages", encoded.dictionary, dtype=pl.String)
    if len(messages) > rows * MSGIDX_DISTINCT_SHARE_MAX or encoded.null_count:
        return None
    codes = pl.Series("codes", encoded.indices).cast(pl.Int64)
    frame = pl.DataFrame(
        {
            "service": pl.Series(table.column("service").combine_chunks()),
            "level": pl.Series(table.column("level").combine_chunks()),
            "code": codes,
        }
    ).sort("service", "level", maintain_order=True, nulls_last=True)
    groups = frame.group_by("service", "level", maintain_order=True).len()
    local = pl.UInt16 if len(messages) <= 65_536 else pl.UInt32
    counts = codes.value_counts().sort("codes")
    per_message = pl.Series(pl.zeros(len(messages), dtype=pl.Int32, eager=True))
    per_message = per_message.scatter(counts["codes"], counts["count"].cast(pl.Int32))
    return pl.DataFrame(
        {
            "messages": [messages],
            "services": [groups["service"]],
            "levels": [groups["level"]],
            "stops": [groups["len"].cast(pl.Int64).cum_sum()],
            "codes": [frame["code"].cast(local)],
            "counts": [per_message],
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
