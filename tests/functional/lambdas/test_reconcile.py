"""λ reconcile: reads calculation.json and the outputs; refuses figures that do not add up."""

from __future__ import annotations

import pytest

from lambdas import reconcile, validate_batches
from settlement.bootstrap import Adapters
from settlement.domain.reconciliation import CalculationMissingError, ReconciliationError
from tests.fixtures.workflow import FakeCalculation, put_batch, sale


def prepared_run(workspace: Adapters, run_id: str = "r1") -> None:
    put_batch(workspace.store, "b1", [sale(1), sale(2, price="2500.50")])
    put_batch(workspace.store, "b2", [sale(3)])
    validate_batches.handle({"run_id": run_id, "request": {"periods": ["2026-10"]}}, workspace)


def test_a_consistent_calculation_reconciles_and_lists_the_parts(workspace: Adapters) -> None:
    # GIVEN a run whose calculation completed
    prepared_run(workspace)
    FakeCalculation()(None, store_root=workspace.store.root_uri, run_id="r1", periods=["2026-10"])
    # WHEN it is reconciled
    result = reconcile.handle({"run_id": "r1", "dry_run": True}, workspace)
    # THEN the Map gets the parts and the record count, and the check is kept for the report
    assert result["parts"] == [0]
    assert result["delta_records"] == 3
    assert result["dry_run"] is True
    saved = workspace.store.read_json("runs/r1/reconciliation.json")
    assert saved["totals"][0]["total"] == "45.01"  # 10.00 + 25.01 (25.005 half up) + 10.00


def test_a_missing_calculation_is_a_clear_error(workspace: Adapters) -> None:
    prepared_run(workspace)
    with pytest.raises(CalculationMissingError, match=r"calculation\.json is missing"):
        reconcile.handle({"run_id": "r1"}, workspace)


def test_counts_that_disagree_with_the_manifest_are_refused(workspace: Adapters) -> None:
    prepared_run(workspace)
    FakeCalculation()(None, store_root=workspace.store.root_uri, run_id="r1", periods=["2026-10"])
    calculation = workspace.store.read_json("runs/r1/calculation.json")
    calculation["batches"][0]["rows_in"] = 3
    calculation["batches"][0]["rows_rejected"] = 1
    workspace.store.write_json("runs/r1/calculation.json", calculation)
    with pytest.raises(ReconciliationError, match="batch b1: 3 rows read, the manifest says 2"):
        reconcile.handle({"run_id": "r1"}, workspace)
