"""λ open_run: records the run and takes its periods (spec §5: one run per period at a time).

Event ``{"run_id", "periods", "dry_run", "requested_by"}``. Idempotent for the same run id, so a
retried or re-driven state is safe. A period held by another running run raises
``PeriodsHeldError`` naming the holder; the state machine then fails the execution at once. A
period held by a failed run whose publication was left unresolved is settled first.
"""

from __future__ import annotations

from typing import Any

from lambdas.finalise import ledger_entries, write_run_report
from lambdas.record_failure import ask_core_view, mismatch_cause
from settlement.adapters.transient import transient_errors_named
from settlement.bootstrap import Adapters
from settlement.domain.ports import (
    PeriodsHeldError,
    RunAlreadyFinishedError,
    UnresolvedPublicationError,
)


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point: builds the adapters and delegates to :func:`handle`."""
    from settlement.bootstrap import build_adapters

    del context
    return handle(event, build_adapters())


@transient_errors_named
def handle(event: dict[str, Any], adapters: Adapters) -> dict[str, Any]:
    """Open the run and lock its periods.

    Periods still held by a run that failed with its publication unresolved (it kept its
    locks, see ``record_failure``) are settled first: Core View is asked again, and in one
    transaction the ledger is brought in line and the locks released.

    Raises
    ------
    PeriodsHeldError
        Another running run holds one of the periods (its id is in the message).
    UnresolvedPublicationError
        A failed run holds them and what it published still cannot be settled (Core View
        cannot answer, or committed other figures than ours: an incident).
    RunAlreadyFinishedError
        The run id was used by a run that already ended.
    """
    run_id = str(event["run_id"])
    settled: set[str] = set()
    while True:
        try:
            record = adapters.database.runs.open_run(
                run_id,
                list(event["periods"]),
                dry_run=bool(event.get("dry_run", False)),
                requested_by=str(event.get("requested_by") or "unknown"),
            )
            break
        except PeriodsHeldError as held:
            if held.holder_run_id in settled:
                raise
            _settle_failed_holder(adapters, held, opening=run_id)
            settled.add(held.holder_run_id)
    if record.state != "RUNNING":
        raise RunAlreadyFinishedError(
            f"run {record.run_id} already ended {record.state}; start a new run for its periods"
        )
    return {"run_id": record.run_id, "periods": record.periods, "state": record.state}


def _settle_failed_holder(adapters: Adapters, held: PeriodsHeldError, *, opening: str) -> None:
    """Settle a failed holder that kept its locks, releasing them; re-raise ``held`` when the
    holder is running, and refuse while its publication cannot be settled."""
    holder = adapters.database.runs.get_run(held.holder_run_id)
    if holder is None or holder.state == "RUNNING":
        raise held
    answer = ask_core_view(adapters, holder.run_id)
    if answer.committed is None:
        why = f"Core View still cannot say whether it committed it ({answer.problem})"
        raise UnresolvedPublicationError(holder.run_id, held.periods, why)
    if answer.differences:
        why = mismatch_cause(holder.run_id, answer.differences)
        raise UnresolvedPublicationError(holder.run_id, held.periods, why)
    outcome = (
        "Core View had committed it, so the ledger was updated"
        if answer.committed
        else "Core View had not committed it"
    )
    note = f" | settled when run {opening} opened: {outcome}"
    entries = ledger_entries(adapters.store, holder.run_id) if answer.committed else iter(())
    if adapters.database.ledger.settle_kept_locks(holder.run_id, entries, note=note):
        # Only the run that settled it says so in its report.
        write_run_report(
            adapters,
            holder.run_id,
            "FAILED",
            published=bool(answer.committed),
            timings=holder.step_timings,
            error=f"{holder.error}{note}",
        )
