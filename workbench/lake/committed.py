"""Keep the facts of a file as it is committed, so that no reader has to read the file for them.

A reader learns each committed file's facts once (:mod:`workbench.lake.facts`): its footer
with its page CRCs checked (``reader.read_stat``), its ``(service, level)`` row counts
(``reader.key_counts``) and its per-minute error counts (:func:`error_minutes_of`, summed by
``query.trends``). Without them the lake's first reader reads every file whole: 5-9 s for a
100M-event lake on two cores (``docs/benchmarks.md``, "100M events").

The process that commits a file (an ingest flush, a compaction, the demo generator) already
holds its rows, so it keeps those facts at commit time (:func:`keep`): the counts and the
rollup from the rows in memory (:func:`keep`), with the same expressions a reader uses, and
the footer facts read back from the committed file with its page CRCs checked, exactly as a
first reader would (``reader.keep_committed``). A later process, the lake's first reader included, then reads a few kilobytes
per file. Best effort: a fact that cannot be kept is computed by the first reader, as before;
a file changed afterwards (another size or modification time) is read and checked again.
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


def keep(path: str, version: str, table: pa.Table) -> None:
    """Keep the row counts and the error rollup of ``path``, committed with the rows of ``table``.

    ``version`` ties them to this version of the file (``reader.fact_version``). The footer
    facts are kept by ``reader.keep_committed``, which calls this.
    """
    rows = pl.from_arrow(table.select(["service", "level", "timestamp"]))
    assert isinstance(rows, pl.DataFrame)
    counts = key_counts_of(rows.lazy())
    facts.write_json(path, KEYS_KIND, version, [[s, lv, n] for (s, lv), n in counts.items()])
    facts.write_frame(path, ERRMIN_KIND, version, error_minutes_of(rows.lazy()))
