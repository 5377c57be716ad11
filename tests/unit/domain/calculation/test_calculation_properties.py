"""Properties of the calculation on generated inputs (small and few: Spark is slow to plan)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession

from tests.fixtures.calculation import Batch, Scenario, matrix_row, tx

pytestmark = pytest.mark.spark

IDS = [f"T{i}" for i in range(6)]
MATRIX = (
    matrix_row("*", "*", "BASE", "0", "0.03", "100"),
    matrix_row("3", "*", "BASE", "0", "0.04"),
    matrix_row("*", "*", "BONUS", "0.5", "0.01"),
)


@st.composite
def rows(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(["SALE", "SALE", "CANCELLATION", "RETURN"]))
    return tx(
        draw(st.sampled_from(IDS)),
        event_type=event_type,
        event_date=draw(st.sampled_from(["2026-10-01", "2026-10-31", "2026-11-01", "2026-10-32"])),
        dealer_id=draw(st.sampled_from(["D1", "D2"])),
        series=draw(st.sampled_from(["3", "X5"])),
        market=draw(st.sampled_from(["DE", "DE", "AT"])),
        net_price=draw(st.sampled_from(["1000.00", "999.99", "0", "12.345", "-1", None])),
        currency=draw(st.sampled_from(["EUR", "EUR", "USD"])),
        original_transaction_id=draw(st.sampled_from(IDS))
        if event_type == "CANCELLATION"
        else None,
    )


batches = st.lists(st.lists(rows(), min_size=0, max_size=6), min_size=1, max_size=3)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=batches)
def test_rows_balance_and_summaries_add_up(
    spark: SparkSession, batches: list[list[dict[str, Any]]]
) -> None:
    # GIVEN generated batches (duplicates, bad values, unknown originals, foreign currencies)
    scenario = Scenario(
        batches=[Batch(f"b{i}", "2026-10", rows) for i, rows in enumerate(batches)],
        matrix=MATRIX,
        targets=[("D1", "2026-10", 2)],
    )
    # WHEN they are settled
    frames = scenario.run(spark)
    counts = {r.batch_id: r.asDict() for r in frames.batch_counts.collect()}
    lines = [r.asDict() for r in frames.lines.collect()]
    summary = [r.asDict() for r in frames.dealer_summary.collect()]
    frames.release()
    # THEN every row of every batch is settled or rejected
    for i, given_rows in enumerate(batches):
        c = counts.get(f"b{i}", {"rows_in": 0, "rows_settled": 0, "rows_rejected": 0})
        assert c["rows_in"] == len(given_rows) == c["rows_settled"] + c["rows_rejected"]
    assert sum(c["rows_settled"] for c in counts.values()) == len(lines)
    # AND each line is BASE + BONUS, and each dealer total is the sum of its lines
    sums: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for line in lines:
        assert line["amount"] == line["base_amount"] + line["bonus_amount"]
        sums[(line["dealer_id"], line["market"], line["currency"])] += line["amount"]
    assert {(s["dealer_id"], s["market"], s["currency"]): s["total"] for s in summary} == dict(sums)
