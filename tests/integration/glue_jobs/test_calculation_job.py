"""The calculation job end to end on a temp data store: files in, Parquet and the marker out."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
import types
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from pyspark import SparkContext
from pyspark.sql import SparkSession

from glue_jobs.calculate_commissions import main, parse_arguments
from glue_jobs.job import BatchFileError, run_calculation
from settlement.adapters.storage import DataStore
from settlement.domain.snapshot import LEDGER_SCHEMA, MATRIX_SCHEMA, TARGETS_SCHEMA
from settlement.domain.transactions import TRANSACTION_COLUMNS
from tests.fixtures.calculation import cancel, tx

pytestmark = pytest.mark.spark

MATRIX, TARGETS, LEDGER = MATRIX_SCHEMA, TARGETS_SCHEMA, LEDGER_SCHEMA
Row = dict[str, str | None]


def _csv_bytes(rows: Sequence[Row]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TRANSACTION_COLUMNS)
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in TRANSACTION_COLUMNS])
    return out.getvalue().encode()


def _parquet_bytes(rows: Sequence[Row]) -> bytes:
    table = pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in TRANSACTION_COLUMNS})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def build_store(
    root: Path,
    run_id: str,
    batches: Sequence[tuple[str, str, str, Sequence[Row]]],
    *,
    ledger: Sequence[dict[str, Any]] = (),
    periods: Sequence[str] = ("2026-10",),
) -> DataStore:
    """A data store holding batches (id, period, format, rows), batches.json and a snapshot."""
    store = DataStore(str(root))
    listed = []
    for batch_id, period, fmt, rows in batches:
        key = f"incoming/transactions/{batch_id}.{fmt}"
        data = _csv_bytes(rows) if fmt == "csv" else _parquet_bytes(rows)
        store.write_bytes(key, data)
        listed.append(
            {
                "batch_id": batch_id,
                "period": period,
                "key": key,
                "format": fmt,
                "sha256": hashlib.sha256(data).hexdigest(),
                "row_count": len(rows),
                "source": "test",
            }
        )
    store.write_json(
        f"runs/{run_id}/input/batches.json",
        {"run_id": run_id, "periods": list(periods), "batches": listed},
    )
    matrix = [
        ("m1", "DE", "*", "*", "BASE", "0", "0.03", "100"),
        ("m1", "DE", "*", "*", "BONUS", "1.0", "0.01", "0"),
    ]
    matrix_table = pa.Table.from_pylist(
        [
            dict(
                zip(MATRIX.names[:5], m[:5], strict=True),
                min_attainment=Decimal(m[5]),
                rate=Decimal(m[6]),
                amount_per_unit=Decimal(m[7]),
                currency="EUR",
                valid_from=date(2026, 1, 1),
                valid_to=None,
            )
            for m in matrix
        ],
        MATRIX,
    )
    targets = [("t1", "DE", d, p, 2) for d in ("D1", "D2") for p in periods]
    ref = f"runs/{run_id}/reference"
    Path(store.path(ref)).mkdir(parents=True)
    pq.write_table(matrix_table, store.path(f"{ref}/matrix.parquet"))
    pq.write_table(
        pa.Table.from_pylist([dict(zip(TARGETS.names, t, strict=True)) for t in targets], TARGETS),
        store.path(f"{ref}/targets.parquet"),
    )
    pq.write_table(pa.Table.from_pylist(list(ledger), LEDGER), store.path(f"{ref}/ledger.parquet"))
    return store


CSV_ROWS: list[Row] = [
    tx("T1", net_price="1000.00"),
    tx("T2", dealer_id="D2", net_price="2000.50"),
    tx("T3", net_price="-5"),
    tx("T1", net_price="1000.00"),
]
PARQUET_ROWS: list[Row] = [
    tx("T4", net_price="3000.00"),
    cancel("C1", "T2", dealer_id="D2"),
    tx("T5", event_date="2026-11-01"),
]


def _read(store: DataStore, key: str) -> pa.Table:
    return pads.dataset(store.path(key), format="parquet", partitioning="hive").to_table()


OUTPUT_NAMES = ("lines", "dealer_summary", "rejects", "deltas", "ledger_updates", "batch_counts")


def files(store: DataStore, run_id: str, name: str) -> dict[str, bytes]:
    prefix = f"runs/{run_id}/{name}"
    return {k[len(prefix) :]: store.read_bytes(k) for k in store.list(prefix, recursive=True)}


def test_job_settles_csv_and_parquet_batches_and_writes_the_marker_last(
    spark: SparkSession, tmp_path: Path
) -> None:
    # GIVEN a CSV batch (a duplicate and a negative price) and a Parquet batch (a cancellation
    # and an out-of-period sale)
    store = build_store(
        tmp_path,
        "r1",
        [("b1", "2026-10", "csv", CSV_ROWS), ("b2", "2026-10", "parquet", PARQUET_ROWS)],
    )
    # WHEN the job runs
    result = run_calculation(spark, store_root=str(tmp_path), run_id="r1", periods=["2026-10"])
    # THEN every row is settled or rejected per batch, and calculation.json is what it returned
    assert [
        (b["batch_id"], b["rows_in"], b["rows_settled"], b["rows_rejected"])
        for b in result["batches"]
    ] == [
        ("b1", 4, 2, 2),
        ("b2", 3, 2, 1),
    ]
    assert store.read_json("runs/r1/calculation.json") == json.loads(json.dumps(result))
    # AND rejects name the batch, the file line (header = line 1) and the raw value
    rejects = (
        _read(store, "runs/r1/rejects")
        .sort_by([("batch_id", "ascending"), ("line_number", "ascending")])
        .to_pylist()
    )
    assert [
        (r["batch_id"], r["line_number"], r["reason"], r["raw_net_price"]) for r in rejects
    ] == [
        ("b1", 4, "INVALID_AMOUNT", "-5"),
        ("b1", 5, "DUPLICATE_TRANSACTION", "1000.00"),
        ("b2", 4, "OUT_OF_PERIOD", "1000.00"),
    ]
    # AND the totals are the lines' sums: BASE 3% + 100, D1 (2 sales, target 2) reaches tier 1.0,
    # D2 (1 sale - 1 cancellation) does not
    lines = {r["transaction_id"]: r for r in _read(store, "runs/r1/lines").to_pylist()}
    assert lines["T1"]["base_amount"] == Decimal("130.00")
    assert lines["T1"]["bonus_amount"] == Decimal("10.00")
    assert lines["C1"]["base_amount"] == Decimal("-160.02")
    assert lines["C1"]["bonus_amount"] == Decimal("0.00")
    assert result["totals"] == [
        {
            "currency": "EUR",
            "base_total": "480.02",  # 130.00 + 160.02 (160.015) + 190.00
            "bonus_total": "40.00",  # T1 10.00 + T4 30.00
            "clawback_total": "-160.02",
            "total": "360.00",
        }
    ]
    # AND a first run publishes every line, in part 0
    assert result["deltas"] == {
        "records": 4,
        "parts": [0],
        "totals": [
            {"currency": "EUR", "base_delta": "320.00", "bonus_delta": "40.00", "delta": "360.00"}
        ],
    }
    assert sorted(files(store, "r1", "deltas")) == ["/part=0/part-00000.parquet"]


def test_job_output_is_byte_identical_when_re_run(spark: SparkSession, tmp_path: Path) -> None:
    # GIVEN a store and a first run of the job
    build_store(
        tmp_path,
        "r1",
        [("b1", "2026-10", "csv", CSV_ROWS), ("b2", "2026-10", "parquet", PARQUET_ROWS)],
    )
    run_calculation(spark, store_root=str(tmp_path), run_id="r1", periods=["2026-10"])
    store = DataStore(str(tmp_path))
    first = {name: files(store, "r1", name) for name in OUTPUT_NAMES}
    # WHEN it runs again on the same inputs
    run_calculation(spark, store_root=str(tmp_path), run_id="r1", periods=["2026-10"])
    # THEN every output file has the same name and the same bytes
    again = {name: files(store, "r1", name) for name in first}
    assert first == again
    assert all(first.values())


def test_job_refuses_a_batch_whose_rows_differ_from_its_manifest(
    spark: SparkSession, tmp_path: Path
) -> None:
    # GIVEN a batch whose manifest row count is wrong
    store = build_store(tmp_path, "r1", [("b1", "2026-10", "csv", CSV_ROWS)])
    listed = store.read_json("runs/r1/input/batches.json")
    listed["batches"][0]["row_count"] = 99
    store.write_json("runs/r1/input/batches.json", listed)
    # WHEN the job runs THEN it fails naming the file, and leaves no completion marker and none
    # of the outputs it wrote before the count check (a report must not show them as a result)
    with pytest.raises(BatchFileError, match=r"incoming/transactions/b1.csv .*4 rows read"):
        run_calculation(spark, store_root=str(tmp_path), run_id="r1", periods=["2026-10"])
    assert not store.exists("runs/r1/calculation.json")
    assert [name for name in OUTPUT_NAMES if list(store.list(f"runs/r1/{name}"))] == []


def test_glue_script_reads_its_arguments_without_awsglue() -> None:
    # GIVEN Glue-style arguments (and one Glue adds itself) on a machine without awsglue
    argv = ["calculate_commissions.py", "--run_id", "r1", "--periods", "2026-09,2026-10"]
    argv += ["--store_root", "/tmp/store", "--job-bookmark-option", "job-bookmark-disable"]
    # WHEN they are parsed THEN the three job arguments come back
    assert parse_arguments(argv) == {
        "run_id": "r1",
        "periods": "2026-09,2026-10",
        "store_root": "/tmp/store",
    }


class FakeGlueContext:
    """What the Glue script uses of ``awsglue.context.GlueContext``: its Spark session."""

    made_with: ClassVar[list[SparkContext]] = []

    def __init__(self, context: SparkContext) -> None:
        FakeGlueContext.made_with.append(context)
        self.spark_session = SparkSession(context)


def fake_get_resolved_options(argv: list[str], options: list[str]) -> dict[str, str]:
    """Glue's resolver: ``--name value`` pairs for the options asked for, others ignored."""
    pairs = dict(zip(argv[1::2], argv[2::2], strict=False))
    return {name: pairs[f"--{name}"] for name in options}


def install_fake_awsglue(monkeypatch: pytest.MonkeyPatch) -> None:
    package = types.ModuleType("awsglue")
    utils = types.ModuleType("awsglue.utils")
    utils.getResolvedOptions = fake_get_resolved_options  # type: ignore[attr-defined]
    context = types.ModuleType("awsglue.context")
    context.GlueContext = FakeGlueContext  # type: ignore[attr-defined]
    for name, module in (
        ("awsglue", package),
        ("awsglue.utils", utils),
        ("awsglue.context", context),
    ):
        monkeypatch.setitem(sys.modules, name, module)


def test_glue_script_runs_the_job_through_glues_arguments_and_session(
    spark: SparkSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a run's inputs and the awsglue modules of a Glue worker (as small fakes)
    store = build_store(tmp_path, "r1", [("b1", "2026-10", "csv", CSV_ROWS)])
    install_fake_awsglue(monkeypatch)
    FakeGlueContext.made_with.clear()
    # WHEN the Glue script runs with the arguments the state machine passes (and one Glue adds)
    argv = ["calculate_commissions.py", "--job-bookmark-option", "job-bookmark-disable"]
    argv += ["--run_id", "r1", "--periods", " 2026-10, ", "--store_root", str(tmp_path)]
    result = main(argv)
    # THEN the job ran on the GlueContext's session, for the listed period, and wrote its marker
    assert FakeGlueContext.made_with == [spark.sparkContext]
    assert result["periods"] == ["2026-10"]
    assert store.read_json("runs/r1/calculation.json") == json.loads(json.dumps(result))
    # AND the script's one output line is the run's counts
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "run_id": "r1",
        "rows_in": 4,
        "rows_settled": 2,
        "rows_rejected": 2,
    }
