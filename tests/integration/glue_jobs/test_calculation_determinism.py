"""Property: the job gives byte-identical output files when re-run on the same inputs."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession

from glue_jobs.job import run_calculation
from settlement.adapters.storage import DataStore
from tests.fixtures.calculation import cancel, tx
from tests.integration.glue_jobs.test_calculation_job import OUTPUT_NAMES, Row, build_store, files

pytestmark = pytest.mark.spark

IDS = [f"T{i}" for i in range(8)]


@st.composite
def batch_rows(draw: st.DrawFn) -> Row:
    transaction_id = draw(st.sampled_from(IDS))
    if draw(st.booleans()):
        return cancel(f"C-{transaction_id}", draw(st.sampled_from(IDS)))
    return tx(
        transaction_id,
        dealer_id=draw(st.sampled_from(["D1", "D2"])),
        event_date=draw(st.sampled_from(["2026-10-01", "2026-10-31", "2026-11-01"])),
        net_price=draw(st.sampled_from(["1000.00", "40000.55", "0", "-1", "12.345"])),
    )


batches = st.lists(st.lists(batch_rows(), min_size=1, max_size=6), min_size=1, max_size=3)


@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=batches, formats=st.lists(st.sampled_from(["csv", "parquet"]), min_size=3))
def test_re_running_the_job_gives_the_same_bytes(
    spark: SparkSession, batches: list[list[Row]], formats: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as root:
        # GIVEN generated batches in CSV and Parquet, and a first run of the job
        listed = [(f"b{i}", "2026-10", formats[i], rows) for i, rows in enumerate(batches)]
        store: DataStore = build_store(Path(root), "r1", listed)
        run_calculation(spark, store_root=root, run_id="r1", periods=["2026-10"])
        first = {name: files(store, "r1", name) for name in OUTPUT_NAMES}
        # WHEN it runs again on the same inputs
        run_calculation(spark, store_root=root, run_id="r1", periods=["2026-10"])
        # THEN every output file has the same name and the same bytes
        assert {name: files(store, "r1", name) for name in OUTPUT_NAMES} == first
