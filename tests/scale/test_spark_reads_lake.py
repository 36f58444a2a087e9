"""Apache Spark (pyspark, local mode) reads the lake as it is and counts what the workbench counts.

Java comes from Debian's ``openjdk-17-jre-headless`` and pyspark from the ``spark`` extra,
both installed by ``scripts/bootstrap --spark``. Without Java the test is skipped, except
in CI (``CI`` set), where it fails: there the scripts must have installed it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.scale.conftest import api_error_count, lake_in_compaction_grace
from workbench.config import Settings
from workbench.lake.schema import PARTITION_KEY

pytestmark = pytest.mark.slow

MISSING = "needs Java and pyspark: scripts/bootstrap --spark installs both"


def _spark_missing() -> str | None:
    """Return why Spark cannot run here, or None."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return f"no java on PATH: {MISSING}"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return f"pyspark is not installed: {MISSING}"
    return None


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """A local one-core Spark session without its UI, as small as it gets."""
    why = _spark_missing()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Spark test: {why}")
        pytest.skip(why)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("workbench-lake-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "512m")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


def test_spark_counts_the_same_errors_per_service(
    spark: Any,
    lake: tuple[Settings, int],
    workbench_error_counts: dict[str, int],
    api_client: TestClient,
) -> None:
    from pyspark.sql import functions as F  # noqa: N812

    settings, written = lake
    started = time.monotonic()
    frame = spark.read.parquet(f"{settings.lake_url}/logs")
    types = dict(frame.dtypes)
    assert types[PARTITION_KEY] == "date", types
    assert types["timestamp"] == "timestamp" and types["service"] == "string", types
    assert frame.count() == written
    rows = frame.where(F.col("level").isin("error", "fatal")).groupBy("service").count().collect()
    counts = {row["service"]: int(row["count"]) for row in rows}
    print(f"spark: {written} events, {len(counts)} services in {time.monotonic() - started:.1f}s")
    assert counts == workbench_error_counts
    for service, count in counts.items():
        assert api_error_count(api_client, service) == count


def test_spark_reads_exactly_the_files_workbench_files_lists_mid_compaction(
    spark: Any, tmp_path: Path
) -> None:
    """In compaction's grace period Spark over ``workbench files`` (with ``basePath`` for the
    partition column) counts every event once; over the folder it counts merged rows twice."""
    from click.testing import CliRunner

    from workbench.cli import main

    lake_url, written = lake_in_compaction_grace(tmp_path, 600)
    listed = CliRunner().invoke(main, ["files", "--lake", lake_url])
    assert listed.exit_code == 0, listed.output
    paths = listed.output.split()
    assert spark.read.parquet(f"{lake_url}/logs").count() > written
    frame = spark.read.option("basePath", f"{lake_url}/logs").parquet(*paths)
    assert dict(frame.dtypes)[PARTITION_KEY] == "date"
    assert frame.count() == written
