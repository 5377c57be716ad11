"""λ record_failure: FAILED, only the run's own periods released, a cause an operator can use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambdas import open_run, publish, record_failure, validate_batches
from settlement.bootstrap import Adapters
from settlement.domain.ports import PeriodsHeldError, UnresolvedPublicationError
from settlement.domain.publishing import (
    CommitMismatchError,
    CoreViewClient,
    CoreViewUnavailableError,
    RunFigures,
)
from tests.fixtures.workflow import FakeCalculation, put_batch, sale


def calculated_run(workspace: Adapters) -> dict[str, Any]:
    """Run r1 validated, opened and calculated (two sales); its state context."""
    put_batch(workspace.store, "b1", [sale(1), sale(2)])
    context = validate_batches.handle(
        {"run_id": "r1", "request": {"periods": ["2026-10"]}}, workspace
    )
    open_run.handle(context, workspace)
    FakeCalculation()(None, store_root=workspace.store.root_uri, run_id="r1", periods=["2026-10"])
    return context


def lambda_failure(error: str, message: str) -> dict[str, str]:
    return {"Error": error, "Cause": json.dumps({"errorType": error, "errorMessage": message})}


def test_a_run_that_never_opened_releases_nothing(workspace: Adapters) -> None:
    # GIVEN a running run holding October, and a second execution (its batches copied at
    # validation) refused at the lock
    open_run.handle({"run_id": "holder", "periods": ["2026-10"]}, workspace)
    put_batch(workspace.store, "b1", [sale(1)])
    validate_batches.handle({"run_id": "late", "request": {"periods": ["2026-10"]}}, workspace)
    message = "periods 2026-10 are held by running run holder"
    state = {
        "run_id": "late",
        "periods": ["2026-10"],
        "failure": lambda_failure("PeriodsHeldError", message),
    }
    # WHEN the refused execution records its failure
    result = record_failure.handle({"run_id": "late", "state": state}, workspace)
    # THEN the holder keeps its lock, the cause names the holder, and no batch copy is left
    assert result["error"] == "PeriodsHeldError"
    assert "held by running run holder" in result["cause"]
    assert result["run_opened"] is False
    assert not workspace.store.exists("runs/late/input/batches/b1.csv")
    assert workspace.database.runs.get_run("holder").state == "RUNNING"  # type: ignore[union-attr]
    with pytest.raises(PeriodsHeldError, match="holder"):
        open_run.handle({"run_id": "third", "periods": ["2026-10"]}, workspace)


def test_an_opened_run_is_marked_failed_and_its_periods_released(workspace: Adapters) -> None:
    open_run.handle({"run_id": "r1", "periods": ["2026-10"]}, workspace)
    glue_cause = json.dumps({"Id": "jr_1", "JobName": "calc", "JobRunState": "FAILED",
                             "ErrorMessage": "RuntimeError: out of memory"})  # fmt: skip
    state = {"run_id": "r1", "failure": {"Error": "States.TaskFailed", "Cause": glue_cause}}
    result = record_failure.handle({"run_id": "r1", "state": state}, workspace)
    assert result["error"] == "CalculationJobFailed"
    assert result["cause"].startswith("Glue job calc run jr_1 failed: RuntimeError: out of memory")
    run = workspace.database.runs.get_run("r1")
    assert run is not None
    assert run.state == "FAILED"
    assert "out of memory" in (run.error or "")
    open_run.handle({"run_id": "r2", "periods": ["2026-10"]}, workspace)  # released
    report = workspace.store.read_json("runs/r1/run_report.json")
    assert report["state"] == "FAILED"
    assert "out of memory" in report["error"]


def test_a_commit_whose_answer_was_lost_is_found_and_the_ledger_brought_in_line(
    workspace: Adapters,
) -> None:
    # GIVEN a reconciled run that Core View committed, though the answer never arrived
    context = calculated_run(workspace)
    publish.handle({"action": "announce", "run_id": "r1"}, workspace)
    publish.handle({"action": "part", "run_id": "r1", "part": 0}, workspace)
    publish.handle({"action": "commit", "run_id": "r1"}, workspace)
    state = {
        **context,
        "reconciliation": {"parts": [0]},
        "published": {"all_parts_published": True},
        "failure": lambda_failure("CoreViewUnavailableError", "commit: connection dropped"),
    }
    # WHEN the failure is recorded
    result = record_failure.handle({"run_id": "r1", "state": state}, workspace)
    # THEN Core View was asked, and the ledger holds what it committed: no second publication
    assert {entry.transaction_id for entry in workspace.database.ledger.entries()} == {"T1", "T2"}
    assert "the ledger was updated" in result["cause"]


def committed_with_a_batch_lost(workspace: Adapters, tmp_path: Path) -> tuple[dict[str, Any], str]:
    """Run r1 reconciled and published, Core View losing its batch before the commit, which it
    then took with its own (other) figures: the state context and the mismatch message."""
    context = calculated_run(workspace)
    publish.handle({"action": "announce", "run_id": "r1"}, workspace)
    publish.handle({"action": "part", "run_id": "r1", "part": 0}, workspace)
    (tmp_path / "home" / "coreview" / "r1" / "parts" / "0" / "batch-0.json").unlink()
    with pytest.raises(CommitMismatchError) as mismatch:
        publish.handle({"action": "commit", "run_id": "r1"}, workspace)
    published = {"reconciliation": {"parts": [0]}, "published": {"all_parts_published": True}}
    return {**context, **published}, str(mismatch.value)


def test_a_commit_with_other_figures_than_ours_leaves_the_ledger_alone(
    workspace: Adapters, tmp_path: Path
) -> None:
    # GIVEN a reconciled run whose published batch Core View lost before committing
    context, mismatch = committed_with_a_batch_lost(workspace, tmp_path)
    state = {**context, "failure": lambda_failure("CommitMismatchError", mismatch)}
    # WHEN the failure is recorded
    result = record_failure.handle({"run_id": "r1", "state": state}, workspace)
    # THEN the ledger is not told that Core View holds the deltas: it holds something else
    assert workspace.database.ledger.entries() == []
    assert "committed run r1 with other figures than ours" in result["cause"]
    assert "records ours 2 theirs 0" in result["cause"]


def test_a_run_failed_before_publishing_does_not_ask_core_view(workspace: Adapters) -> None:
    # GIVEN a run that failed in the calculation (nothing reconciled, nothing sent)
    open_run.handle({"run_id": "r1", "periods": ["2026-10"]}, workspace)
    state = {"run_id": "r1", "failure": lambda_failure("CalculationMissingError", "no output")}
    # WHEN its failure is recorded THEN nothing was committed and the ledger is untouched
    result = record_failure.handle({"run_id": "r1", "state": state}, workspace)
    assert workspace.database.ledger.entries() == []
    assert "committed" not in result["cause"]


def test_a_run_failed_mid_publish_reports_what_core_view_holds_uncommitted(
    workspace: Adapters,
) -> None:
    # GIVEN a run that failed while publishing, after Core View acknowledged two batches
    open_run.handle({"run_id": "r1", "periods": ["2026-10"]}, workspace)
    workspace.database.acks.record_ack("r1", 0, 0, 5000, "a" * 64)
    workspace.database.acks.record_ack("r1", 0, 1, 120, "b" * 64)
    state = {"run_id": "r1", "failure": lambda_failure("CoreViewUnavailableError", "503")}
    # WHEN its failure is recorded
    record_failure.handle({"run_id": "r1", "state": state}, workspace)
    # THEN the report says nothing was published (booked) yet names what Core View holds
    report = workspace.store.read_json("runs/r1/run_report.json")
    assert (report["published_to_core_view"], report["records"]) == (False, 0)
    assert report["acknowledged_by_core_view"] == {"batches": 2, "records": 5120}


def test_a_plain_text_cause_is_kept() -> None:
    error, cause = record_failure.describe_failure(
        {"Error": "States.Timeout", "Cause": "took too long"}
    )
    assert (error, cause) == ("Workflow.Timeout", "took too long")


def test_a_database_error_is_reported_in_one_line_without_its_statement() -> None:
    # GIVEN a Lambda failure carrying SQLAlchemy's statement, parameters and link
    message = (
        '(pg8000.exceptions.DatabaseError) relation "matrix_rows" does not exist\n'
        "[SQL: SELECT market, rate\nFROM matrix_rows WHERE dealer = %s]\n"
        "[parameters: ('D-secret',)]\n"
        "(Background on this error at: https://sqlalche.me/e/20/4xp6)"
    )
    # WHEN it is described for the Fail state
    error, cause = record_failure.describe_failure(lambda_failure("ProgrammingError", message))
    # THEN the cause is the first line only: no statement, no parameters, no link
    assert (error, cause) == (
        "ProgrammingError",
        '(pg8000.exceptions.DatabaseError) relation "matrix_rows" does not exist',
    )


def test_a_long_cause_is_cut_to_a_readable_length() -> None:
    _, cause = record_failure.describe_failure({"Error": "Boom", "Cause": "x " * 20000})
    assert len(cause) == record_failure.MAX_CAUSE_CHARS
    assert cause.endswith("…")


def test_a_failure_after_core_view_committed_brings_the_ledger_in_line(
    workspace: Adapters,
) -> None:
    # GIVEN a run whose deltas Core View committed, then finalisation failed
    context = calculated_run(workspace)
    state = {
        **context,
        "commit": {"receipt": {"records": 2}},
        "failure": lambda_failure("OperationalError", "database went away"),
    }
    # WHEN the failure is recorded
    result = record_failure.handle({"run_id": "r1", "state": state}, workspace)
    # THEN the ledger holds what Core View holds, so a new run will not publish it twice
    assert {entry.transaction_id for entry in workspace.database.ledger.entries()} == {"T1", "T2"}
    assert "the ledger was updated" in result["cause"]
    report = workspace.store.read_json("runs/r1/run_report.json")
    assert (report["state"], report["records"], report["published_to_core_view"]) == (
        "FAILED",
        2,
        True,
    )


class CoreViewOutOfReach:
    """A Core View client whose question "did you commit?" never gets an answer."""

    def __init__(self, reachable: CoreViewClient) -> None:
        self.reachable = reachable

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reachable, name)

    def committed_figures(self, run_id: str) -> RunFigures | None:
        raise CoreViewUnavailableError(f"GET /v1/runs/{run_id}: 503 after 8 attempts")


def failed_with_commit_unknown(workspace: Adapters, *, committed: bool) -> dict[str, Any]:
    """Run r1 published every part (and Core View committed it or not), the commit's answer
    was lost, and Core View cannot be asked when the failure is recorded (nor afterwards, until
    the test puts ``workspace.coreview.reachable`` back). Returns record_failure's answer."""
    context = calculated_run(workspace)
    publish.handle({"action": "announce", "run_id": "r1"}, workspace)
    publish.handle({"action": "part", "run_id": "r1", "part": 0}, workspace)
    if committed:
        publish.handle({"action": "commit", "run_id": "r1"}, workspace)
    state = {
        **context,
        "reconciliation": {"parts": [0]},
        "published": {"all_parts_published": True},
        "failure": lambda_failure("CoreViewUnavailableError", "commit: connection dropped"),
    }
    workspace.coreview = CoreViewOutOfReach(workspace.coreview)
    return record_failure.handle({"run_id": "r1", "state": state}, workspace)


def test_a_run_whose_commit_is_unknown_keeps_its_periods_until_core_view_answers(
    workspace: Adapters,
) -> None:
    # GIVEN run r1 committed, its answer lost, and Core View out of reach when asked
    result = failed_with_commit_unknown(workspace, committed=True)
    # THEN it is FAILED, yet keeps October and the ledger lock, and the cause says why
    assert workspace.database.runs.get_run("r1").state == "FAILED"  # type: ignore[union-attr]
    assert "could not ask Core View whether it committed run r1" in result["cause"]
    assert "its periods and the ledger lock stay held" in result["cause"]
    # AND a new run of October is refused while Core View still cannot answer, naming r1
    with pytest.raises(UnresolvedPublicationError, match="2026-10 held by failed run r1"):
        open_run.handle({"run_id": "r2", "periods": ["2026-10"]}, workspace)
    # AND so is a run of another month (it would read a ledger that may lack r1's deltas)
    with pytest.raises(UnresolvedPublicationError, match="the ledger lock held by failed run r1"):
        open_run.handle({"run_id": "r3", "periods": ["2026-11"]}, workspace)
    assert workspace.database.ledger.entries() == []


@pytest.mark.parametrize("committed", [True, False], ids=["committed", "not-committed"])
def test_the_next_run_settles_a_commit_left_unknown_before_it_opens(
    workspace: Adapters, committed: bool
) -> None:
    # GIVEN run r1 failed with its commit unknown, and Core View reachable again
    failed_with_commit_unknown(workspace, committed=committed)
    workspace.coreview = workspace.coreview.reachable  # type: ignore[attr-defined]
    # WHEN a new run of October opens
    opened = open_run.handle({"run_id": "r2", "periods": ["2026-10"]}, workspace)
    # THEN it runs, and the ledger holds r1's deltas exactly when Core View committed them,
    # so r2 publishes them only when Core View never booked them: never twice
    assert opened["state"] == "RUNNING"
    booked = {entry.transaction_id for entry in workspace.database.ledger.entries()}
    assert booked == ({"T1", "T2"} if committed else set())
    # AND r1's report now says what Core View holds of it
    report = workspace.store.read_json("runs/r1/run_report.json")
    assert report["published_to_core_view"] is committed
    assert "settled when run r2 opened" in report["error"]


def test_a_run_core_view_committed_with_other_figures_is_not_settled_by_the_next_run(
    workspace: Adapters, tmp_path: Path
) -> None:
    # GIVEN run r1 whose commit Core View took with other figures (it lost a batch), and whose
    # failure was recorded while Core View could not be asked: it kept its locks
    context, _ = committed_with_a_batch_lost(workspace, tmp_path)
    dropped = lambda_failure("CoreViewUnavailableError", "commit: connection dropped")
    state = {**context, "failure": dropped}
    reachable = workspace.coreview
    workspace.coreview = CoreViewOutOfReach(reachable)
    record_failure.handle({"run_id": "r1", "state": state}, workspace)
    workspace.coreview = reachable
    # WHEN a new run of October opens, Core View answering again
    # THEN it is refused: an incident, not something a re-run may settle; the locks stay
    with pytest.raises(UnresolvedPublicationError, match="with other figures than ours"):
        open_run.handle({"run_id": "r2", "periods": ["2026-10"]}, workspace)
    assert workspace.database.runs.holds_locks("r1")
    assert workspace.database.ledger.entries() == []
