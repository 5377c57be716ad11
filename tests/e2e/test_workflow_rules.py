"""The workflow's own rules, end to end through the local runner and the real handlers.

The calculation is the in-process stand-in of tests/fixtures/workflow.py (fast, no Spark): these
tests are about locks, failures, dry runs, validation and re-runs, not about commissions. Each
runs on SQLite (the embedded default) and on PostgreSQL (the database on AWS).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from lambdas import open_run, publish, record_failure
from settlement.bootstrap import Adapters
from settlement.domain.publishing import CoreViewUnavailableError
from state_machine.local import run_workflow
from state_machine.runner import Execution
from tests.fixtures.workflow import FakeCalculation, database_down, put_batch, sale

OCTOBER = {"periods": ["2026-10"], "requested_by": "tests"}


@pytest.fixture
def workspace(workspace_on_each_database: Adapters) -> Adapters:
    return workspace_on_each_database


def no_sleep(_: float) -> None:
    return None


def run(
    workspace: Adapters, request: Mapping[str, object], calculation: FakeCalculation
) -> Execution:
    return run_workflow(workspace, request, calculate=calculation, sleep=no_sleep)


def coreview_runs(workspace: Adapters) -> list[str]:
    sink = Path(workspace.settings.coreview_url.removeprefix("file://"))
    return sorted(path.name for path in sink.iterdir()) if sink.exists() else []


def published_records(workspace: Adapters, run_id: str) -> int:
    report = workspace.store.read_json(f"runs/{run_id}/run_report.json")
    records: int = report["records"]
    return records


def test_a_run_takes_the_operator_path_and_publishes(workspace: Adapters) -> None:
    # GIVEN a submitted batch
    put_batch(workspace.store, "b1", [sale(1), sale(2)])
    # WHEN a run is started
    execution = run(workspace, OCTOBER, FakeCalculation())
    # THEN every step ran in order and Core View holds the run
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.entered_states == [
        "Validate input and batches",
        "Open run and lock periods",
        "Export reference snapshot",
        "Calculate commissions",
        "Reconcile counts and totals",
        "Dry run?",
        "Announce run to Core View",
        "Publish delta parts",
        "Publish one part",
        "Commit to Core View",
        "Finalise run",
        "Settlement complete",
    ]
    assert coreview_runs(workspace) == [execution.name]
    run_record = workspace.database.runs.get_run(execution.name)
    assert run_record is not None
    assert run_record.state == "SUCCEEDED"
    assert {"Calculate commissions", "Finalise run"} <= set(run_record.step_timings)


def test_re_running_unchanged_inputs_publishes_nothing(workspace: Adapters) -> None:
    put_batch(workspace.store, "b1", [sale(1), sale(2)])
    first = run(workspace, OCTOBER, FakeCalculation())
    second = run(workspace, OCTOBER, FakeCalculation())
    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED")
    assert published_records(workspace, first.name) == 2
    assert published_records(workspace, second.name) == 0
    assert second.output["delta_records"] == 0


def test_a_withdrawn_batch_is_reversed_by_the_next_run(workspace: Adapters) -> None:
    # GIVEN a published period whose batch is then withdrawn
    put_batch(workspace.store, "b1", [sale(1)])
    put_batch(workspace.store, "b2", [sale(2)])
    assert run(workspace, OCTOBER, FakeCalculation()).status == "SUCCEEDED"
    workspace.store.delete("incoming/transactions/b2.csv")
    workspace.store.delete("incoming/transactions/b2.manifest.json")
    # WHEN the period is re-run
    again = run(workspace, OCTOBER, FakeCalculation())
    # THEN the withdrawn transaction gets the reversing delta and the ledger marks it unsettled
    report = workspace.store.read_json(f"runs/{again.name}/run_report.json")
    assert report["published"] == [
        {"currency": "EUR", "base_delta": "-10.00", "bonus_delta": "0.00", "delta": "-10.00"}
    ]
    ledger = {entry.transaction_id: entry for entry in workspace.database.ledger.entries()}
    assert not ledger["T2"].settled
    assert ledger["T1"].settled


def test_an_overlapping_run_is_refused_naming_the_holder(workspace: Adapters) -> None:
    # GIVEN a running run holding September and October
    open_run.handle({"run_id": "run-holder", "periods": ["2026-09", "2026-10"]}, workspace)
    put_batch(workspace.store, "b1", [sale(1)])
    calculation = FakeCalculation()
    # WHEN another run asks for October
    execution = run(workspace, OCTOBER, calculation)
    # THEN it fails at once naming the holder, computes nothing, and the holder keeps its lock
    assert execution.status == "FAILED"
    assert execution.error == "PeriodsHeldError"
    assert "run-holder" in (execution.cause or "")
    assert calculation.calls == 0
    assert workspace.database.runs.get_run(execution.name) is None
    holder = workspace.database.runs.get_run("run-holder")
    assert holder is not None
    assert holder.state == "RUNNING"
    again = run(workspace, OCTOBER, FakeCalculation())
    assert again.error == "PeriodsHeldError"


def test_a_failed_calculation_leaves_the_run_failed_and_a_re_run_succeeds(
    workspace: Adapters,
) -> None:
    # GIVEN a calculation that breaks
    put_batch(workspace.store, "b1", [sale(1)])
    broken = FakeCalculation(fail_with=RuntimeError("executor lost"))
    # WHEN the run is started
    failed = run(workspace, OCTOBER, broken)
    # THEN it is FAILED with the job's message, nothing is published, October is free again
    assert failed.status == "FAILED"
    assert failed.entered_states[-2:] == ["Record failure and release periods", "Settlement failed"]
    assert failed.error == "CalculationJobFailed"
    assert "executor lost" in (failed.cause or "")
    record = workspace.database.runs.get_run(failed.name)
    assert record is not None
    assert record.state == "FAILED"
    assert coreview_runs(workspace) == []
    report = workspace.store.read_json(f"runs/{failed.name}/run_report.json")
    assert report["state"] == "FAILED"
    assert "executor lost" in report["error"]
    # AND a re-run succeeds
    rerun = run(workspace, OCTOBER, FakeCalculation())
    assert rerun.status == "SUCCEEDED", rerun.cause
    assert published_records(workspace, rerun.name) == 1


def test_a_dry_run_publishes_nothing(workspace: Adapters) -> None:
    put_batch(workspace.store, "b1", [sale(1), sale(2)])
    execution = run(workspace, {**OCTOBER, "dry_run": True}, FakeCalculation())
    assert execution.status == "SUCCEEDED", execution.cause
    assert "Announce run to Core View" not in execution.entered_states
    assert coreview_runs(workspace) == []
    assert workspace.database.ledger.entries() == []
    report = workspace.store.read_json(f"runs/{execution.name}/run_report.json")
    assert (report["computed_delta_records"], report["records"]) == (2, 0)
    # AND a real run afterwards still publishes everything
    real = run(workspace, OCTOBER, FakeCalculation())
    assert published_records(workspace, real.name) == 2


def test_an_invalid_batch_stops_the_run_before_any_computation(workspace: Adapters) -> None:
    # GIVEN a batch whose row count disagrees with its manifest
    put_batch(workspace.store, "good", [sale(1)])
    put_batch(workspace.store, "short", [sale(2), sale(3)])
    manifest = workspace.store.read_json("incoming/transactions/short.manifest.json")
    workspace.store.write_json(
        "incoming/transactions/short.manifest.json", {**manifest, "row_count": 3}
    )
    calculation = FakeCalculation()
    # WHEN a run is started
    execution = run(workspace, OCTOBER, calculation)
    # THEN it fails at validation naming the batch, before any lock or computation
    assert execution.status == "FAILED"
    assert execution.error == "InvalidBatchesError"
    assert "short:" in (execution.cause or "")
    assert "2 rows, the manifest says 3" in (execution.cause or "")
    assert calculation.calls == 0
    assert workspace.database.runs.get_run(execution.name) is None
    assert execution.entered_states[1] == "Record failure and release periods"


def test_a_malformed_request_fails_with_the_reason(workspace: Adapters) -> None:
    execution = run(workspace, {"from": "2026-10-01"}, FakeCalculation())
    assert execution.error == "InvalidRequestError"
    assert '"to" must be a date' in (execution.cause or "")


def test_redriving_a_failed_run_is_safe(workspace: Adapters) -> None:
    # GIVEN a run that failed in the calculation and recorded its failure
    put_batch(workspace.store, "b1", [sale(1)])
    failed = run(workspace, OCTOBER, FakeCalculation(fail_with=RuntimeError("disk full")))
    # WHEN an operator redrives it from the console
    redriven = failed.redrive()
    # THEN only the Fail state runs again: same error, nothing computed or published, no lock
    assert redriven.status == "FAILED"
    assert (redriven.error, redriven.cause) == (failed.error, failed.cause)
    assert redriven.entered_states == ["Settlement failed"]
    assert coreview_runs(workspace) == []
    assert run(workspace, OCTOBER, FakeCalculation()).status == "SUCCEEDED"


class DatabaseOutage:
    """The failure handler while the database is down: fails until ``recovered``."""

    def __init__(self, workspace: Adapters) -> None:
        self.workspace = workspace
        self.recovered = False

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        if not self.recovered:
            return database_down(event)
        return record_failure.handle(event, self.workspace)


def test_a_failure_that_could_not_be_recorded_is_recorded_by_a_redrive(
    workspace: Adapters,
) -> None:
    # GIVEN a calculation that breaks while the database is down
    put_batch(workspace.store, "b1", [sale(1)])
    outage = DatabaseOutage(workspace)
    failed = run_workflow(
        workspace,
        OCTOBER,
        calculate=FakeCalculation(fail_with=RuntimeError("executor lost")),
        handlers={"record_failure": outage},
        sleep=no_sleep,
    )
    # THEN the execution fails in the failure handler itself, the run still holding October
    assert failed.status == "FAILED"
    assert failed.entered_states[-1] == "Record failure and release periods"
    assert failed.error == "ConnectionError"
    assert json.loads(failed.cause or "")["errorMessage"] == "database unreachable"
    record = workspace.database.runs.get_run(failed.name)
    assert record is not None
    assert record.state == "RUNNING"
    # WHEN the database is back and the operator redrives the execution
    outage.recovered = True
    redriven = failed.redrive()
    # THEN the original failure is recorded and October is released
    assert redriven.entered_states == ["Record failure and release periods", "Settlement failed"]
    assert redriven.error == "CalculationJobFailed"
    assert "executor lost" in (redriven.cause or "")
    record = workspace.database.runs.get_run(failed.name)
    assert record is not None
    assert record.state == "FAILED"
    assert run(workspace, OCTOBER, FakeCalculation()).status == "SUCCEEDED"


class CoreViewOutage:
    """The publish Lambda while Core View is down: its client's own retries spent ``failures``
    times over (CoreViewUnavailableError), then Core View is back."""

    def __init__(self, workspace: Adapters, failures: int) -> None:
        self.workspace = workspace
        self.failures = failures

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        if self.failures:
            self.failures -= 1
            raise CoreViewUnavailableError(f"{event['action']}: 503 after 8 attempts")
        return publish.handle(event, self.workspace)


def test_an_outage_of_core_view_longer_than_the_client_s_retries_is_ridden_out(
    workspace: Adapters,
) -> None:
    # GIVEN Core View down through the first two attempts to announce the run
    put_batch(workspace.store, "b1", [sale(1)])
    outage = CoreViewOutage(workspace, failures=2)
    delays: list[float] = []
    # WHEN a run publishes
    execution = run_workflow(
        workspace,
        OCTOBER,
        calculate=FakeCalculation(),
        handlers={"publish": outage},
        sleep=delays.append,
    )
    # THEN the step is retried after a back-off of up to 30 s, then 60 s, and the run publishes
    assert execution.status == "SUCCEEDED", execution.cause
    retried = [e for e in execution.history if e.kind == "retrying"]
    assert [(e.state, e.error) for e in retried] == [
        ("Announce run to Core View", "CoreViewUnavailableError")
    ] * 2
    assert 0 <= delays[0] <= 30
    assert 0 <= delays[1] <= 60
    assert published_records(workspace, execution.name) == 1


def test_an_execution_reusing_an_ended_run_s_name_leaves_that_run_s_record_alone(
    workspace: Adapters,
) -> None:
    # GIVEN run "october-close" settled one batch, then a second batch arrived
    put_batch(workspace.store, "b1", [sale(1)])
    first = run_workflow(
        workspace, OCTOBER, calculate=FakeCalculation(), run_id="october-close", sleep=no_sleep
    )
    assert first.status == "SUCCEEDED", first.cause
    inputs = workspace.store.read_json("runs/october-close/input/batches.json")
    report = workspace.store.read_json("runs/october-close/run_report.json")
    put_batch(workspace.store, "b2", [sale(2)])
    # WHEN a new execution is started under the same name (AWS allows reusing a name)
    again = run_workflow(
        workspace, OCTOBER, calculate=FakeCalculation(), run_id="october-close", sleep=no_sleep
    )
    # THEN it is refused at validation, before anything is copied or locked
    assert (again.status, again.error) == ("FAILED", "RunAlreadyFinishedError")
    assert "start a new execution with another name" in (again.cause or "")
    # AND the run that ended keeps its inputs, its report and its state
    assert workspace.store.read_json("runs/october-close/input/batches.json") == inputs
    assert workspace.store.read_json("runs/october-close/run_report.json") == report
    assert workspace.database.runs.get_run("october-close").state == "SUCCEEDED"  # type: ignore[union-attr]
    # AND the periods are free for a run under a new name
    assert run(workspace, OCTOBER, FakeCalculation()).status == "SUCCEEDED"


def test_a_database_fail_over_during_a_step_is_retried(workspace: Adapters) -> None:
    # GIVEN a database that drops the connection the first time a run is recorded
    put_batch(workspace.store, "b1", [sale(1)])
    dropped: list[str] = []

    @event.listens_for(workspace.database.engine, "before_cursor_execute")
    def fail_over_once(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO RUNS") and not dropped:
            dropped.append(statement)
            raise OperationalError(statement, None, Exception("server closed the connection"))

    # WHEN a run starts
    execution = run(workspace, OCTOBER, FakeCalculation())
    # THEN the step failed as TransientError, was retried, and the run went through
    assert execution.status == "SUCCEEDED", execution.cause
    retried = [(e.state, e.error) for e in execution.history if e.kind == "retrying"]
    assert retried == [("Open run and lock periods", "TransientError")]
    assert dropped
