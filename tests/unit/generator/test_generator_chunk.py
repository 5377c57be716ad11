"""One generated chunk: value encoding, the plan honoured, rows ordered as a DMS export."""

from __future__ import annotations

import re

import numpy as np
import pytest

from settlement.generator.catalog import REASONS, Period, build_roster
from settlement.generator.chunk import ChunkGenerator, ChunkPlan, _ids, _prices


@pytest.mark.parametrize(
    ("cents", "text"),
    [(2_000_000, "20000.00"), (15_000_000, "150000.00"), (4_500_012, "45000.12"), (5, "0.05")],
)
def test_prices_have_two_decimals_and_no_leading_zeros(cents: int, text: str) -> None:
    assert _prices(np.array([cents])).to_pylist() == [text]


def test_ids_are_zero_padded_after_the_prefix() -> None:
    assert _ids("TX-202610-dms-", np.array([0, 123_456_789])).to_pylist() == [
        "TX-202610-dms-000000000",
        "TX-202610-dms-123456789",
    ]


@pytest.fixture
def generator() -> ChunkGenerator:
    return ChunkGenerator(Period.parse("2026-02"), build_roster(5_000, 1), (1, 2), "TX-202602-t-")


def test_a_chunk_holds_the_planned_rows_and_rejects(generator: ChunkGenerator) -> None:
    # GIVEN a plan of 5,000 rows with 150 cancellations and 30 rejects of each reason
    plan = ChunkPlan(index=3, start=10_000, rows=5_000, cancellations=150, reasons=np.full(11, 30))
    # WHEN the chunk is generated
    chunk = generator.generate(plan)
    # THEN it has exactly those rows and rejects, and the rest settle
    assert chunk.table.num_rows == 5_000
    assert dict(zip(REASONS, chunk.reason_counts.tolist(), strict=True)) == dict.fromkeys(
        REASONS, 30
    )
    assert chunk.valid_cancellations == 150
    assert chunk.valid_sales == 5_000 - 150 - 11 * 30
    assert chunk.sales_per_dealer.sum() == chunk.valid_sales
    # AND rows of the period come in date order, ids increasing from the chunk's start
    in_period = re.compile(r"^2026-02-(0[1-9]|1\d|2[0-8])$")  # not the unparseable ones
    dates = [d for d in chunk.table.column("event_date").to_pylist() if d and in_period.match(d)]
    assert dates == sorted(dates)
    ids = chunk.table.column("transaction_id").to_pylist()
    assert ids[0] == "TX-202602-t-000010000"
    assert chunk.carry_over == (), "only the first chunk offers sales to a later month"


def test_a_plan_too_small_for_its_rejects_is_refused(generator: ChunkGenerator) -> None:
    # GIVEN 12 rows but 11 rejects and a cancellation WHEN generated THEN a clear error
    plan = ChunkPlan(index=0, start=0, rows=12, cancellations=1, reasons=np.full(11, 1))
    with pytest.raises(ValueError, match="cannot hold"):
        generator.generate(plan)
