"""The page-CRC walk of ``workbench.lake.integrity`` against pyarrow's own verification."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.factories import make_events
from workbench.lake.integrity import crc_damage
from workbench.lake.schema import SCHEMA


def _crc_damage(path: Path) -> str | None:
    with pa.OSFile(str(path)) as handle:
        return crc_damage(handle, pq.ParquetFile(path).metadata)


def test_the_walk_catches_every_damage_pyarrow_catches_or_decodes_wrongly(tmp_path: Path) -> None:
    """Proves: on a file of many row groups and pages (dictionary and data pages,
    statistics in the headers), the walk finds nothing on the clean file; every
    one-byte flip before the footer that an unverified read (polars) would decode
    to other values is reported, and so is every flip pyarrow's CRC check fails."""
    rows = [
        {"service": f"s{i % 3}", "level": "error", "message": f"message {i} " + "x" * (i % 50)}
        for i in range(600)
    ]
    table = make_events(rows).select(list(SCHEMA.names)).cast(SCHEMA)
    path = tmp_path / "f.parquet"
    pq.write_table(
        table,
        path,
        compression="zstd",
        row_group_size=200,
        data_page_size=512,
        write_page_checksum=True,
    )
    assert _crc_damage(path) is None
    data = path.read_bytes()
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 3
    footer_start = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    silent = crc_failures = 0
    for offset in range(4, footer_start, 17):
        damaged = bytearray(data)
        damaged[offset] ^= 0x10
        path.write_bytes(bytes(damaged))
        found = _crc_damage(path)
        try:
            decoded = pq.read_table(path)  # unverified, as polars reads
        except (OSError, ValueError):
            decoded = None  # loud damage: never returned as values
        if decoded is not None and not decoded.equals(table):
            silent += 1
            assert found is not None, f"silent damage at offset {offset} not found"
        try:
            pq.read_table(path, page_checksum_verification=True)
        except (OSError, ValueError) as exc:
            if "CRC" in str(exc):
                crc_failures += 1
                assert found is not None, f"CRC failure at offset {offset} not found"
    assert silent > 50 and crc_failures > 200


def test_files_of_other_writers_are_not_taken_for_damaged(tmp_path: Path) -> None:
    """Proves: the walk's footer cross-check (sizes, value counts) holds for files written by
    polars (no CRCs, small pages) and by pyarrow with v2 data pages, nulls and lists."""
    import polars as pl

    n = 50_000
    frame = pl.DataFrame(
        {
            "a": list(range(n)),
            "s": [f"x{i % 1000}" for i in range(n)],
            "nulls": [None if i % 7 else i for i in range(n)],
            "lists": [[i, i + 1] for i in range(n)],
        }
    )
    frame.write_parquet(tmp_path / "polars.parquet", row_group_size=10_000, data_page_size=4096)
    pq.write_table(
        frame.to_arrow(),
        tmp_path / "v2.parquet",
        data_page_version="2.0",
        data_page_size=4096,
        write_page_checksum=True,
    )
    for path in (tmp_path / "polars.parquet", tmp_path / "v2.parquet"):
        assert _crc_damage(path) is None, path
