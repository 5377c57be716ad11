"""Deltas are written as numbered parts of bounded size, without a shuffle (the Map's items)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from glue_jobs.job import write_delta_parts
from settlement.adapters.storage import DataStore

pytestmark = pytest.mark.spark


def test_parts_are_numbered_from_zero_and_hold_at_most_the_bound(
    spark: SparkSession, tmp_path: Path
) -> None:
    # GIVEN 11 delta records spread over 3 partitions
    frame = spark.createDataFrame(
        [(f"T{i:02d}", i) for i in range(11)], "transaction_id string, n int"
    )
    frame = frame.repartition(3, "transaction_id")
    store = DataStore(str(tmp_path))
    # WHEN they are written with at most 2 records per part (as if a run of 11 records)
    written = write_delta_parts(
        frame, store, "runs/r1/deltas", expected_records=11, records_per_part=2
    )
    # THEN the parts are 0..n-1, each at most 2 records, and together every record exactly once
    parts = sorted({int(f.split("/")[0].removeprefix("part=")) for f in written})
    assert parts == list(range(len(parts)))
    per_part: dict[int, list[str]] = {}
    for name in written:
        part = int(name.split("/")[0].removeprefix("part="))
        ids = pq.read_table(tmp_path / "runs/r1/deltas" / name).column("transaction_id")
        per_part.setdefault(part, []).extend(ids.to_pylist())
    assert max(len(ids) for ids in per_part.values()) <= 2
    assert sorted(i for ids in per_part.values() for i in ids) == [f"T{i:02d}" for i in range(11)]


def test_a_small_run_is_one_part(spark: SparkSession, tmp_path: Path) -> None:
    # GIVEN 5 records in 4 partitions, far below the bound
    frame = spark.createDataFrame([(f"T{i}",) for i in range(5)], "transaction_id string")
    frame = frame.repartition(4)
    # WHEN written with the default bound
    written = write_delta_parts(
        frame, DataStore(str(tmp_path)), "runs/r1/deltas", expected_records=5
    )
    # THEN the partitions are merged first: one part, not four tiny ones
    assert {f.split("/")[0] for f in written} == {"part=0"}


def test_no_records_leave_one_schema_file_and_no_part(spark: SparkSession, tmp_path: Path) -> None:
    # GIVEN nothing to publish
    frame = spark.createDataFrame([], "transaction_id string")
    # WHEN written
    written = write_delta_parts(
        frame, DataStore(str(tmp_path)), "runs/r1/deltas", expected_records=0
    )
    # THEN one file with the schema, outside any part
    assert written == ["part-00000.parquet"]
    schema = pq.read_schema(tmp_path / "runs/r1/deltas/part-00000.parquet")
    assert schema.names == ["transaction_id"]
