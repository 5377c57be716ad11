"""Every row rule and pricing rule of spec §2/§4, on one small two-period run.

The run is settled once per module (a Spark plan costs seconds); each test reads one rule's
rows out of it. Prices are round numbers so each expectation can be checked by hand.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pyspark.sql import SparkSession

from settlement.domain.reasons import RejectReason
from tests.fixtures.calculation import Batch, Scenario, cancel, matrix_row, tx

pytestmark = pytest.mark.spark

D = Decimal
OCT, NOV = "2026-10", "2026-11"

MATRIX = (
    matrix_row("*", "*", "BASE", "0", "0.03", "100"),  # level (*, *): 130.00 on 1 000
    matrix_row("3", "PRIVATE", "BASE", "0", "0.04"),  # level (series, channel): 40.00
    matrix_row("3", "*", "BASE", "0", "0.035"),  # level (series, *): 35.00
    matrix_row("*", "FLEET", "BASE", "0", "0.02"),  # level (*, channel): 20.00
    # valid 10th (inclusive) to 20th (exclusive) of October only: 50.00
    matrix_row(
        "X5",
        "PRIVATE",
        "BASE",
        "0",
        "0.05",
        valid_from=date(2026, 10, 10),
        valid_to=date(2026, 10, 20),
    ),
    matrix_row("*", "*", "BONUS", "0.5", "0.001"),  # 1.00
    matrix_row("*", "*", "BONUS", "0.666667", "0.005"),  # 5.00
    matrix_row("*", "*", "BONUS", "1.0", "0.01"),  # 10.00
    # i4 has its own BONUS level from 15 October on: 20.00 whatever the attainment
    matrix_row("i4", "*", "BONUS", "0", "0.02", valid_from=date(2026, 10, 15)),
)
TARGETS = [("D1", OCT, 2), ("D5", OCT, 3), ("D6", OCT, 2), ("D2", OCT, 0)]


def _sale(transaction_id: str, series: str = "X5", channel: str = "EMPLOYEE", **fields: Any) -> Any:
    return tx(transaction_id, series=series, channel=channel, **fields)


B1 = [
    # D1: level choice, effective dating, BONUS level choice, cancellations
    _sale("A1", "3", "PRIVATE"),
    _sale("A2", "3", "EMPLOYEE"),
    _sale("A3", "X5", "FLEET"),
    _sale("A4"),
    _sale("A5", "X5", "PRIVATE", event_date="2026-10-10"),
    _sale("A6", "X5", "PRIVATE", event_date="2026-10-20"),
    _sale("A7", "X5", "PRIVATE", event_date="2026-10-09"),
    _sale("A8", "i4", "PRIVATE", event_date="2026-10-14"),
    _sale("A9", "i4", "PRIVATE", event_date="2026-10-15"),
    _sale("SA"),
    _sale("SB"),
    _sale("SC"),
    cancel("K1", "SA", event_date="2026-10-20"),
    cancel("K3", "SC", currency="USD"),
    cancel("K5", "SC"),
    # D5: target 3, net 2: 0.5 reached, 0.666667 not (2 < 0.666667 × 3 = 2.000001)
    _sale("E1", dealer_id="D5"),
    _sale("E2", dealer_id="D5"),
    # D6: target 2; the first sale alone would not reach 1.0, the month does
    _sale("F1", dealer_id="D6", event_date="2026-10-01"),
    _sale("F2", dealer_id="D6", event_date="2026-10-31"),
    # D2 (target 0) and D3 (no target): NO_TARGET, no BONUS
    _sale("G1", dealer_id="D2"),
    _sale("G2", dealer_id="D3"),
    # rejects (dealer D9)
    _sale("R1", dealer_id="D9", market=" "),
    cancel("R2", "", dealer_id="D9"),
    _sale("R3", dealer_id="D9", event_date="2026-10-32"),
    _sale("R4", dealer_id="D9", event_date="20261005"),
    _sale("R5", dealer_id="D9", net_price="12.345"),
    _sale("R6", dealer_id="D9", net_price="-1.00"),
    _sale("R7", dealer_id="D9", net_price=None),
    _sale("R8", dealer_id="D9", net_price="abc"),
    _sale("R9", dealer_id="D9", event_type="RETURN"),
    _sale("R10", dealer_id="D9", channel="ONLINE"),
    _sale("R11", dealer_id="D9", event_date="2026-11-02"),
    _sale("DUP", dealer_id="D9"),
    _sale("DUPX", dealer_id="D9"),
    _sale("R12", dealer_id="D9", market="AT"),
    _sale("R13", dealer_id="D9", currency="USD"),
    cancel("R14", "NOPE", dealer_id="D9"),
    cancel("R15", "SA", dealer_id="D1"),
    cancel("R16", "R12", dealer_id="D9"),
]
B2 = [_sale("DUP", dealer_id="D9")]
B3 = [
    cancel("K4", "SB", event_date="2026-11-03"),
    _sale("DUPX", dealer_id="D9", event_date="2026-11-04"),
]


@pytest.fixture(scope="module")
def settled(spark: SparkSession) -> dict[str, Any]:
    scenario = Scenario(
        batches=[Batch("b1", OCT, B1), Batch("b2", OCT, B2), Batch("b3", NOV, B3)],
        matrix=MATRIX,
        targets=TARGETS,
        periods=[OCT, NOV],
    )
    frames = scenario.run(spark)
    result = {
        "lines": {r.transaction_id: r.asDict() for r in frames.lines.collect()},
        "rejects": {(r.batch_id, r.line_number): r.asDict() for r in frames.rejects.collect()},
        "summary": {(r.dealer_id, r.period): r.asDict() for r in frames.dealer_summary.collect()},
        "counts": {r.batch_id: r.asDict() for r in frames.batch_counts.collect()},
    }
    frames.release()
    return result


def _reject_of(settled: dict[str, Any], transaction_id: str, batch: str = "b1") -> tuple[str, str]:
    rows = B1 if batch == "b1" else B2 if batch == "b2" else B3
    line = next(i for i, r in enumerate(rows, start=2) if r["transaction_id"] == transaction_id)
    reject = settled["rejects"][(batch, line)]
    return reject["reason"], reject["detail"]


@pytest.mark.parametrize(
    ("transaction_id", "reason", "detail_part"),
    [
        ("R1", RejectReason.MISSING_FIELD, "market is empty"),
        ("R2", RejectReason.MISSING_FIELD, "original_transaction_id is empty"),
        ("R3", RejectReason.INVALID_DATE, "'2026-10-32'"),
        ("R4", RejectReason.INVALID_DATE, "'20261005'"),
        ("R5", RejectReason.INVALID_AMOUNT, "'12.345'"),
        ("R6", RejectReason.INVALID_AMOUNT, "'-1.00'"),
        ("R7", RejectReason.INVALID_AMOUNT, "''"),
        ("R8", RejectReason.INVALID_AMOUNT, "'abc'"),
        ("R9", RejectReason.INVALID_EVENT_TYPE, "'RETURN'"),
        ("R10", RejectReason.INVALID_CHANNEL, "'ONLINE'"),
        ("R11", RejectReason.OUT_OF_PERIOD, "2026-11-02 is outside the batch period 2026-10"),
        ("R12", RejectReason.NO_RATE, "market AT"),
        ("R13", RejectReason.CURRENCY_MISMATCH, "USD differs from the matrix row's EUR"),
        ("R14", RejectReason.ORIGINAL_NOT_FOUND, "NOPE"),
        ("R15", RejectReason.ALREADY_CANCELLED, "already cancelled by K1"),
        ("R16", RejectReason.ORIGINAL_NOT_FOUND, "R12"),
        ("K3", RejectReason.CURRENCY_MISMATCH, "USD differs from the original sale's EUR"),
    ],
)
def test_each_reject_reason(
    settled: dict[str, Any], transaction_id: str, reason: RejectReason, detail_part: str
) -> None:
    # GIVEN the row built to break one rule WHEN settled THEN it is rejected for that rule
    got_reason, detail = _reject_of(settled, transaction_id)
    assert (got_reason, detail_part in detail) == (reason.value, True), detail
    assert transaction_id not in settled["lines"]


def test_duplicates_first_occurrence_in_period_batch_line_order_wins(
    settled: dict[str, Any],
) -> None:
    # GIVEN DUP in b1 and b2 (same period) and DUPX in October's b1 and November's b3
    # THEN the later ones are DUPLICATE_TRANSACTION and the first ones settle
    assert _reject_of(settled, "DUP", "b2")[0] == RejectReason.DUPLICATE_TRANSACTION
    assert "first seen in batch b1 line" in _reject_of(settled, "DUP", "b2")[1]
    assert _reject_of(settled, "DUPX", "b3")[0] == RejectReason.DUPLICATE_TRANSACTION
    assert settled["lines"]["DUP"]["batch_id"] == "b1"
    assert settled["lines"]["DUPX"]["period"] == OCT


def test_every_row_is_settled_or_rejected_per_batch(settled: dict[str, Any]) -> None:
    # THEN rows_in = settled + rejected for each batch, matching the rows given
    counts = settled["counts"]
    assert {
        b: (c["rows_in"], c["rows_settled"] + c["rows_rejected"]) for b, c in counts.items()
    } == {
        "b1": (len(B1), len(B1)),
        "b2": (len(B2), len(B2)),
        "b3": (len(B3), len(B3)),
    }
    assert counts["b1"]["rows_rejected"] == 17


@pytest.mark.parametrize(
    ("transaction_id", "base_rate", "base"),
    [
        ("A1", "0.04", "40.00"),  # (series, channel)
        ("A2", "0.035", "35.00"),  # (series, *)
        ("A3", "0.02", "20.00"),  # (*, channel)
        ("A4", "0.03", "130.00"),  # (*, *) with 100 per unit
        ("A5", "0.05", "50.00"),  # valid_from inclusive
        ("A6", "0.03", "130.00"),  # valid_to exclusive
        ("A7", "0.03", "130.00"),  # before valid_from
    ],
)
def test_base_takes_the_most_specific_row_valid_on_the_event_date(
    settled: dict[str, Any], transaction_id: str, base_rate: str, base: str
) -> None:
    line = settled["lines"][transaction_id]
    assert (line["base_rate"], line["base_amount"]) == (D(base_rate), D(base))


def test_bonus_uses_the_most_specific_level_with_bonus_rows_valid_that_day(
    settled: dict[str, Any],
) -> None:
    # GIVEN i4 BONUS rows valid from 15 October only, D1 far above target (tier 1.0 at (*, *))
    lines = settled["lines"]
    # THEN the sale of the 14th gets the (*, *) tier and the sale of the 15th the i4 row
    assert (lines["A8"]["bonus_tier"], lines["A8"]["bonus_amount"]) == (D("1.000000"), D("10.00"))
    assert (lines["A9"]["bonus_tier"], lines["A9"]["bonus_amount"]) == (D("0.000000"), D("20.00"))


def test_attainment_is_compared_exactly_never_after_rounding(settled: dict[str, Any]) -> None:
    # GIVEN D5 at 2 of 3 units: the reported attainment rounds to 0.666667, the tier's threshold
    # THEN the 0.666667 tier is not reached (2 < 2.000001) and 0.5 applies
    e1 = settled["lines"]["E1"]
    assert (e1["attainment"], e1["bonus_tier"], e1["bonus_amount"]) == (
        D("0.666667"),
        D("0.500000"),
        D("1.00"),
    )


def test_tier_applies_retroactively_to_the_whole_month(settled: dict[str, Any]) -> None:
    # GIVEN D6's first sale on the 1st (alone 0.5 of target) and its second on the 31st
    # THEN both earn the 1.0 tier reached over the month
    lines = settled["lines"]
    assert [lines[t]["bonus_amount"] for t in ("F1", "F2")] == [D("10.00"), D("10.00")]


def test_no_target_or_target_zero_gives_no_bonus_and_the_flag(settled: dict[str, Any]) -> None:
    lines, summary = settled["lines"], settled["summary"]
    for transaction_id, dealer in (("G1", "D2"), ("G2", "D3")):
        assert (lines[transaction_id]["bonus_amount"], lines[transaction_id]["attainment"]) == (
            D("0.00"),
            None,
        )
        assert summary[(dealer, OCT)]["flag"] == "NO_TARGET"
    assert summary[("D5", OCT)]["flag"] == ""


def test_clawback_in_run_negates_the_original_even_from_another_period(
    settled: dict[str, Any],
) -> None:
    # GIVEN K1 cancels SA (October) and K4 (November) cancels SB (October)
    lines = settled["lines"]
    for cancellation, period in (("K1", OCT), ("K4", NOV)):
        line = lines[cancellation]
        assert (line["period"], line["base_amount"], line["bonus_amount"], line["amount"]) == (
            period,
            D("-130.00"),
            D("-10.00"),
            D("-140.00"),
        )
    # AND the sales themselves still earn their own lines; K5 (after K3's rejection) cancels SC
    assert lines["SA"]["amount"] == D("140.00")
    assert lines["K5"]["amount"] == D("-140.00")


def test_cancellations_count_in_their_own_period(settled: dict[str, Any]) -> None:
    # D1 October: 12 sales, K1 and K5 cancel; November: only K4
    summary = settled["summary"]
    october = summary[("D1", OCT)]
    assert (october["sales_units"], october["cancelled_units"], october["net_units"]) == (12, 2, 10)
    november = summary[("D1", NOV)]
    assert (november["sales_units"], november["cancelled_units"], november["net_units"]) == (
        0,
        1,
        -1,
    )
    assert (november["clawback_total"], november["total"]) == (D("-140.00"), D("-140.00"))


def test_dealer_totals_are_the_sums_of_the_lines(settled: dict[str, Any]) -> None:
    for (dealer, period), row in settled["summary"].items():
        lines = [
            line
            for line in settled["lines"].values()
            if (line["dealer_id"], line["period"]) == (dealer, period)
        ]
        assert row["total"] == sum((line["amount"] for line in lines), D("0.00"))
        assert row["total"] == row["base_total"] + row["bonus_total"] + row["clawback_total"]
