"""λ record_failure: every Catch ends here before the execution fails (spec §8).

Event ``{"run_id": <execution name>, "state": <the state data, with "failure": {Error, Cause}>,
"execution_arn"?}``. Marks the run FAILED and releases its periods (see below for when it keeps
them), but only when this run opened (a run refused at validation or at the lock holds nothing,
and another run's locks are never touched). Writes ``run_report.json`` with the failure and
answers the error and a cause an operator can act on, for the Fail state.

When Core View already committed the run (the failure came after the commit, or the commit's
answer was lost: Core View is asked), the ledger is brought in line first, so a later run does
not publish the same deltas again. When that cannot be settled (Core View cannot be asked, the
ledger cannot be written), the run ends FAILED but keeps its periods and the ledger lock, until
the next run of them settles it (``open_run``).
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lambdas.finalise import apply_run_deltas, step_timings, write_run_report
from lambdas.publish import expected_figures
from lambdas.reconcile import read_calculation
from settlement.adapters.transient import transient_errors_named
from settlement.bootstrap import Adapters
from settlement.domain.publishing import describe_differences

COREVIEW_QUESTION_SECONDS = 45.0  # the ledger update may need most of the 10 minutes
MAX_CAUSE_CHARS = 8000  # every invalid batch is named here; Step Functions allows 32 768
_SQLALCHEMY_LINK = re.compile(r"\s*\(Background on this error at: \S+\)")
ERROR_HINTS = {
    "InvalidRequestError": "the run input is malformed",
    "InvalidBatchesError": "invalid batches: fix or resubmit them, then start a new run",
    "PeriodsHeldError": "another run holds the periods or is publishing: wait for it or inspect it",
    "UnresolvedPublicationError": "start the run again once the cause is fixed",
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


@transient_errors_named
def handle(event: dict[str, Any], adapters: Adapters) -> dict[str, Any]:
    """Record the failure; return ``{"run_id", "error", "cause"}`` for the Fail state."""
    run_id = str(event["run_id"])
    state = event.get("state") or {}
    error, cause = describe_failure(state.get("failure") or {})
    runs = adapters.database.runs
    run = runs.get_run(run_id)
    if run is None:
        # Refused before it opened: nothing will read the batch copies validation made, unless
        # they are an ended run's (its report exists; its database row may have been lost).
        if not adapters.store.exists(f"runs/{run_id}/run_report.json"):
            adapters.store.delete_prefix(f"runs/{run_id}/input/batches")
        return {"run_id": run_id, "error": error, "cause": cause, "run_opened": False}
    if run.state != "RUNNING":
        # Ended already (a retry of this handler, a run abandoned meanwhile, or an execution
        # reusing an ended run's name): its report and locks are what that end recorded.
        return {"run_id": run_id, "error": error, "cause": cause, "run_opened": True}
    publication = _publication(adapters, run_id, state, cause, dry_run=run.dry_run)
    message = f"{error}: {publication.cause}"
    write_run_report(
        adapters,
        run_id,
        "FAILED",
        published=publication.committed,
        timings=step_timings(event, run.step_timings),
        error=message,
    )
    runs.finish_run(run_id, "FAILED", error=message, keep_locks=not publication.resolved)
    return {"run_id": run_id, "error": error, "cause": publication.cause, "run_opened": True}


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


@dataclass(frozen=True)
class Publication:
    """What Core View holds of a failed run, as far as could be found out."""

    committed: bool
    """Core View committed the run's deltas (with our figures)."""
    resolved: bool
    """The ledger says what Core View holds. When not (Core View could not be asked, or the
    ledger not updated), the run keeps its periods and the ledger lock: a new run would publish
    the same deltas a second time. The next run of the periods settles it (open_run)."""
    cause: str


KEPT_LOCKS = (
    "its periods and the ledger lock stay held until the next run of them settles this one "
    "(it asks Core View again and updates the ledger first)"
)


@dataclass(frozen=True)
class CoreViewAnswer:
    """Core View's answer to "did you commit this run?", set against our figures."""

    committed: bool | None
    """None: Core View could not be asked (``problem`` says why)."""
    differences: list[str] = field(default_factory=list)
    """When committed with other figures than ours: each difference."""
    problem: str = ""


def ask_core_view(adapters: Adapters, run_id: str) -> CoreViewAnswer:
    """Whether Core View committed ``run_id``, and with our figures; at most 45 s."""
    # Bounded: the client's own retries could outlast the Lambda when Core View is down.
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        answer = pool.submit(adapters.coreview.committed_figures, run_id)
        committed = answer.result(timeout=COREVIEW_QUESTION_SECONDS)
    except Exception as problem:
        return CoreViewAnswer(committed=None, problem=f"{type(problem).__name__}: {problem}")
    finally:
        pool.shutdown(wait=False)
    if committed is None:
        return CoreViewAnswer(committed=False)
    store = adapters.store
    ours = expected_figures(store, run_id, read_calculation(store, run_id))
    return CoreViewAnswer(committed=True, differences=describe_differences(ours, committed))


def mismatch_cause(run_id: str, differences: list[str]) -> str:
    """What to say of a run Core View committed with other figures than ours."""
    return (
        f"Core View committed run {run_id} with other figures than ours "
        f"({'; '.join(differences)}): the ledger was NOT updated; do not re-run these periods, "
        "open an incident with the Core View team"
    )


def _publication(
    adapters: Adapters, run_id: str, state: dict[str, Any], cause: str, *, dry_run: bool
) -> Publication:
    """Whether Core View committed the run with our figures, with the cause to report.

    The commit's answer is in the state when it arrived (and matched: a mismatch fails the
    step). A run that failed after publishing every part (``published``: in or after the
    commit) may still have been committed with the answer lost (the connection dropped after
    Core View stored it): Core View is asked, since a new run would otherwise publish the
    committed deltas a second time. A commit with other figures than ours updates nothing:
    Core View holds something else than the deltas, an incident (the periods are released;
    the cause says not to re-run them).
    """
    if dry_run or ("commit" not in state and "published" not in state):
        return Publication(committed=False, resolved=True, cause=cause)
    if "commit" in state:
        return _bring_ledger_in_line(adapters, run_id, cause)
    answer = ask_core_view(adapters, run_id)
    if answer.committed is None:
        return Publication(
            committed=False,
            resolved=False,
            cause=f"{cause}; could not ask Core View whether it committed run {run_id} "
            f"({answer.problem}): {KEPT_LOCKS}",
        )
    if not answer.committed:
        return Publication(committed=False, resolved=True, cause=cause)
    if answer.differences:
        return Publication(
            committed=False,
            resolved=True,
            cause=f"{cause}; {mismatch_cause(run_id, answer.differences)}",
        )
    return _bring_ledger_in_line(adapters, run_id, cause)


def _bring_ledger_in_line(adapters: Adapters, run_id: str, cause: str) -> Publication:
    try:
        apply_run_deltas(adapters, run_id)
    except Exception as problem:  # the original failure stays the headline
        return Publication(
            committed=True,
            resolved=False,
            cause=f"{cause}; Core View committed this run but the ledger could not be updated "
            f"({type(problem).__name__}: {problem}): {KEPT_LOCKS}",
        )
    return Publication(
        committed=True,
        resolved=True,
        cause=f"{cause}; Core View had committed the run, so the ledger was updated",
    )
