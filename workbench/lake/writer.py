"""Write Arrow batches of log events into the lake, one file per date partition, atomically."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from workbench.lake import fs as lakefs
from workbench.lake import reader
from workbench.lake.schema import LOGS_TABLE, SCHEMA, partition_dir


def write_batch(table: pa.Table, *, lake_url: str, name: str) -> list[str]:
    """Write ``table`` (lake schema) as ``part-{name}.parquet`` in each date partition it touches.

    Each file appears complete or not at all (:func:`workbench.lake.fs.write_atomically`:
    a hidden temporary name renamed into place on local disks, one upload on object
    storage), so readers never see a partial file. The same ``name`` and rows give the same
    files: replaying a batch overwrites, it never duplicates. Each file's facts are kept as
    it is committed (``reader.keep_committed``). Returns the paths written.
    """
    if table.num_rows == 0:
        return []
    table = table.select(list(SCHEMA.names)).cast(SCHEMA)
    filesystem, root = lakefs.resolve(lake_url)
    days = pc.cast(pc.cast(table["timestamp"], pa.timestamp("us")), pa.date32())
    distinct = pc.unique(days).to_pylist()
    written: list[str] = []
    for day in distinct:
        # Usually one day: the whole table, without copying it through a filter.
        part = (
            table
            if len(distinct) == 1
            else table.filter(pc.equal(days, pa.scalar(day, pa.date32())))
        )
        part = _sorted_by_timestamp(part)
        folder = f"{root}/{LOGS_TABLE}/{partition_dir(day)}"
        filesystem.create_dir(folder, recursive=True)
        final = f"{folder}/part-{name}.parquet"

        def encode(sink: pa.NativeFile, part: pa.Table = part) -> None:
            # Page checksums: damage inside a page is caught (workbench.lake.integrity).
            pq.write_table(
                part,
                sink,
                compression="zstd",
                row_group_size=128 * 1024,
                write_page_checksum=True,
            )

        lakefs.write_atomically(filesystem, final, encode)
        # Its footer, counts and rollup are known now: no reader needs to read it for them.
        reader.keep_committed(filesystem, final, day, part)
        written.append(final)
    return written


def _sorted_by_timestamp(table: pa.Table) -> pa.Table:
    """Return ``table`` stably sorted by timestamp; as it is when it already is (the common case).

    Events without a client timestamp carry their receive time, so a flush is
    mostly in order already, and checking costs far less than reordering every
    column (the sort is stable, so skipping it changes nothing).
    """
    ts = table["timestamp"]
    if table.num_rows < 2:
        return table
    if ts.null_count == 0 and pc.all(pc.greater_equal(ts[1:], ts[:-1])).as_py():
        return table
    return table.sort_by([("timestamp", "ascending")])
