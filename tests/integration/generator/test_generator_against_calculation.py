"""The calculation rejects exactly the rows the generator meant to be invalid, for the same reason.

This is the contract that lets demos, benches and end-to-end tests trust a generated month's
`reason_counts` as the expected outcome of a run.
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from settlement.domain.calculation import settle
from settlement.domain.schemas import (
    BATCH_ROWS_SCHEMA,
    LEDGER_SCHEMA,
    MATRIX_SCHEMA,
    TARGETS_SCHEMA,
    TRANSACTION_COLUMNS,
)
from settlement.generator import GeneratedMonth, generate_month

pytestmark = pytest.mark.spark


def _records(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _batch_rows(spark: SparkSession, month: GeneratedMonth) -> DataFrame:
    rows = [
        (batch.batch_id, month.period, line, *((row[c] or None) for c in TRANSACTION_COLUMNS))
        for batch in month.batches
        for line, row in enumerate(_records(batch.data_path), start=2)
    ]
    return spark.createDataFrame(rows, BATCH_ROWS_SCHEMA)


def _matrix(spark: SparkSession, path: Path) -> DataFrame:
    def optional_date(text: str) -> date | None:
        return date.fromisoformat(text) if text else None

    rows: list[tuple[Any, ...]] = [
        (
            "m1", r["market"], r["series"], r["channel"], r["component"],
            Decimal(r["min_attainment"]), Decimal(r["rate"]), Decimal(r["amount_per_unit"]),
            r["currency"], date.fromisoformat(r["valid_from"]), optional_date(r["valid_to"]),
        )
        for r in _records(path)
    ]  # fmt: skip
    return spark.createDataFrame(rows, MATRIX_SCHEMA)


def _targets(spark: SparkSession, path: Path) -> DataFrame:
    rows = [
        ("t1", r["market"], r["dealer_id"], r["period"], int(r["target_units"]))
        for r in _records(path)
    ]
    return spark.createDataFrame(rows, TARGETS_SCHEMA)


def test_calculation_rejects_what_the_generator_intended(
    spark: SparkSession, tmp_path: Path
) -> None:
    # GIVEN a generated month of 2,200 rows, a quarter of them invalid over every reason
    month = generate_month(
        tmp_path, rows=2_200, seed=9, period="2026-10", invalid_share=0.25, batch_rows=1_000
    )
    # WHEN the calculation settles it against the generated matrix and targets
    frames = settle(
        _batch_rows(spark, month),
        _matrix(spark, month.matrix_path),
        _targets(spark, month.targets_path),
        spark.createDataFrame([], LEDGER_SCHEMA),
        periods=[month.period],
        run_id="generated",
    )
    # THEN every batch's rejects per reason are the intended ones, and every other row settles
    found: dict[str, Counter[str]] = {batch.batch_id: Counter() for batch in month.batches}
    for row in frames.rejects.groupBy("batch_id", "reason").count().collect():
        found[row["batch_id"]][row["reason"]] = row["count"]
    mismatches = {
        (batch_id, reason): {"intended": count, "rejected": found[batch_id][reason]}
        for batch_id, intended in month.batch_reason_counts.items()
        for reason, count in intended.items()
        if found[batch_id][reason] != count
    }
    assert mismatches == {}
    assert frames.lines.count() == month.valid_sales + month.valid_cancellations
