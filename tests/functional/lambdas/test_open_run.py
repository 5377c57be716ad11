"""λ open_run: one run per period at a time (spec §5)."""

from __future__ import annotations

import pytest

from lambdas import open_run
from settlement.bootstrap import Adapters
from settlement.domain.ports import PeriodsHeldError, RunAlreadyFinishedError


def event(run_id: str, *periods: str) -> dict[str, object]:
    return {"run_id": run_id, "periods": list(periods), "dry_run": False, "requested_by": "ops"}


def test_a_run_opens_and_reopening_it_is_harmless(workspace: Adapters) -> None:
    assert open_run.handle(event("r1", "2026-10"), workspace)["state"] == "RUNNING"
    # WHEN the same state is retried or redriven
    again = open_run.handle(event("r1", "2026-10"), workspace)
    # THEN it answers the same run
    assert again == {"run_id": "r1", "periods": ["2026-10"], "state": "RUNNING"}


def test_an_overlapping_run_is_refused_naming_the_holder(workspace: Adapters) -> None:
    open_run.handle(event("holder", "2026-09", "2026-10"), workspace)
    with pytest.raises(PeriodsHeldError, match="held by running run holder") as refused:
        open_run.handle(event("late", "2026-10", "2026-11"), workspace)
    assert refused.value.holder_run_id == "holder"
    assert workspace.database.runs.get_run("late") is None


def test_a_finished_run_cannot_be_reopened(workspace: Adapters) -> None:
    open_run.handle(event("done", "2026-10"), workspace)
    workspace.database.runs.finish_run("done", "SUCCEEDED")
    with pytest.raises(RunAlreadyFinishedError, match="already ended SUCCEEDED"):
        open_run.handle(event("done", "2026-10"), workspace)
