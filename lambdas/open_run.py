"""λ open_run: records the run and takes its periods (spec §5: one run per period at a time).

Event ``{"run_id", "periods", "dry_run", "requested_by"}``. Idempotent for the same run id, so a
retried or re-driven state is safe. A period held by another running run raises
``PeriodsHeldError`` naming the holder; the state machine then fails the execution at once.
"""

from __future__ import annotations

from typing import Any

from settlement.bootstrap import Adapters


class RunAlreadyFinishedError(Exception):
    """The run id belongs to a run that already ended: a new run needs a new execution."""


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point: builds the adapters and delegates to :func:`handle`."""
    from settlement.bootstrap import build_adapters

    del context
    return handle(event, build_adapters())


def handle(event: dict[str, Any], adapters: Adapters) -> dict[str, Any]:
    """Open the run and lock its periods.

    Raises
    ------
    PeriodsHeldError
        Another running run holds one of the periods (its id is in the message).
    RunAlreadyFinishedError
        The run id was used by a run that already ended.
    """
    record = adapters.database.runs.open_run(
        event["run_id"],
        list(event["periods"]),
        dry_run=bool(event.get("dry_run", False)),
        requested_by=str(event.get("requested_by") or "unknown"),
    )
    if record.state != "RUNNING":
        raise RunAlreadyFinishedError(
            f"run {record.run_id} already ended {record.state}; start a new run for its periods"
        )
    return {"run_id": record.run_id, "periods": record.periods, "state": record.state}
