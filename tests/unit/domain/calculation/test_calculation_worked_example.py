"""Spec §4's worked example, exact to the cent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pyspark.sql import SparkSession

from tests.fixtures.calculation import Scenario, by_transaction, cancel, matrix_row, october, tx

pytestmark = pytest.mark.spark

WORKED_MATRIX = (
    matrix_row("3", "PRIVATE", "BASE", "0", "0.04", "0"),
    matrix_row("*", "*", "BASE", "0", "0.03", "100"),
    matrix_row("*", "*", "BONUS", "0.9", "0.005", "0"),
    matrix_row("*", "*", "BONUS", "1.0", "0.01", "0"),
    matrix_row("*", "*", "BONUS", "1.1", "0.015", "0"),
)


def worked_example() -> Scenario:
    scenario = october(
        tx("S1", series="3", channel="PRIVATE", net_price="50000.00"),
        tx("S2", series="X5", channel="FLEET", net_price="80000.00"),
        tx("S3", series="3", channel="FLEET", net_price="40000.55"),
        tx("S4", series="3", channel="PRIVATE", net_price="45000.00"),
        tx("S5", series="i4", channel="PRIVATE", net_price="60000.00"),
        cancel("C1", "S4", event_date="2026-10-20", series="3", channel="PRIVATE"),
    )
    scenario.matrix = WORKED_MATRIX
    scenario.targets = [("D1", "2026-10", 4)]
    return scenario


def test_worked_example_lines_are_exact_to_the_cent(spark: SparkSession) -> None:
    # GIVEN the worked example of spec §4 (D1, target 4, five sales and one cancellation)
    # WHEN it is settled
    frames = worked_example().run(spark)
    # THEN every line carries the BASE and BONUS of the spec, and tier 1.0 for every sale
    lines = by_transaction(frames.lines, "base_amount", "bonus_amount", "bonus_tier")
    d = Decimal
    assert lines == {
        "S1": (d("2000.00"), d("500.00"), d("1.000000")),
        "S2": (d("2500.00"), d("800.00"), d("1.000000")),
        "S3": (d("1300.02"), d("400.01"), d("1.000000")),
        "S4": (d("1800.00"), d("450.00"), d("1.000000")),
        "S5": (d("1900.00"), d("600.00"), d("1.000000")),
        "C1": (d("-1800.00"), d("-450.00"), None),
    }
    assert frames.rejects.count() == 0


def test_worked_example_dealer_summary(spark: SparkSession) -> None:
    # GIVEN the worked example WHEN settled
    frames = worked_example().run(spark)
    # THEN the dealer summary matches spec §4 to the cent
    [summary] = frames.dealer_summary.collect()
    assert summary.asDict() == {
        "period": "2026-10",
        "market": "DE",
        "dealer_id": "D1",
        "currency": "EUR",
        "sales_units": 5,
        "cancelled_units": 1,
        "net_units": 4,
        "target_units": 4,
        "attainment": Decimal("1.000000"),
        "bonus_tier": Decimal("1.000000"),
        "flag": "",
        "base_total": Decimal("9500.02"),
        "bonus_total": Decimal("2750.01"),
        "clawback_total": Decimal("-2250.00"),
        "total": Decimal("10000.03"),
        "previously_published": Decimal("0.00"),
        "delta": Decimal("10000.03"),
    }


def test_a_dealer_in_two_markets_reports_one_attainment_in_each_summary_row(
    spark: SparkSession,
) -> None:
    # GIVEN D1, target 4, selling 2 cars in DE (EUR) and 2 in AT (EUR): 4 net units in all
    scenario = october(tx("S1"), tx("S2"), tx("A1", market="AT"), tx("A2", market="AT"))
    scenario.matrix = (
        *WORKED_MATRIX,
        matrix_row("*", "*", "BASE", "0", "0.03", "100", market="AT"),
        matrix_row("*", "*", "BONUS", "1.0", "0.01", "0", market="AT"),
    )
    scenario.targets = [("D1", "2026-10", 4)]
    # WHEN settled
    frames = scenario.run(spark)
    # THEN both markets' rows show the dealer's attainment 1.0, the one its tier was chosen by
    summary = {
        row.market: (row.net_units, row.attainment, row.bonus_tier)
        for row in frames.dealer_summary.collect()
    }
    assert summary == {
        "DE": (2, Decimal("1.000000"), Decimal("1.000000")),
        "AT": (2, Decimal("1.000000"), Decimal("1.000000")),
    }
