"""Batch files into text rows (``glue_jobs.job.read_batches``): CSV as RFC 4180 with line
numbers, Parquet batches whose columns are typed, and differently, from file to file."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from glue_jobs.job import BatchRef, read_batches
from settlement.adapters.storage import DataStore
from settlement.domain.transactions import TRANSACTION_COLUMNS

pytestmark = pytest.mark.spark

HEADER = ",".join(TRANSACTION_COLUMNS)


def _rows(spark: SparkSession, store: DataStore, batches: list[BatchRef]) -> list[dict[str, Any]]:
    frame = read_batches(spark, store, batches)
    return sorted(
        (row.asDict() for row in frame.collect()), key=lambda r: (r["batch_id"], r["line_number"])
    )


def test_csv_is_read_as_rfc_4180_with_line_numbers_counting_the_header(
    spark: SparkSession, tmp_path: Path
) -> None:
    # GIVEN a CSV batch with a BOM, CRLF line ends, a blank line, a quoted field ending in a
    # backslash and one with doubled quotes and a comma
    lines = [
        "\ufeff" + HEADER,
        'Q1,SALE,2026-10-05,DE,D1,"VIN\\",3,PRIVATE,5000.00,EUR,',
        "",
        'Q2,SALE,2026-10-06,DE,D1,"V ""Q"", 2",X5,FLEET,6000.00,EUR,',
    ]
    store = DataStore(str(tmp_path))
    store.write_bytes("incoming/transactions/b1.csv", "\r\n".join(lines).encode() + b"\r\n")
    batch = BatchRef("b1", "2026-10", "incoming/transactions/b1.csv", "csv", 2)

    # WHEN the batch is read
    rows = _rows(spark, store, [batch])

    # THEN the backslash is an ordinary character, doubled quotes are one quote, and the line
    # numbers are the file's (header line 1, the blank line counted but not a row)
    assert [(r["line_number"], r["transaction_id"], r["vin"], r["series"]) for r in rows] == [
        (2, "Q1", "VIN\\", "3"),
        (4, "Q2", 'V "Q", 2', "X5"),
    ]


def _typed_parquet(store: DataStore, batch_id: str, columns: dict[str, pa.Array]) -> BatchRef:
    base = {
        c: pa.array(["x"] * len(next(iter(columns.values()))), pa.string())
        for c in HEADER.split(",")
    }
    table = pa.table({c: columns.get(c, base[c]) for c in TRANSACTION_COLUMNS})
    key = f"incoming/transactions/{batch_id}.parquet"
    Path(store.path(key)).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, store.path(key))
    return BatchRef(batch_id, "2026-10", key, "parquet", table.num_rows)


def test_parquet_batches_with_differently_typed_columns_are_read_as_plain_text(
    spark: SparkSession, tmp_path: Path
) -> None:
    # GIVEN two Parquet batches typing the same columns differently: prices as doubles (one of
    # 12.5 million, which Spark prints as 1.25E7) and as decimal(12,3); dealer ids as integers
    # and as text; original ids as a column of nulls and as text
    store = DataStore(str(tmp_path))
    doubles = _typed_parquet(
        store,
        "a",
        {
            "net_price": pa.array([12_500_000.0, 40_000.55, 0.1 + 0.2]),
            "dealer_id": pa.array([1, 2, 3], pa.int64()),
            "original_transaction_id": pa.nulls(3),
        },
    )
    decimals = _typed_parquet(
        store,
        "b",
        {
            "net_price": pa.array([Decimal("40000.550"), Decimal("7")], pa.decimal128(12, 3)),
            "dealer_id": pa.array(["D1", "D2"]),
            "original_transaction_id": pa.array(["T1", None]),
        },
    )

    # WHEN both are read
    rows = _rows(spark, store, [doubles, decimals])

    # THEN each value is the text of its value: no exponent, no trailing fractional zeros, a
    # double's shortest exact form (0.1 + 0.2 keeps its 17 decimals, for the rules to reject)
    assert [
        (
            r["batch_id"],
            r["line_number"],
            r["net_price"],
            r["dealer_id"],
            r["original_transaction_id"],
        )
        for r in rows
    ] == [
        ("a", 2, "12500000", "1", None),
        ("a", 3, "40000.55", "2", None),
        ("a", 4, "0.30000000000000004", "3", None),
        ("b", 2, "40000.55", "D1", "T1"),
        ("b", 3, "7", "D2", None),
    ]
