"""λ open_run: records the run and takes its periods (spec §5: one run per period at a time).

Event ``{"run_id", "periods", "dry_run", "requested_by"}``. Idempotent for the same run id, so a
retried or re-driven state is safe. A period held by another running run raises
``PeriodsHeldError`` naming the holder; the state machine then fails the execution at once. A
period held by a failed run whose publication was left unresolved is settled first.
"""

from __future__ import annotations

from typing import Any

from lambdas.finalise import write_run_report
from lambdas.record_failure import resolve_publication
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
    locks, see ``record_failure``) are settled first: Core View is asked again, the ledger
    brought in line, and the locks released.

    Raises
    ------
    PeriodsHeldError
        Another running run holds one of the periods (its id is in the message).
    UnresolvedPublicationError
        A failed run holds them and what it published still cannot be settled.
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
    """Settle and release the locks of a failed holder; re-raise ``held`` for a running one."""
    runs = adapters.database.runs
    holder = runs.get_run(held.holder_run_id)
    if holder is None or holder.state == "RUNNING":
        raise held
    publication = resolve_publication(adapters, holder.run_id, f"run {holder.run_id} failed")
    if not publication.resolved:
        raise UnresolvedPublicationError(holder.run_id, held.periods, publication.cause)
    # The failed run's report now says what Core View holds of it.
    write_run_report(
        adapters,
        holder.run_id,
        "FAILED",
        published=publication.committed,
        timings=holder.step_timings,
        error=f"{holder.error} | settled when run {opening} opened: {publication.cause}",
    )
    runs.release_locks(holder.run_id)
