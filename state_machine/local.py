"""The settlement workflow on one machine (spec §9): the very ASL file AWS runs, wired locally.

The definition's ``${…}`` placeholders (CDK's DefinitionSubstitutions) become local function
ARNs whose handlers run in-process on one shared ``Adapters``; the Glue task runs
``glue_jobs.job.run_calculation`` on one reused local Spark session. Step durations are
recorded for the run as the runner reports them.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdas import finalise, open_run, reconcile, record_failure, validate_batches
from settlement.bootstrap import Adapters
from state_machine.runner import Execution, LocalRunner, StateEvent, TaskResources

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFINITION_PATH = Path(__file__).with_name("settlement.asl.json")
LOCAL_ACCOUNT = "123456789012"
CALCULATION_JOB = "settlement-calculate-commissions"

#: DefinitionSubstitutions name -> local function name (the handler module).
FUNCTIONS = {
    "ValidateBatchesFunctionArn": "validate_batches",
    "OpenRunFunctionArn": "open_run",
    "ExportSnapshotFunctionArn": "export_snapshot",
    "ReconcileFunctionArn": "reconcile",
    "PublishFunctionArn": "publish",
    "FinaliseFunctionArn": "finalise",
    "RecordFailureFunctionArn": "record_failure",
}

Calculation = Callable[..., Mapping[str, Any]]
Handler = Callable[[Any], Any]


def substitutions() -> dict[str, str]:
    """Values for the definition's placeholders: local function ARNs and the job name."""
    values = {
        placeholder: f"arn:aws:lambda:local:{LOCAL_ACCOUNT}:function:{name}"
        for placeholder, name in FUNCTIONS.items()
    }
    values["CalculationJobName"] = CALCULATION_JOB
    return values


def new_run_id(now: datetime | None = None) -> str:
    """An execution name (= run id): sortable by time, unique, valid for Step Functions."""
    moment = now or datetime.now(UTC)
    return f"run-{moment:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def lambda_handlers(adapters: Adapters) -> dict[str, Handler]:
    """Function name -> in-process handler, every one on the same adapters."""
    from lambdas import export_snapshot, publish

    modules: dict[str, Callable[[dict[str, Any], Any], Any]] = {
        "validate_batches": validate_batches.handle,
        "open_run": open_run.handle,
        "export_snapshot": export_snapshot.handle,
        "reconcile": reconcile.handle,
        "publish": publish.handle,
        "finalise": finalise.handle,
        "record_failure": record_failure.handle,
    }
    return {name: _bound(handle, adapters) for name, handle in modules.items()}


def _bound(handle: Callable[[dict[str, Any], Any], Any], adapters: Adapters) -> Handler:
    return lambda event: handle(event, adapters)


def calculation_job(
    spark: Callable[[], SparkSession | None], calculate: Calculation | None = None
) -> Callable[[dict[str, str]], Any]:
    """The Glue job's local stand-in: the job arguments → ``run_calculation`` on ``spark()``."""

    def run(arguments: dict[str, str]) -> Any:
        job = calculate or _glue_job()
        session = spark()
        with contextlib.ExitStack() as interrupts:
            if session is not None:
                from settlement.adapters.spark import interrupt_cancels_jobs

                # Ctrl-C is the operator's interrupt, not a failed job (run_workflow)
                interrupts.enter_context(interrupt_cancels_jobs(session))
            return job(
                session,
                store_root=arguments["--store_root"],
                run_id=arguments["--run_id"],
                periods=[p for p in arguments["--periods"].split(",") if p],
            )

    return run


def _glue_job() -> Calculation:
    from glue_jobs.job import run_calculation

    return run_calculation


class StepClock:
    """Records how long each top-level state took, once the run exists in the database."""

    def __init__(self, adapters: Adapters, run_id: str) -> None:
        self._adapters, self._run_id = adapters, run_id
        self._started: dict[str, float] = {}
        self._pending: dict[str, float] = {}

    def __call__(self, event: StateEvent) -> None:
        if event.scope:
            return
        if event.kind == "entered":
            self._started[event.state] = time.monotonic()
        elif event.kind in ("succeeded", "failed", "caught") and event.state in self._started:
            self._pending[event.state] = time.monotonic() - self._started.pop(event.state)
            self._flush()

    def _flush(self) -> None:
        runs = self._adapters.database.runs
        if runs.get_run(self._run_id) is None:
            return
        for step, seconds in self._pending.items():
            runs.record_step(self._run_id, step, seconds)
        self._pending.clear()


def run_workflow(
    adapters: Adapters,
    request: Mapping[str, Any],
    *,
    on_event: Callable[[StateEvent], None] | None = None,
    spark: SparkSession | Callable[[], SparkSession] | None = None,
    run_id: str | None = None,
    calculate: Calculation | None = None,
    handlers: Mapping[str, Handler] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Execution:
    """Run the settlement state machine locally, to its end.

    Parameters
    ----------
    adapters
        The workspace's data store, database and Core View (shared by every step).
    request
        The execution input of spec §8: ``{"periods": [...]}`` or ``{"from", "to"}``, optional
        ``dry_run`` and ``requested_by``.
    on_event
        Progress callback for every state entered, retried, succeeded or failed.
    spark
        A Spark session to reuse (tests pass theirs), or a factory; default: the local session.
    run_id
        The execution name (default: a new time-based id).
    calculate
        Stand-in for ``run_calculation`` (tests inject failures through it).
    handlers
        Stand-ins for Lambda handlers by function name (``record_failure``…; tests inject
        failures through them); the others run as deployed.
    sleep
        Retry back-off sleep (tests pass a no-op).

    Returns
    -------
    Execution
        Status, output (finalise's answer) or error and cause, and the history.
    """
    name = run_id or new_run_id()
    clock = StepClock(adapters, name)

    def observe(event: StateEvent) -> None:
        clock(event)
        if on_event is not None:
            on_event(event)

    runner = LocalRunner(
        DEFINITION_PATH,
        resources=TaskResources(
            lambdas={**lambda_handlers(adapters), **(handlers or {})},
            glue_jobs={
                CALCULATION_JOB: calculation_job(
                    _spark_factory(spark, calculate, log_file=spark_log(adapters)), calculate
                )
            },
        ),
        substitutions=substitutions(),
        sleep=sleep,
        on_event=observe,
        state_machine_name="settlement",
    )
    with running_here(name):
        try:
            return runner.start(dict(request), name=name)
        except KeyboardInterrupt:
            # No Catch runs for an interrupted process: record the failure as one would, so
            # the run does not hold its periods (and the ledger lock) for ever. Interrupted
            # before it opened, it holds nothing: the interrupt itself is what the caller
            # must see.
            with contextlib.suppress(RunNotRunningError):
                _record_abandoned(adapters, name, "the local run was interrupted (Ctrl-C)")
            raise


class RunNotRunningError(Exception):
    """Only a run still marked RUNNING can be abandoned."""


class RunStillRunningError(Exception):
    """The run's process is alive on this machine: it must be stopped, not abandoned."""


def _lock_path(run_id: str) -> Path:
    return Path(tempfile.gettempdir()) / f"settle-runs-{os.getuid()}" / f"{run_id}.lock"


@contextlib.contextmanager
def running_here(run_id: str) -> Iterator[None]:
    """Hold an OS lock on the run's lock file while this process runs it.

    The kernel releases it whenever the process ends, ``kill -9`` included, so
    :func:`abandon_run` can tell a live run on this machine from one whose process died.
    """
    path = _lock_path(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def live_process(run_id: str) -> int | None:
    """The id of the process on this machine that runs ``run_id``, or None."""
    try:
        handle = _lock_path(run_id).open()
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return int(handle.read().strip() or 0)
    return None


def abandon_run(adapters: Adapters, run_id: str, cause: str) -> dict[str, Any]:
    """Record a RUNNING run whose process ended without its failure handler as FAILED.

    What the failure handler would have done: the run report, the run FAILED, its periods (and
    the ledger lock) released; when it had reconciled, Core View is asked whether it committed
    it (and the ledger brought in line if so; when Core View cannot answer, the run keeps its
    locks until the next run of its periods settles it). Only for a run whose process no longer
    runs: a run whose process is alive on this machine is refused. (One on another machine
    cannot be told apart; if it goes on, its next publishing or ledger step finds it ended.)

    Raises
    ------
    RunStillRunningError
        A process on this machine still runs it.
    RunNotRunningError
        The run is unknown or has already ended.
    """
    pid = live_process(run_id)
    if pid is not None:
        raise RunStillRunningError(
            f"run {run_id} is still running (process {pid} on this machine): interrupt it "
            "(Ctrl-C, or kill -INT), which marks it FAILED and releases its periods"
        )
    return _record_abandoned(adapters, run_id, cause)


def _record_abandoned(adapters: Adapters, run_id: str, cause: str) -> dict[str, Any]:
    run = adapters.database.runs.get_run(run_id)
    if run is None or run.state != "RUNNING":
        found = "unknown" if run is None else run.state
        raise RunNotRunningError(f"run {run_id} is {found}: only a RUNNING run can be abandoned")
    state: dict[str, Any] = {"failure": {"Error": "Abandoned", "Cause": cause}}
    if adapters.store.exists(f"runs/{run_id}/reconciliation.json"):
        # It may have died while committing: let the failure handler ask Core View.
        state["published"] = {"all_parts_published": "unknown"}
    return record_failure.handle({"run_id": run_id, "state": state}, adapters)


def spark_log(adapters: Adapters) -> Path:
    """Where the local Spark session of a run logs: ``<home>/logs/spark.log``."""
    return adapters.settings.home / "logs" / "spark.log"


def _spark_factory(
    spark: SparkSession | Callable[[], SparkSession] | None,
    calculate: Calculation | None,
    *,
    log_file: Path,
) -> Callable[[], SparkSession | None]:
    if spark is None and calculate is not None:
        return lambda: None  # a stand-in job that brings no session needs none
    if spark is None:
        from settlement.adapters.spark import local_spark_session

        return functools.partial(local_spark_session, log_file=log_file)
    if callable(spark):
        factory: Callable[[], SparkSession | None] = spark
        return factory
    session = spark
    return lambda: session
