"""Write Arrow batches of log events into the lake, one file per date partition, atomically."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from workbench.lake import fs as lakefs
from workbench.lake.schema import LOGS_TABLE, SCHEMA, partition_dir


def write_batch(table: pa.Table, *, lake_url: str, name: str) -> list[str]:
    """Write ``table`` (lake schema) as ``part-{name}.parquet`` in each date partition it touches.

    Each file is written under a hidden temporary name and renamed into place, so
    readers never see a partial file. The same ``name`` and rows give the same
    files: replaying a batch overwrites, it never duplicates. Returns the paths written.
    """
    if table.num_rows == 0:
        return []
    table = table.select(list(SCHEMA.names)).cast(SCHEMA)
    filesystem, root = lakefs.resolve(lake_url)
    days = pc.cast(pc.cast(table["timestamp"], pa.timestamp("us")), pa.date32())
    written: list[str] = []
    for day in pc.unique(days).to_pylist():
        part = table.filter(pc.equal(days, pa.scalar(day, pa.date32())))
        part = part.sort_by([("timestamp", "ascending")])
        folder = f"{root}/{LOGS_TABLE}/{partition_dir(day)}"
        filesystem.create_dir(folder, recursive=True)
        final = f"{folder}/part-{name}.parquet"
        tmp = f"{folder}/.tmp-{name}-{uuid.uuid4().hex}.parquet"
        with filesystem.open_output_stream(tmp) as sink:
            pq.write_table(part, sink, compression="zstd", row_group_size=128 * 1024)
        filesystem.move(tmp, final)
        written.append(final)
    return written
