"""λ record_failure: every Catch ends here before the execution fails (spec §8).

Event ``{"run_id": <execution name>, "state": <the state data, with "failure": {Error, Cause}>,
"execution_arn"?}``. Marks the run FAILED and releases its periods, but only when this run opened
(a run refused at validation or at the lock holds nothing, and another run's locks are never
touched). Writes ``run_report.json`` with the failure and answers the error and a cause an
operator can act on, for the Fail state.

When Core View already committed the run (the failure came after the commit, or the commit's
answer was lost: Core View is asked), the ledger is brought in line first, so a later run does
not publish the same deltas again.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lambdas.finalise import apply_run_deltas, step_timings, write_run_report
from lambdas.publish import expected_figures
from lambdas.reconcile import read_calculation
from settlement.bootstrap import Adapters
from settlement.domain.publishing import describe_differences

COREVIEW_QUESTION_SECONDS = 45.0  # of the Lambda's 2 minutes
MAX_CAUSE_CHARS = 8000  # every invalid batch is named here; Step Functions allows 32 768
_SQLALCHEMY_LINK = re.compile(r"\s*\(Background on this error at: \S+\)")
ERROR_HINTS = {
    "InvalidRequestError": "the run input is malformed",
    "InvalidBatchesError": "invalid batches: fix or resubmit them, then start a new run",
    "PeriodsHeldError": "another run holds the periods or is publishing: wait for it or inspect it",
    "ReconciliationError": "the figures do not add up: nothing was published",
    "CalculationMissingError": "the calculation did not complete",
    "CalculationJobFailed": "fix the cause, then start a new run",
    "RunEndedError": "the run was ended while it ran: nothing more was published by it",
}


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point: builds the adapters and delegates to :func:`handle`."""
    from settlement.bootstrap import build_adapters

    del context
    return handle(event, build_adapters())


def handle(event: dict[str, Any], adapters: Adapters) -> dict[str, Any]:
    """Record the failure; return ``{"run_id", "error", "cause"}`` for the Fail state."""
    run_id = str(event["run_id"])
    state = event.get("state") or {}
    error, cause = describe_failure(state.get("failure") or {})
    runs = adapters.database.runs
    run = runs.get_run(run_id)
    if run is None:
        # Refused before it opened: nothing will read the batch copies validation made.
        adapters.store.delete_prefix(f"runs/{run_id}/input/batches")
        return {"run_id": run_id, "error": error, "cause": cause, "run_opened": False}
    committed, cause = _committed(adapters, run_id, state, cause, dry_run=run.dry_run)
    if committed:
        cause = _bring_ledger_in_line(adapters, run_id, cause)
    message = f"{error}: {cause}"
    write_run_report(
        adapters,
        run_id,
        "FAILED",
        published=committed,
        timings=step_timings(event, run.step_timings),
        error=message,
    )
    if run.state == "RUNNING":
        runs.finish_run(run_id, "FAILED", error=message)
    return {"run_id": run_id, "error": error, "cause": cause, "run_opened": True}


def describe_failure(failure: dict[str, Any]) -> tuple[str, str]:
    """The error name and a readable cause from a Catch's ``{"Error", "Cause"}``.

    Lambda causes are JSON ``{"errorType", "errorMessage", …}``; Glue's are the job run (with
    ``JobRunState`` and, when Glue says why, ``ErrorMessage``); anything else is kept as text.
    A Fail state may not raise an error named ``States.*``, so those are renamed: a failed job
    run becomes ``CalculationJobFailed``, any other ``States.X`` becomes ``Workflow.X``.
    """
    error = str(failure.get("Error") or "States.Unknown")
    cause = str(failure.get("Cause") or "no cause given")
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        parsed = None
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        cause = str(parsed["errorMessage"])
    elif isinstance(parsed, dict) and "JobRunState" in parsed:
        error = "CalculationJobFailed"
        why = parsed.get("ErrorMessage") or f"job run ended {parsed['JobRunState']}"
        job = parsed.get("JobName", "the calculation job")
        cause = f"Glue job {job} run {parsed.get('Id', '?')} failed: {why}"
    if error.startswith("States."):
        error = "Workflow." + error.removeprefix("States.")
    cause = _one_line(cause)
    hint = ERROR_HINTS.get(error)
    return error, f"{cause} ({hint})" if hint else cause


def _one_line(cause: str) -> str:
    """The cause as one line of at most ``MAX_CAUSE_CHARS``.

    A database error's message carries the statement and its parameters on further lines
    (SQLAlchemy's ``[SQL: …]``/``[parameters: …]``, then a link): noise in the console, and
    parameters may be data. The first line says what went wrong.
    """
    text = " ".join(cause.split("\n[SQL:", 1)[0].split())
    text = _SQLALCHEMY_LINK.sub("", text).strip() or "no cause given"
    return text if len(text) <= MAX_CAUSE_CHARS else text[: MAX_CAUSE_CHARS - 1] + "…"


def _committed(
    adapters: Adapters, run_id: str, state: dict[str, Any], cause: str, *, dry_run: bool
) -> tuple[bool, str]:
    """Whether Core View committed the run with our figures, and the cause to report.

    The commit's answer is in the state when it arrived (and matched: a mismatch fails the
    step). A run that failed after publishing every part (``published``: in or after the
    commit) may still have been committed with the answer lost (the connection dropped after
    Core View stored it): Core View is asked, since a new run would otherwise publish the
    committed deltas a second time. A commit with other figures than ours updates nothing:
    Core View holds something else than the deltas, so neither the ledger nor a re-run can be
    trusted to fix it.
    """
    if dry_run:
        return False, cause
    if "commit" in state:
        return True, cause
    if "published" not in state:
        return False, cause  # the commit goes out only once every part was published
    return _committed_with_our_figures(adapters, run_id, cause)


def _committed_with_our_figures(adapters: Adapters, run_id: str, cause: str) -> tuple[bool, str]:
    # Bounded: the client's own retries could outlast this Lambda when Core View is down.
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        answer = pool.submit(adapters.coreview.committed_figures, run_id)
        committed = answer.result(timeout=COREVIEW_QUESTION_SECONDS)
    except Exception as problem:  # the original failure stays the headline
        return False, (
            f"{cause}; could not ask Core View whether it committed run {run_id} "
            f"({type(problem).__name__}: {problem}): check with the Core View team before any "
            "new run of these periods"
        )
    finally:
        pool.shutdown(wait=False)
    if committed is None:
        return False, cause
    store = adapters.store
    ours = expected_figures(store, run_id, read_calculation(store, run_id))
    differences = describe_differences(ours, committed)
    if differences:
        return False, (
            f"{cause}; Core View committed run {run_id} with other figures than ours "
            f"({'; '.join(differences)}): the ledger was NOT updated; do not re-run these "
            "periods, open an incident with the Core View team"
        )
    return True, cause


def _bring_ledger_in_line(adapters: Adapters, run_id: str, cause: str) -> str:
    try:
        apply_run_deltas(adapters, run_id)
    except Exception as problem:  # the original failure stays the headline
        return (
            f"{cause}; Core View committed this run but the ledger could not be updated "
            f"({problem}): apply runs/{run_id}/deltas before any new run of these periods"
        )
    return f"{cause}; Core View had committed the run, so the ledger was updated"
