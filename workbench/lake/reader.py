"""Read the lake as a ``polars.LazyFrame``, pruning date partitions outside a time range."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pyarrow.fs as pafs

from workbench.lake import fs as lakefs
from workbench.lake.schema import LOGS_TABLE, SCHEMA, parse_partition_dir

_POLARS_SCHEMA = pl.Schema(
    {
        "id": pl.String,
        "timestamp": pl.Datetime("us", "UTC"),
        "received_at": pl.Datetime("us", "UTC"),
        "service": pl.String,
        "level": pl.String,
        "message": pl.String,
        "meta": pl.String,
    }
)


def visible_files(lake_url: str, start: datetime | None = None, end: datetime | None = None) -> list[str]:
    """Return the committed Parquet files whose partition may hold events in ``[start, end]``."""
    filesystem, root = lakefs.resolve(lake_url)
    base = f"{root}/{LOGS_TABLE}"
    first: date | None = start.date() if start else None
    last: date | None = end.date() if end else None
    try:
        parts = filesystem.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    except FileNotFoundError:
        return []
    files: list[str] = []
    for info in sorted(parts, key=lambda i: i.path):
        if info.type != pafs.FileType.Directory:
            continue
        day = parse_partition_dir(info.base_name)
        if day is None or (first and day < first) or (last and day > last):
            continue
        for f in filesystem.get_file_info(pafs.FileSelector(info.path)):
            if f.type == pafs.FileType.File and f.base_name.endswith(".parquet") and f.base_name[0] not in "._":
                files.append(f.path)
    return sorted(files)


def scan(lake_url: str, start: datetime | None = None, end: datetime | None = None) -> pl.LazyFrame:
    """Return every event of the lake (or of the partitions covering ``[start, end]``) lazily.

    The frame has the lake schema (see ``workbench.lake.schema``); an empty lake
    gives an empty frame with that schema. Filtering rows to the exact range is
    the caller's job: partitions are pruned, rows are not.
    """
    files = visible_files(lake_url, start, end)
    if not files:
        return pl.LazyFrame(schema=_POLARS_SCHEMA)
    _ = SCHEMA
    return pl.scan_parquet(files, schema=_POLARS_SCHEMA, hive_partitioning=False)
