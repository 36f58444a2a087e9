"""DuckDB reads the lake as it is (hive partitions) and counts what the workbench counts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
from click.testing import CliRunner
from fastapi.testclient import TestClient

from tests.scale.conftest import NOW, SERVICES, api_error_count, lake_in_compaction_grace
from workbench.cli import main
from workbench.config import Settings
from workbench.demo import generate
from workbench.lake import compaction
from workbench.lake.reader import scan
from workbench.lake.schema import PARTITION_KEY, parse_partition_dir, partition_dir


def _duckdb_error_counts(lake_url: str) -> tuple[dict[str, int], str]:
    """Return error+fatal counts per service and the partition column's type, via DuckDB."""
    source = f"read_parquet('{lake_url}/logs/**/*.parquet', hive_partitioning=true)"
    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT service, count(*) FROM {source} "
            "WHERE level IN ('error', 'fatal') GROUP BY service"
        ).fetchall()
        kind = con.execute(
            f"SELECT typeof({PARTITION_KEY}) FROM {source} LIMIT 1"  # noqa: S608
        ).fetchone()
    assert kind is not None
    return {service: int(n) for service, n in rows}, str(kind[0])


def test_duckdb_counts_the_same_errors_per_service(
    lake: tuple[Settings, int], workbench_error_counts: dict[str, int], api_client: TestClient
) -> None:
    settings, written = lake
    counts, partition_type = _duckdb_error_counts(settings.lake_url)
    assert partition_type == "DATE"
    assert written > 0 and len(workbench_error_counts) >= SERVICES // 2
    assert counts == workbench_error_counts
    for service, count in counts.items():
        assert api_error_count(api_client, service) == count


def test_duckdb_sees_every_row_once(lake: tuple[Settings, int]) -> None:
    settings, written = lake
    with duckdb.connect() as con:
        row = con.execute(
            f"SELECT count(*), count(DISTINCT id) FROM read_parquet("
            f"'{settings.lake_url}/logs/**/*.parquet', hive_partitioning=true)"
        ).fetchone()
    assert row == (written, written)


#: The glob docs/scale-out.md gives outside readers: partition folders only, and no
#: ``.tmp-…`` (in-flight) or ``_…`` files; ``.deleting-…`` folders (retention) do not match.
SAFE_GLOB = "logs/date=*/[!._]*.parquet"


def test_mid_compaction_a_plain_reader_double_counts_and_distinct_ids_do_not(
    tmp_path: Path,
) -> None:
    """The contract in docs/scale-out.md: in the grace period both a compacted file and its
    sources are on disk; the workbench hides the sources, an outside engine does not."""
    lake_url = str(tmp_path / "lake")
    written = generate(lake_url, events=1_000, days=2, services=3, now=NOW)
    day = min(
        d for d in (parse_partition_dir(p.name) for p in (tmp_path / "lake/logs").iterdir()) if d
    )
    result = compaction.compact_partition(lake_url, day, min_files=2, grace=timedelta(minutes=5))
    assert result.merged >= 2 and result.deleted == 0
    folder = tmp_path / "lake/logs" / partition_dir(day)
    # An in-flight write and a retention in progress, as a reader may meet them.
    (folder / ".tmp-in-flight.parquet").write_bytes(Path(result.compacted_file).read_bytes())
    (tmp_path / "lake/logs" / f".deleting-{partition_dir(day)}").mkdir()

    source = f"read_parquet('{lake_url}/{SAFE_GLOB}', hive_partitioning=true)"
    with duckdb.connect() as con:
        row = con.execute(f"SELECT count(*), count(DISTINCT id) FROM {source}").fetchone()
    assert row == (written + result.rows, written)
    assert scan(lake_url).collect().height == written


def test_after_the_grace_period_a_plain_reader_counts_exactly(tmp_path: Path) -> None:
    lake_url = str(tmp_path / "lake")
    written = generate(lake_url, events=1_000, days=2, services=3, now=NOW)
    for path in sorted((tmp_path / "lake/logs").iterdir()):
        day = parse_partition_dir(path.name)
        assert day is not None
        compaction.compact_partition(lake_url, day, min_files=2, grace=timedelta(0))
    with duckdb.connect() as con:
        row = con.execute(
            f"SELECT count(*) FROM read_parquet('{lake_url}/{SAFE_GLOB}', hive_partitioning=true)"
        ).fetchone()
    assert row == (written,)


def test_mid_compaction_the_workbench_files_list_gives_an_outside_engine_exact_counts(
    tmp_path: Path,
) -> None:
    """``workbench files`` names the files the workbench reads: DuckDB over exactly those
    counts every event once, in the grace period too (a glob counts the merged rows twice)."""
    lake_url, written = lake_in_compaction_grace(tmp_path, 1_000)
    runner = CliRunner()
    result = runner.invoke(main, ["files", "--lake", lake_url, "--format", "duckdb"])
    assert result.exit_code == 0, result.output
    with duckdb.connect() as con:
        glob = f"read_parquet('{lake_url}/{SAFE_GLOB}', hive_partitioning=true)"
        assert con.execute(f"SELECT count(*) FROM {glob}").fetchone() != (written,)
        row = con.execute(f"SELECT count(*), count(DISTINCT id) FROM {result.output.strip()}")
        assert row.fetchone() == (written, written)
    listed = runner.invoke(main, ["files", "--lake", lake_url, "--since", "2026-11-26T00:00:00Z"])
    assert listed.exit_code == 0
    assert listed.output and all("date=2026-11-26" in line for line in listed.output.split())
    bad = runner.invoke(main, ["files", "--lake", lake_url, "--since", "yesterday-ish"])
    assert bad.exit_code != 0 and "since" in bad.output
