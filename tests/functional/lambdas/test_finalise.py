"""λ finalise: ledger updated from the deltas, run report written, run SUCCEEDED."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lambdas import finalise, open_run, reconcile, validate_batches
from settlement.bootstrap import Adapters
from settlement.domain.ports import RunEndedError
from settlement.domain.run_report import timings_from_history
from tests.fixtures.workflow import FakeCalculation, put_batch, sale


def calculated_run(workspace: Adapters, run_id: str, *, dry_run: bool = False) -> None:
    put_batch(workspace.store, "b1", [sale(1), sale(2, price="2000.00")])
    request = {"periods": ["2026-10"], "dry_run": dry_run, "requested_by": "ops"}
    context = validate_batches.handle({"run_id": run_id, "request": request}, workspace)
    open_run.handle(context, workspace)
    FakeCalculation()(None, store_root=workspace.store.root_uri, run_id=run_id, periods=["2026-10"])
    reconcile.handle({"run_id": run_id}, workspace)


def test_finalise_applies_the_deltas_and_releases_the_periods(workspace: Adapters) -> None:
    # GIVEN a published run
    calculated_run(workspace, "r1")
    # WHEN it is finalised (twice, as a retry would)
    finalise.handle({"run_id": "r1", "dry_run": False}, workspace)
    result = finalise.handle({"run_id": "r1", "dry_run": False}, workspace)
    # THEN the ledger holds the new values once, the run SUCCEEDED and its periods are free
    ledger = {
        entry.transaction_id: entry.base_amount for entry in workspace.database.ledger.entries()
    }
    assert ledger == {"T1": Decimal("10.00"), "T2": Decimal("20.00")}
    assert result["state"] == "SUCCEEDED"
    assert workspace.database.runs.get_run("r1").state == "SUCCEEDED"  # type: ignore[union-attr]
    open_run.handle({"run_id": "next", "periods": ["2026-10"]}, workspace)
    report = workspace.store.read_json("runs/r1/run_report.json")
    assert report["state"] == "SUCCEEDED"
    assert report["inputs"][0]["batch_id"] == "b1"
    assert report["published"] == [
        {"currency": "EUR", "base_delta": "30.00", "bonus_delta": "0.00", "delta": "30.00"}
    ]
    assert report["records"] == 2
    assert report["totals"][0]["total"] == "30.00"


def test_a_run_abandoned_while_it_ran_does_not_finalise(workspace: Adapters) -> None:
    # GIVEN a calculated run an operator marked FAILED while its process still ran
    calculated_run(workspace, "r1")
    workspace.database.runs.finish_run("r1", "FAILED", error="abandoned by the operator")
    # WHEN its finalise step runs
    with pytest.raises(RunEndedError, match="may not update the ledger"):
        finalise.handle({"run_id": "r1", "dry_run": False}, workspace)
    # THEN the ledger is untouched and the run stays FAILED, as the operator left it
    assert workspace.database.ledger.entries() == []
    run = workspace.database.runs.get_run("r1")
    assert run is not None
    assert (run.state, run.error) == ("FAILED", "abandoned by the operator")


def test_a_dry_run_leaves_the_ledger_alone(workspace: Adapters) -> None:
    calculated_run(workspace, "dry", dry_run=True)
    result = finalise.handle({"run_id": "dry", "dry_run": True}, workspace)
    assert workspace.database.ledger.entries() == []
    assert result["published_records"] == 0
    report = workspace.store.read_json("runs/dry/run_report.json")
    assert report["computed_delta_records"] == 2
    assert report["published_to_core_view"] is False
    assert report["dry_run"] is True


def test_timings_from_an_execution_history_span_first_entry_to_last_exit() -> None:
    # GIVEN a history where the Map's inner state ran twice
    start = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)

    def at(seconds: int) -> datetime:
        return start + timedelta(seconds=seconds)

    events = [
        {"type": "TaskStateEntered", "timestamp": at(0), "stateEnteredEventDetails": {"name": "A"}},
        {"type": "TaskStateExited", "timestamp": at(3), "stateExitedEventDetails": {"name": "A"}},
        {"type": "MapStateEntered", "timestamp": at(3), "stateEnteredEventDetails": {"name": "M"}},
        {"type": "TaskStateEntered", "timestamp": at(4), "stateEnteredEventDetails": {"name": "P"}},
        {"type": "TaskStateExited", "timestamp": at(5), "stateExitedEventDetails": {"name": "P"}},
        {"type": "TaskStateEntered", "timestamp": at(5), "stateEnteredEventDetails": {"name": "P"}},
        {"type": "TaskStateExited", "timestamp": at(9), "stateExitedEventDetails": {"name": "P"}},
        {"type": "MapStateExited", "timestamp": at(10), "stateExitedEventDetails": {"name": "M"}},
        {
            "type": "TaskStateEntered",
            "timestamp": at(10),
            "stateEnteredEventDetails": {"name": "F"},
        },
    ]
    # WHEN timings are derived
    timings = timings_from_history(events)
    # THEN each state spans its first entry to its last exit; an unfinished one is left out
    assert timings == {"A": 3.0, "M": 7.0, "P": 5.0}


def test_local_executions_keep_the_recorded_timings() -> None:
    arn = "arn:aws:states:local:123456789012:execution:settlement:run-1"
    assert finalise.step_timings({"execution_arn": arn}, {"A": 1.5}) == {"A": 1.5}


def test_the_reversal_of_a_moved_transaction_sets_no_ledger_row(workspace: Adapters) -> None:
    # GIVEN a run whose deltas reverse T1 under September and publish it under October, the
    # reversal lying in a later part than the new record
    moved = {
        "transaction_id": "T1", "dealer_id": "D1", "currency": "EUR", "market": "DE",
        "event_type": "SALE", "original_transaction_id": None,
    }  # fmt: skip
    new = _delta_row(moved, "2026-10", Decimal("10.00"), settled=True, ledger_entry=True)
    reversal = _delta_row(moved, "2026-09", Decimal("0.00"), settled=False, ledger_entry=False)
    for part, row in ((0, new), (1, reversal)):
        table = pa.Table.from_pylist([row], schema=DELTAS_ARROW_SCHEMA)
        path = Path(workspace.store.path(f"runs/r1/deltas/part={part}/part-00000.parquet"))
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
    # WHEN its deltas are applied to the ledger
    finalise.apply_run_deltas(workspace, "r1")
    # THEN the ledger row is the new record's, whatever order the parts are read in
    [entry] = workspace.database.ledger.entries()
    assert (entry.period, entry.base_amount, entry.settled) == ("2026-10", Decimal("10.00"), True)


DELTAS_ARROW_SCHEMA = pa.schema(
    [(name, pa.decimal128(18, 2) if "amount" in name or "delta" in name else pa.string())
     for name in ("transaction_id", "period", "dealer_id", "currency", "base_delta",
                  "bonus_delta", "delta", "base_amount", "bonus_amount", "market", "event_type",
                  "original_transaction_id")]
    + [("settled", pa.bool_()), ("ledger_entry", pa.bool_())]
)  # fmt: skip


def _delta_row(
    identity: Mapping[str, object], period: str, base: Decimal, *, settled: bool, ledger_entry: bool
) -> dict[str, object]:
    zero = Decimal("0.00")
    delta = base if settled else -Decimal("10.00")
    return {**identity, "period": period, "base_delta": delta, "bonus_delta": zero,
            "delta": delta, "base_amount": base, "bonus_amount": zero, "settled": settled,
            "ledger_entry": ledger_entry}  # fmt: skip
