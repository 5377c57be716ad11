"""λ validate_batches: the first state. Expands the request to periods and checks the batches.

Event ``{"run_id": <execution name>, "request": <execution input>}``. Copies the batch files
of the run's periods to ``runs/<run_id>/input/batches/``, validates the copies, writes
``runs/<run_id>/input/batches.json`` (listing the copies) and answers the run context every
later state reads: references and counts only (spec §8).
"""

from __future__ import annotations

import re
from typing import Any

from settlement.adapters.transient import transient_errors_named
from settlement.bootstrap import Adapters
from settlement.domain.batches import (
    InvalidRequestError,
    batches_document,
    collect_batches,
    parse_run_request,
)
from settlement.domain.ports import RunAlreadyFinishedError

_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point: builds the adapters and delegates to :func:`handle`."""
    from settlement.bootstrap import build_adapters

    del context
    return handle(event, build_adapters())


@transient_errors_named
def handle(event: dict[str, Any], adapters: Adapters) -> dict[str, Any]:
    """Validate the request and every batch of its periods; record the run's inputs.

    Raises
    ------
    InvalidRequestError
        The execution input names no usable periods (or the run id is unusable).
    InvalidBatchesError
        Naming every invalid batch of the run's periods; nothing is written.
    RunAlreadyFinishedError
        The execution name is that of a run that already ended (names may be reused on AWS).
    """
    run_id = str(event.get("run_id", ""))
    if not _RUN_ID.match(run_id):
        raise InvalidRequestError(f"run id {run_id!r} must be 1-80 letters, digits, '-' or '_'")
    request = parse_run_request(event.get("request") or {})
    report = f"runs/{run_id}/run_report.json"
    if adapters.store.exists(report):
        # Every run that ended has its report: its inputs are its audit record.
        raise RunAlreadyFinishedError(
            f"run {run_id} already ended ({report}): start a new execution with another name"
        )
    # The run calculates its own copies of the batches: what it reports is what it read.
    copies = f"runs/{run_id}/input/batches"
    adapters.store.delete_prefix(copies)
    batches = collect_batches(adapters.store, request.periods, copy_to=copies)
    key = f"runs/{run_id}/input/batches.json"
    adapters.store.write_json(key, batches_document(run_id, request.periods, batches))
    with_batches = {batch.period for batch in batches}
    return {
        "run_id": run_id,
        "periods": request.periods,
        "periods_arg": ",".join(request.periods),
        "dry_run": request.dry_run,
        "requested_by": request.requested_by,
        "store_root": adapters.store.root_uri,
        "batches": len(batches),
        "batches_uri": adapters.store.uri(key),
        "periods_without_batches": [p for p in request.periods if p not in with_batches],
    }
