"""Re-processing against the published ledger (spec §2, §4.6, §5): duplicates, clawbacks of
published sales, deltas and what the dealer summary says was published before."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pyspark.sql import SparkSession

from tests.fixtures.calculation import Batch, Scenario, cancel, ledger_row, tx

pytestmark = pytest.mark.spark

D = Decimal
SEP, OCT = "2026-09", "2026-10"

LEDGER = [
    ledger_row("L1", SEP, "130.00", "0.00"),  # settled in a period not re-computed
    ledger_row("P1", SEP, "130.00", "5.00"),  # a published sale cancelled now
    ledger_row("P2", SEP, "130.00", "0.00"),
    ledger_row(
        "LCX", SEP, "-130.00", "0.00", event_type="CANCELLATION", original_transaction_id="P2"
    ),
    ledger_row("P3", OCT, "130.00", "0.00"),  # re-computed period, no longer in any batch
    ledger_row("U1", OCT, "130.00", "0.00"),  # unchanged
    ledger_row("C2", OCT, "100.00", "0.00"),  # changed
    ledger_row("Q1", OCT, "0.00", "0.00", settled=False),  # reversed before, still absent
    ledger_row("Q2", OCT, "0.00", "0.00", settled=False),  # reversed before, back now
]
ROWS = [
    tx("L1"),
    cancel("LC1", "P1"),
    cancel("LC2", "P2"),
    cancel("LC3", "P3"),
    tx("U1"),
    tx("C2"),
    tx("Q2"),
    tx("N1"),
]


@pytest.fixture(scope="module")
def settled(spark: SparkSession) -> dict[str, Any]:
    # GIVEN October re-computed with a ledger holding September and October publications
    frames = Scenario(batches=[Batch("b1", OCT, ROWS)], ledger=LEDGER).run(spark)
    result = {
        "lines": {r.transaction_id: r.asDict() for r in frames.lines.collect()},
        "rejects": {r.transaction_id: r.asDict() for r in frames.rejects.collect()},
        "deltas": {r.transaction_id: r.asDict() for r in frames.deltas.collect()},
        "summary": [r.asDict() for r in frames.dealer_summary.collect()],
    }
    frames.release()
    return result


def test_settled_in_a_period_not_recomputed_is_a_duplicate(settled: dict[str, Any]) -> None:
    reject = settled["rejects"]["L1"]
    assert (reject["reason"], reject["detail"]) == (
        "DUPLICATE_TRANSACTION",
        "transaction_id already settled for period 2026-09",
    )


def test_cancellation_of_a_published_sale_claws_back_what_was_published(
    settled: dict[str, Any],
) -> None:
    line = settled["lines"]["LC1"]
    assert (line["base_amount"], line["bonus_amount"]) == (D("-130.00"), D("-5.00"))


def test_published_cancellation_makes_a_second_one_already_cancelled(
    settled: dict[str, Any],
) -> None:
    assert settled["rejects"]["LC2"]["reason"] == "ALREADY_CANCELLED"
    assert "LCX" in settled["rejects"]["LC2"]["detail"]


def test_original_of_a_recomputed_period_that_no_longer_settles_is_not_found(
    settled: dict[str, Any],
) -> None:
    assert settled["rejects"]["LC3"]["reason"] == "ORIGINAL_NOT_FOUND"


def test_deltas_publish_new_changed_reversed_and_returning_transactions_only(
    settled: dict[str, Any],
) -> None:
    deltas = {
        t: (d["base_delta"], d["bonus_delta"], d["delta"], d["base_amount"], d["settled"])
        for t, d in settled["deltas"].items()
    }
    assert deltas == {
        "N1": (D("130.00"), D("0.00"), D("130.00"), D("130.00"), True),  # new
        "LC1": (D("-130.00"), D("-5.00"), D("-135.00"), D("-130.00"), True),  # new
        "C2": (D("30.00"), D("0.00"), D("30.00"), D("130.00"), True),  # changed
        "Q2": (D("130.00"), D("0.00"), D("130.00"), D("130.00"), True),  # settled again
        "P3": (D("-130.00"), D("0.00"), D("-130.00"), D("0.00"), False),  # reversed
    }


def test_summary_shows_previously_published_and_the_delta(settled: dict[str, Any]) -> None:
    [october] = [s for s in settled["summary"] if s["period"] == OCT]
    # new lines: U1, C2, Q2, N1 (130 each) and LC1 (-135); published for October: P3, U1, C2
    assert (october["total"], october["previously_published"], october["delta"]) == (
        D("385.00"),
        D("360.00"),
        D("25.00"),
    )
    assert october["delta"] == sum((d["delta"] for d in settled["deltas"].values()), D("0.00"))


def test_a_dealer_settling_nothing_now_keeps_its_target_in_the_summary(
    spark: SparkSession,
) -> None:
    # GIVEN D7 has a target of 5 for October and a line published for it, but no row now
    scenario = Scenario(
        batches=[Batch("b1", OCT, [tx("N1")])],
        targets=[("D1", OCT, 1), ("D7", OCT, 5)],
        ledger=[ledger_row("P7", OCT, "130.00", "0.00", dealer_id="D7")],
    )
    # WHEN October is re-computed
    frames = scenario.run(spark)
    summary = {r.dealer_id: r.asDict() for r in frames.dealer_summary.collect()}
    frames.release()
    # THEN D7's row shows its target and an attainment of 0, not NO_TARGET, and the reversal
    d7 = summary["D7"]
    assert (d7["target_units"], d7["net_units"], d7["attainment"], d7["flag"]) == (5, 0, D(0), "")
    assert (d7["total"], d7["previously_published"], d7["delta"]) == (
        D("0.00"),
        D("130.00"),
        D("-130.00"),
    )


def test_a_transaction_booked_elsewhere_now_is_reversed_where_it_was_and_published_whole(
    spark: SparkSession,
) -> None:
    # GIVEN M1 and M2 published for October under D1; now M1's batch dates it in November and
    # M2's names dealer D2, and both months are re-computed in one run
    nov = "2026-11"
    scenario = Scenario(
        batches=[
            Batch("oct", OCT, [tx("M2", dealer_id="D2")]),
            Batch("nov", nov, [tx("M1", event_date="2026-11-05")]),
        ],
        ledger=[ledger_row("M1", OCT, "130.00", "5.00"), ledger_row("M2", OCT, "130.00", "0.00")],
        periods=[OCT, nov],
    )
    # WHEN the run settles
    frames = scenario.run(spark)
    records = sorted(
        (r.transaction_id, r.period, r.dealer_id, r.delta, r.settled, r.ledger_entry)
        for r in frames.deltas.collect()
    )
    summary = {(r.period, r.dealer_id): r.delta for r in frames.dealer_summary.collect()}
    frames.release()
    # THEN each is reversed where it was booked and published whole where it is now; only the
    # new record sets the ledger row
    assert records == [
        ("M1", OCT, "D1", D("-135.00"), False, False),
        ("M1", nov, "D1", D("130.00"), True, True),
        ("M2", OCT, "D1", D("-130.00"), False, False),
        ("M2", OCT, "D2", D("130.00"), True, True),
    ]
    # AND the records add up to each dealer's and period's summary delta
    assert summary == {
        (OCT, "D1"): D("-265.00"),
        (OCT, "D2"): D("130.00"),
        (nov, "D1"): D("130.00"),
    }
