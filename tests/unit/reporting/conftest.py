"""A small finished run written into a temp data store, as the calculation and finalise write it.

Dealer D1 is the worked example of spec §4 (DE, EUR, tier 1.0, total 10000.03).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]
import pytest

from settlement.adapters.storage import DataStore

RUN_ID = "run-2026-10-a"
MONEY = pa.decimal128(18, 2)

SUMMARY_SCHEMA = pa.schema(
    [
        ("period", pa.string()),
        ("market", pa.string()),
        ("dealer_id", pa.string()),
        ("currency", pa.string()),
        ("sales_units", pa.int64()),
        ("cancelled_units", pa.int64()),
        ("net_units", pa.int64()),
        ("target_units", pa.int64()),
        ("attainment", pa.decimal128(20, 10)),
        ("bonus_tier", pa.decimal128(12, 6)),
        ("flag", pa.string()),
        ("base_total", MONEY),
        ("bonus_total", MONEY),
        ("clawback_total", MONEY),
        ("total", MONEY),
        ("previously_published", MONEY),
        ("delta", MONEY),
    ]
)


def d(text: str) -> Decimal:
    return Decimal(text)


def summary_row(
    dealer_id: str,
    *,
    currency: str = "EUR",
    market: str = "DE",
    net_units: int = 4,
    target_units: int | None = 4,
    attainment: str | None = "1",
    bonus_tier: str | None = "1.000000",
    flag: str = "",
    amounts: tuple[str, str, str, str] = ("0.00", "0.00", "0.00", "0.00"),
) -> dict[str, Any]:
    base, bonus, clawback, total = (d(a) for a in amounts)
    return {
        "period": "2026-10",
        "market": market,
        "dealer_id": dealer_id,
        "currency": currency,
        "sales_units": net_units,
        "cancelled_units": 0,
        "net_units": net_units,
        "target_units": target_units,
        "attainment": None if attainment is None else d(attainment),
        "bonus_tier": None if bonus_tier is None else d(bonus_tier),
        "flag": flag,
        "base_total": base,
        "bonus_total": bonus,
        "clawback_total": clawback,
        "total": total,
        "previously_published": d("0.00"),
        "delta": total,
    }


DEALER_SUMMARY = [
    summary_row("D1", amounts=("9500.02", "2750.01", "-2250.00", "10000.03")),
    summary_row(
        "D2",
        net_units=1,
        attainment="0.25",
        bonus_tier=None,
        amounts=("1234.56", "0.00", "0.00", "1234.56"),
    ),
    summary_row(
        "D3",
        net_units=2,
        target_units=None,
        attainment=None,
        bonus_tier=None,
        flag="NO_TARGET",
        amounts=("777.70", "0.00", "-10.05", "767.65"),
    ),
    summary_row(
        "<b>D4</b>",
        currency="GBP",
        market="GB",
        amounts=("500.10", "50.01", "0.00", "550.11"),
    ),
]

RUN_REPORT: dict[str, Any] = {
    "run_id": RUN_ID,
    "periods": ["2026-10"],
    "state": "SUCCEEDED",
    "requested_by": "ops@example.com",
    "dry_run": False,
    "error": None,
    "inputs": [
        {"batch_id": "b-de-1", "period": "2026-10", "sha256": "ab12" * 16},
        {"batch_id": "b-gb-1", "period": "2026-10", "sha256": "cd34" * 16},
    ],
    "matrix_versions": ["mx-0007"],
    "target_versions": ["tg-0003"],
    "batches": [
        {"batch_id": "b-de-1", "rows_in": 11, "rows_settled": 8, "rows_rejected": 3},
        {"batch_id": "b-gb-1", "rows_in": 2, "rows_settled": 1, "rows_rejected": 1},
    ],
    "totals": [
        {
            "currency": "EUR",
            "base_total": "11512.28",
            "bonus_total": "2750.01",
            "clawback_total": "-2260.05",
            "total": "12002.24",
        },
        {
            "currency": "GBP",
            "base_total": "500.10",
            "bonus_total": "50.01",
            "clawback_total": "0.00",
            "total": "550.11",
        },
    ],
    "published": [{"currency": "EUR", "delta": "12002.24"}, {"currency": "GBP", "delta": "550.11"}],
    "records": 9,
    "timings": {"Validate input and batches": 0.42, "Calculate commissions": 61.5},
}

REJECTS = [
    ("b-de-1", 3, "T3", "NO_RATE", "no BASE row for DE/M8/FLEET"),
    ("b-de-1", 7, "T7", "OUT_OF_PERIOD", "2026-11-02 is outside 2026-10"),
    ("b-de-1", 9, "T9", "NO_RATE", "no BASE row for DE/M8/PRIVATE"),
    ("b-gb-1", 2, "T12", "INVALID_AMOUNT", "net_price '12.345' has more than 2 decimals"),
]

# part -> rows of (transaction_id, dealer_id, currency, base_delta, bonus_delta)
DELTA_PARTS: dict[int, list[tuple[str, str, str, str, str]]] = {
    0: [
        ("S1", "D1", "EUR", "2000.00", "500.00"),
        ("S2", "D1", "EUR", "2500.00", "800.00"),
        ("S3", "D1", "EUR", "1300.02", "400.01"),
    ],
    1: [
        ("C1", "D1", "EUR", "-1800.00", "-450.00"),
        ("G1", "<b>D4</b>", "GBP", "500.10", "50.01"),
    ],
}


@dataclass(frozen=True)
class RunFixture:
    store: DataStore
    run_id: str
    home: Path


def write_dataset(store: DataStore, key: str, table: pa.Table) -> None:
    """Write like Spark does: a part file plus the _SUCCESS and .crc side files."""
    directory = Path(store.path(key))
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, directory / "part-00000-abc.snappy.parquet")
    (directory / "_SUCCESS").write_bytes(b"")
    (directory / ".part-00000-abc.snappy.parquet.crc").write_bytes(b"crc")


def write_run(store: DataStore, run_id: str, *, run_report: dict[str, Any] | None) -> None:
    prefix = f"runs/{run_id}"
    if run_report is not None:
        store.write_json(f"{prefix}/run_report.json", run_report)
    write_dataset(
        store,
        f"{prefix}/dealer_summary",
        pa.Table.from_pylist(DEALER_SUMMARY, schema=SUMMARY_SCHEMA),
    )
    batch_counts = [
        {"batch_id": b["batch_id"], "period": "2026-10", **{k: b[k] for k in b if k != "batch_id"}}
        for b in RUN_REPORT["batches"]
    ]
    write_dataset(store, f"{prefix}/batch_counts", pa.Table.from_pylist(batch_counts))
    rejects = pa.table(
        {
            "batch_id": [r[0] for r in REJECTS],
            "line_number": pa.array([r[1] for r in REJECTS], pa.int64()),
            "transaction_id": [r[2] for r in REJECTS],
            "reason": [r[3] for r in REJECTS],
            "detail": [r[4] for r in REJECTS],
        }
    )
    write_dataset(store, f"{prefix}/rejects", rejects)
    for part, rows in DELTA_PARTS.items():
        base = [d(r[3]) for r in rows]
        bonus = [d(r[4]) for r in rows]
        table = pa.table(
            {
                "transaction_id": [r[0] for r in rows],
                "period": ["2026-10"] * len(rows),
                "dealer_id": [r[1] for r in rows],
                "currency": [r[2] for r in rows],
                "base_delta": pa.array(base, MONEY),
                "bonus_delta": pa.array(bonus, MONEY),
                "delta": pa.array([a + b for a, b in zip(base, bonus, strict=True)], MONEY),
                "base_amount": pa.array(base, MONEY),
                "bonus_amount": pa.array(bonus, MONEY),
            }
        )
        write_dataset(store, f"{prefix}/deltas/part={part}", table)


@pytest.fixture
def finished_run(tmp_path: Path) -> RunFixture:
    """GIVEN a finished run with every output of spec §6 in a local data store."""
    home = tmp_path / "home"
    store = DataStore(str(home / "store"))
    write_run(store, RUN_ID, run_report=RUN_REPORT)
    return RunFixture(store=store, run_id=RUN_ID, home=home)


@pytest.fixture
def run_without_report(tmp_path: Path) -> RunFixture:
    """GIVEN a run whose outputs exist but whose run_report.json was never written."""
    home = tmp_path / "home"
    store = DataStore(str(home / "store"))
    write_run(store, RUN_ID, run_report=None)
    return RunFixture(store=store, run_id=RUN_ID, home=home)
