"""Reconciliation of a calculation's outputs (spec §2 counts, §6 totals, deltas)."""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from settlement.domain.reconciliation import (
    CurrencyTotals,
    ReconciliationError,
    delta_stats,
    line_totals,
    reconcile,
    summary_deltas,
    summary_totals,
)

MONEY = pa.decimal128(18, 2)


def money(*values: str) -> pa.Array:
    return pa.array([Decimal(v) for v in values], MONEY)


LINES = pa.RecordBatch.from_pydict(
    {
        "currency": ["EUR", "EUR", "EUR", "GBP"],
        "event_type": ["SALE", "SALE", "CANCELLATION", "SALE"],
        "base_amount": money("2000.00", "1300.02", "-1800.00", "10.00"),
        "bonus_amount": money("500.00", "400.01", "-450.00", "0.00"),
        "amount": money("2500.00", "1700.03", "-2250.00", "10.00"),
    }
)
SUMMARY = pa.RecordBatch.from_pydict(
    {
        "period": ["2026-10", "2026-10"],
        "dealer_id": ["D1", "D2"],
        "delta": money("1950.03", "10.00"),
        "currency": ["EUR", "GBP"],
        "base_total": money("3300.02", "10.00"),
        "bonus_total": money("900.01", "0.00"),
        "clawback_total": money("-2250.00", "0.00"),
        "total": money("1950.03", "10.00"),
    }
)


def deltas(*rows: tuple[str, str, str, str], period: str = "2026-10") -> pa.RecordBatch:
    currency, base, bonus, delta = zip(*rows, strict=True)
    return pa.RecordBatch.from_pydict(
        {
            "period": [period] * len(rows),
            "dealer_id": ["D1" if c == "EUR" else "D2" for c in currency],
            "currency": list(currency),
            "base_delta": money(*base),
            "bonus_delta": money(*bonus),
            "delta": money(*delta),
        }
    )


DELTAS = [
    (0, deltas(("EUR", "2000.00", "500.00", "2500.00"), ("EUR", "1300.02", "400.01", "1700.03"))),
    (1, deltas(("EUR", "-1800.00", "-450.00", "-2250.00"), ("GBP", "10.00", "0.00", "10.00"))),
]

CALCULATION: dict[str, Any] = {
    "run_id": "r1",
    "periods": ["2026-10"],
    "rows_in": 6,
    "rows_settled": 4,
    "rows_rejected": 2,
    "batches": [
        {
            "batch_id": "b1",
            "period": "2026-10",
            "rows_in": 5,
            "rows_settled": 3,
            "rows_rejected": 2,
        },
        {
            "batch_id": "b2",
            "period": "2026-10",
            "rows_in": 1,
            "rows_settled": 1,
            "rows_rejected": 0,
        },
    ],
    "totals": [
        {
            "currency": "EUR",
            "base_total": "3300.02",
            "bonus_total": "900.01",
            "clawback_total": "-2250.00",
            "total": "1950.03",
        },
        {
            "currency": "GBP",
            "base_total": "10.00",
            "bonus_total": "0.00",
            "clawback_total": "0.00",
            "total": "10.00",
        },
    ],
    "deltas": {
        "records": 4,
        "parts": [0, 1],
        "totals": [{"currency": "EUR", "delta": "1950.03"}, {"currency": "GBP", "delta": "10.00"}],
    },
}
MANIFEST_ROWS = {"b1": 5, "b2": 1}


def run(
    calculation: dict[str, Any],
    *,
    summary: pa.RecordBatch = SUMMARY,
    delta_batches: list[tuple[int, pa.RecordBatch]] = DELTAS,
    manifest_rows: dict[str, int] = MANIFEST_ROWS,
) -> Any:
    return reconcile(
        run_id="r1",
        calculation=calculation,
        manifest_rows=manifest_rows,
        lines=line_totals([LINES]),
        summary=summary_totals([summary]),
        deltas=delta_stats(delta_batches),
        summary_booked=summary_deltas([summary]),
    )


def test_line_totals_split_sales_and_clawbacks_per_currency() -> None:
    totals = line_totals([LINES.slice(0, 2), LINES.slice(2)])
    assert totals["EUR"] == CurrencyTotals(
        Decimal("3300.02"), Decimal("900.01"), Decimal("-2250.00"), Decimal("1950.03")
    )


def test_a_consistent_run_reconciles_and_lists_its_parts() -> None:
    # GIVEN outputs that agree with each other and with the manifests
    # WHEN reconciled
    result = run(CALCULATION)
    # THEN the publish steps get the parts and the record count
    assert result.parts == [0, 1]
    assert result.delta_records == 4
    assert result.as_json()["totals"][0]["total"] == "1950.03"


def test_no_deltas_means_no_parts_to_publish() -> None:
    # GIVEN an unchanged re-run: nothing to publish, and the summary's deltas are 0
    calculation = copy.deepcopy(CALCULATION)
    calculation["deltas"] = {"records": 0, "parts": [], "totals": []}
    unchanged = SUMMARY.set_column(
        SUMMARY.schema.get_field_index("delta"), "delta", money("0.00", "0.00")
    )
    # WHEN reconciled THEN there is no part to publish
    assert run(calculation, summary=unchanged, delta_batches=[]).parts == []


def mutated(path: list[Any], value: Any) -> dict[str, Any]:
    calculation = copy.deepcopy(CALCULATION)
    target: Any = calculation
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return calculation


@pytest.mark.parametrize(
    ("calculation", "message"),
    [
        (
            mutated(["batches", 0, "rows_rejected"], 1),
            "batch b1: rows_in 5 ≠ settled 3 + rejected 1",
        ),
        (mutated(["batches", 1, "rows_in"], 2), "batch b2: 2 rows read, the manifest says 1"),
        (mutated(["run_id"], "other"), "belongs to run other"),
        (
            mutated(["totals", 0, "bonus_total"], "900.00"),
            "EUR bonus_total: calculation.json 900.00",
        ),
        (mutated(["deltas", "records"], 5), "deltas/ holds 4 records, calculation.json says 5"),
        (mutated(["deltas", "totals", 1, "delta"], "9.99"), "GBP delta: deltas/ 10.00"),
        (mutated(["deltas", "parts"], [0]), "holds parts [0, 1]"),
    ],
)
def test_each_mismatch_is_named(calculation: dict[str, Any], message: str) -> None:
    with pytest.raises(ReconciliationError) as raised:
        run(calculation)
    assert any(message in mismatch for mismatch in raised.value.mismatches), raised.value.mismatches


def test_a_summary_that_does_not_add_up_to_the_lines_is_refused() -> None:
    summary = SUMMARY.set_column(
        SUMMARY.schema.get_field_index("total"), "total", money("1950.04", "10.00")
    )
    with pytest.raises(
        ReconciliationError, match=re.escape("EUR total: dealer_summary 1950.04 ≠ lines 1950.03")
    ):
        run(CALCULATION, summary=summary)


def test_a_delta_row_whose_parts_do_not_add_up_is_counted() -> None:
    bad = [(0, deltas(("EUR", "1.00", "1.00", "3.00")))]
    stats = delta_stats(bad)
    assert stats.inconsistent_rows == 1


def test_a_batch_missing_from_the_counts_and_an_unknown_one_are_both_reported() -> None:
    with pytest.raises(ReconciliationError) as raised:
        run(CALCULATION, manifest_rows={"b1": 5, "b3": 1})
    text = str(raised.value)
    assert "batch b3 is missing" in text
    assert "batch b2 was calculated but is not an input" in text


def test_deltas_booked_under_another_period_than_the_summary_are_a_mismatch() -> None:
    # GIVEN deltas whose per-currency totals agree, but one part books EUR under November
    moved = [DELTAS[0], (1, deltas(("EUR", "-1800.00", "-450.00", "-2250.00"), period="2026-11"))]
    moved.append((2, deltas(("GBP", "10.00", "0.00", "10.00"))))
    calculation = copy.deepcopy(CALCULATION)
    calculation["deltas"]["parts"] = [0, 1, 2]
    # WHEN reconciled THEN both bookings are named with both figures
    with pytest.raises(ReconciliationError) as error:
        run(calculation, delta_batches=moved)
    assert error.value.mismatches == [
        "2026-10 D1 EUR delta: deltas/ 4200.03 ≠ dealer_summary 1950.03",
        "2026-11 D1 EUR delta: deltas/ -2250.00 ≠ dealer_summary 0.00",
    ]
