"""End to end on one machine with the real calculation job on the shared Spark session (spec §9):
generated months, reference uploads, submitted batches, the state machine, Core View's file sink.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.dataset as pads
import pytest

from settlement.bootstrap import Adapters
from settlement.cli.workflow import run_demo, submit_batch, upload
from settlement.generator import GeneratedMonth, generate_month
from state_machine.local import run_workflow
from tests.fixtures.workflow import put_batch, sale
from tests.unit.domain.reference.catalogue import GOOD_MATRIX

pytestmark = [pytest.mark.spark, pytest.mark.slow]
ROWS = 2_000


def table(
    workspace: Adapters, run_id: str, output: str, columns: list[str]
) -> list[dict[str, Any]]:
    store = workspace.store
    prefix = f"runs/{run_id}/{output}"
    if not any(True for _ in store.list(prefix, recursive=True)):
        return []
    dataset = pads.dataset(
        store.path(prefix), filesystem=store.filesystem, format="parquet", partitioning="hive"
    )
    rows: list[dict[str, Any]] = dataset.to_table(columns=columns).to_pylist()
    return rows


def amounts(workspace: Adapters, run_id: str) -> dict[str, Decimal]:
    lines = table(workspace, run_id, "lines", ["transaction_id", "amount"])
    return {line["transaction_id"]: line["amount"] for line in lines}


def report(workspace: Adapters, run_id: str) -> dict[str, Any]:
    document: dict[str, Any] = workspace.store.read_json(f"runs/{run_id}/run_report.json")
    return document


def settle(workspace: Adapters, spark: Any, *periods: str) -> str:
    execution = run_workflow(
        workspace, {"periods": list(periods), "requested_by": "tests"}, spark=spark,
        sleep=lambda _: None,
    )  # fmt: skip
    assert execution.status == "SUCCEEDED", f"{execution.error}: {execution.cause}"
    run_id: str = execution.name
    return run_id


def load_month(workspace: Adapters, month: GeneratedMonth) -> None:
    upload(workspace, "matrix", month.matrix_path)
    upload(workspace, "targets", month.targets_path)
    for batch in month.batches:
        submit_batch(
            workspace, batch.data_path, period=month.period, batch_id=batch.batch_id,
            source=month.source,
        )  # fmt: skip


def test_demo_then_corrected_matrix_publishes_exactly_the_changes(
    workspace: Adapters, spark: Any
) -> None:
    # GIVEN the demo: a generated month settled, then re-processed after a corrected DE matrix
    outcome = run_demo(workspace, rows=ROWS, seed=11, period="2026-10", spark=spark)
    first, second = outcome["first"], outcome["second"]
    # THEN the first run published every settled line and reconciled with the generator's intent
    first_report = report(workspace, first)
    month: GeneratedMonth = outcome["month"]
    assert first_report["rows"] == {
        "in": ROWS,
        "settled": month.valid_sales + month.valid_cancellations,
        "rejected": month.rows_rejected,
    }
    assert first_report["records"] == len(amounts(workspace, first))
    # AND the re-run published exactly the transactions whose amount changed, by the difference
    before, after = amounts(workspace, first), amounts(workspace, second)
    changed = {t for t in after if after[t] != before.get(t)}
    assert changed, "the corrected matrix changed nothing"
    deltas = table(workspace, second, "deltas", ["transaction_id", "delta", "market"])
    assert {row["transaction_id"] for row in deltas} == changed
    assert all(
        row["delta"] == after[row["transaction_id"]] - before[row["transaction_id"]]
        for row in deltas
    )
    assert {row["market"] for row in deltas} == {"DE"}
    second_report = report(workspace, second)
    assert second_report["records"] == len(changed)
    expected = sum((row["delta"] for row in deltas), Decimal("0.00"))
    published = sum((Decimal(entry["delta"]) for entry in second_report["published"]), Decimal(0))
    assert published == expected


def test_two_periods_with_cancellations_across_them_then_an_unchanged_re_run(
    workspace: Adapters, spark: Any, tmp_path: Path
) -> None:
    # GIVEN September, and October whose cancellations reverse September sales
    september = generate_month(tmp_path / "sep", rows=ROWS, seed=5, period="2026-09")
    october = generate_month(
        tmp_path / "oct", rows=ROWS, seed=6, period="2026-10", previous=september
    )
    load_month(workspace, september)
    load_month(workspace, october)  # the October reference files carry September's targets too
    # WHEN one run settles both periods
    both = settle(workspace, spark, "2026-09", "2026-10")
    # THEN each cross-period cancellation claws back exactly its September sale
    lines = table(
        workspace, both, "lines",
        ["transaction_id", "period", "event_type", "original_transaction_id", "amount"],
    )  # fmt: skip
    amount_of = {line["transaction_id"]: line["amount"] for line in lines}
    period_of = {line["transaction_id"]: line["period"] for line in lines}
    clawbacks = [
        line for line in lines
        if line["event_type"] == "CANCELLATION" and line["period"] == "2026-10"
        and period_of.get(line["original_transaction_id"]) == "2026-09"
    ]  # fmt: skip
    assert clawbacks, "the generator made no cross-period cancellation"
    assert all(line["amount"] == -amount_of[line["original_transaction_id"]] for line in clawbacks)
    first = report(workspace, both)
    assert first["periods"] == ["2026-09", "2026-10"]
    assert first["rows"]["in"] == 2 * ROWS
    assert first["records"] == len(lines)
    # AND re-running both periods with nothing changed publishes nothing and says so
    again = settle(workspace, spark, "2026-09", "2026-10")
    assert report(workspace, again)["records"] == 0
    assert report(workspace, again)["published"] == []
    assert report(workspace, again)["totals"] == first["totals"]


def cancellation(n: int, original: int, day: str) -> list[str]:
    """A CANCELLATION ``C<n>`` of ``T<original>`` on ``day``, for dealer D1 in DE."""
    return [f"C{n}", "CANCELLATION", day, "DE", "D1", f"VIN{original}", "3", "PRIVATE", "",
            "EUR", f"T{original}"]  # fmt: skip


def upload_example_matrix(workspace: Adapters, tmp_path: Path) -> None:
    """Upload the matrix of spec §4's worked example (DE, EUR)."""
    matrix = tmp_path / "matrix.csv"
    matrix.write_bytes(GOOD_MATRIX)
    upload(workspace, "matrix", matrix)


def test_a_cancellation_that_now_reverses_another_equal_sale_is_remembered(
    workspace: Adapters, spark: Any, tmp_path: Path
) -> None:
    # GIVEN the matrix of spec §4, and October: two equal sales of dealer D1, C1 cancelling T4
    upload_example_matrix(workspace, tmp_path)
    put_batch(workspace.store, "oct", [sale(1), sale(4), cancellation(1, 4, "2026-10-20")])
    settle(workspace, spark, "2026-10")
    # WHEN the batch is corrected so that C1 cancels T1 instead (the same amounts), and October
    # is re-run
    put_batch(workspace.store, "oct", [sale(1), sale(4), cancellation(1, 1, "2026-10-20")])
    corrected = settle(workspace, spark, "2026-10")
    # THEN nothing is published (no amount changed), but the ledger says what C1 now reverses
    assert report(workspace, corrected)["records"] == 0
    ledger = {entry.transaction_id: entry for entry in workspace.database.ledger.entries()}
    assert ledger["C1"].original_transaction_id == "T1"
    # AND a November cancellation of T1 is a second cancellation of it: rejected, nothing paid
    put_batch(workspace.store, "nov", [cancellation(9, 1, "2026-11-05")], period="2026-11")
    november = settle(workspace, spark, "2026-11")
    rejects = table(workspace, november, "rejects", ["transaction_id", "reason"])
    assert rejects == [{"transaction_id": "C9", "reason": "ALREADY_CANCELLED"}]
    assert report(workspace, november)["records"] == 0


def test_re_processing_a_month_names_the_later_months_whose_clawbacks_it_changed(
    workspace: Adapters, spark: Any, tmp_path: Path
) -> None:
    # GIVEN October's sale T1 settled, then November's cancellation C2 of it
    upload_example_matrix(workspace, tmp_path)
    put_batch(workspace.store, "oct", [sale(1), sale(4)])
    settle(workspace, spark, "2026-10")
    put_batch(workspace.store, "nov", [cancellation(2, 1, "2026-11-10")], period="2026-11")
    november = settle(workspace, spark, "2026-11")
    assert report(workspace, november)["periods_to_recompute"] == []
    # WHEN October is re-processed with T1's price corrected
    put_batch(workspace.store, "oct", [sale(1, price="2000.00"), sale(4)])
    corrected = settle(workspace, spark, "2026-10")
    # THEN its report names November: C2 there still claws back T1 as first published
    assert report(workspace, corrected)["periods_to_recompute"] == [
        {"period": "2026-11", "records": 1}
    ]
    # AND once November is re-run too, C2 follows T1 and nothing is left to re-compute
    again = settle(workspace, spark, "2026-11")
    deltas = table(workspace, again, "deltas", ["transaction_id", "delta"])
    assert [row["transaction_id"] for row in deltas] == ["C2"]
    assert report(workspace, again)["periods_to_recompute"] == []
