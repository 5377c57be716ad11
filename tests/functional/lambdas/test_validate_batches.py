"""λ validate_batches: request → periods, file-level checks, runs/<id>/input/batches.json."""

from __future__ import annotations

import pytest

from lambdas import validate_batches
from settlement.bootstrap import Adapters
from settlement.domain.batches import InvalidBatchesError, InvalidRequestError
from tests.fixtures.workflow import put_batch, sale


def test_valid_batches_are_recorded_and_the_run_context_returned(workspace: Adapters) -> None:
    # GIVEN batches in September and October, and one in August
    put_batch(workspace.store, "oct-b", [sale(1), sale(2)], period="2026-10")
    put_batch(workspace.store, "sep-a", [sale(3, period="2026-09")], period="2026-09")
    put_batch(workspace.store, "aug-a", [sale(4, period="2026-08")], period="2026-08")
    # WHEN a run asks for a date range over September to November
    event = {"run_id": "run-1", "request": {"from": "2026-09-15", "to": "2026-11-02"}}
    result = validate_batches.handle(event, workspace)
    # THEN the periods are expanded oldest first and only their batches are recorded
    assert result["periods"] == ["2026-09", "2026-10", "2026-11"]
    assert result["periods_arg"] == "2026-09,2026-10,2026-11"
    assert result["batches"] == 2
    assert result["periods_without_batches"] == ["2026-11"]
    assert result["dry_run"] is False
    document = workspace.store.read_json("runs/run-1/input/batches.json")
    assert [b["batch_id"] for b in document["batches"]] == ["sep-a", "oct-b"]
    assert document["batches"][1]["row_count"] == 2


def test_an_invalid_batch_fails_naming_it_and_nothing_is_written(workspace: Adapters) -> None:
    put_batch(workspace.store, "good", [sale(1)])
    put_batch(workspace.store, "bad", [sale(2)])
    workspace.store.write_bytes("incoming/transactions/bad.csv", b"tampered")
    with pytest.raises(InvalidBatchesError, match=r"bad: .*sha256"):
        validate_batches.handle({"run_id": "run-2", "request": {"periods": ["2026-10"]}}, workspace)
    assert not workspace.store.exists("runs/run-2/input/batches.json")


@pytest.mark.parametrize(
    "event",
    [
        {"run_id": "run-3", "request": {"periods": ["October"]}},
        {"run_id": "run 3/../x", "request": {"periods": ["2026-10"]}},
    ],
)
def test_a_bad_request_or_run_id_is_refused(workspace: Adapters, event: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError):
        validate_batches.handle(event, workspace)
