"""Ports: what the domain needs from the outside world, as Protocols.

Adapters in ``settlement/adapters`` implement them (SQLAlchemy, HTTP, files); tests use in-memory
fakes. Money is always ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

# --------------------------------------------------------------------------- runs and locks
PUBLISHING_LOCK = "ledger"
"""The lock a run that publishes (not a dry run) takes besides its periods.

Runs that publish go one at a time: a run decides duplicates and clawbacks from what every
other period published, so two publishing runs side by side (even of different periods) could
both publish one transaction. Dry runs publish nothing and take only their periods.
"""


class PeriodsHeldError(Exception):
    """A run asked for periods that another running run holds (spec §5), or to publish while
    another run that publishes is running (:data:`PUBLISHING_LOCK`)."""

    def __init__(self, holder_run_id: str, periods: Sequence[str]) -> None:
        self.holder_run_id = holder_run_id
        self.periods = [period for period in periods if period != PUBLISHING_LOCK]
        if self.periods:
            message = f"periods {', '.join(self.periods)} are held by running run {holder_run_id}"
        else:
            message = (
                f"running run {holder_run_id} publishes and updates the ledger, which this run "
                "reads for duplicates and clawbacks; runs that publish go one at a time: start "
                f"this one when {holder_run_id} has ended (a dry run may run alongside)"
            )
        super().__init__(message)


class UnresolvedPublicationError(PeriodsHeldError):
    """The periods are held by a run that failed while what it published to Core View was
    unresolved (committed or not, unknown; or committed with the ledger not updated), and it
    still cannot be resolved: a run now could publish the same deltas a second time."""

    def __init__(self, holder_run_id: str, periods: Sequence[str], why: str) -> None:
        super().__init__(holder_run_id, periods)
        held = ", ".join(self.periods) or "the ledger lock"
        Exception.__init__(
            self,
            f"{held} held by failed run {holder_run_id}, whose publication to Core View is "
            f"unresolved: {why}",
        )


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    periods: list[str]
    state: str  # RUNNING | SUCCEEDED | FAILED
    dry_run: bool
    requested_by: str
    created_at: datetime
    finished_at: datetime | None = None
    error: str | None = None
    step_timings: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


class RunRepository(Protocol):
    def open_run(
        self, run_id: str, periods: Sequence[str], *, dry_run: bool, requested_by: str
    ) -> RunRecord:
        """Record the run and take its periods in one transaction.

        Idempotent for the same run_id (re-drive). Raises ``PeriodsHeldError`` naming the holder
        when another RUNNING run holds any of the periods.
        """

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def list_runs(self, *, limit: int = 50) -> list[RunRecord]: ...

    def record_step(self, run_id: str, step: str, seconds: float) -> None: ...

    def finish_run(
        self,
        run_id: str,
        state: str,
        *,
        error: str | None = None,
        summary: dict[str, Any] | None = None,
        keep_locks: bool = False,
    ) -> bool:
        """End a RUNNING run and release its periods; a run that already ended keeps its
        state. Returns whether this call ended the run.

        ``keep_locks``: the run ends but keeps its periods (and the ledger lock) because what
        it published is unresolved; :meth:`release_locks` frees them once it is.
        """

    def holds_locks(self, run_id: str) -> bool:
        """Whether the run holds any lock (a RUNNING run, or an ended one that kept them)."""

    def release_locks(self, run_id: str, *, note: str) -> None:
        """Release the locks an ended run kept (``finish_run(..., keep_locks=True)``) without
        settling it, appending ``note`` (who and why) to its error: an operator's last resort."""


class RunAlreadyFinishedError(Exception):
    """The run id belongs to a run that already ended: a new run needs a new execution (its
    inputs and report are the audit record of the run that ended, never overwritten)."""


class RunEndedError(Exception):
    """A run that has ended (or was abandoned by an operator) no longer holds its periods, so
    it may not publish or update the ledger: another run may hold the periods by now."""


def require_running(runs: RunRepository, run_id: str, action: str) -> RunRecord:
    """The run's record, if it is still RUNNING, else :class:`RunEndedError` naming ``action``.

    Checked by every step with an effect outside the run's own files (publishing to Core View,
    the ledger), so a run abandoned while its process still ran stops there.
    """
    run = runs.get_run(run_id)
    if run is None:
        raise RunEndedError(f"run {run_id} was never opened: it may not {action}")
    if run.state != "RUNNING":
        why = f" ({run.error})" if run.error else ""
        raise RunEndedError(
            f"run {run_id} is {run.state}{why}: it no longer holds its periods, so it may not "
            f"{action}; start a new run for them"
        )
    return run


# --------------------------------------------------------------------------- published ledger
@dataclass(frozen=True)
class LedgerEntry:
    """What Core View holds for one transaction: the BASE and BONUS last published."""

    transaction_id: str
    period: str
    event_type: str
    original_transaction_id: str | None
    dealer_id: str
    market: str
    currency: str
    base_amount: Decimal
    bonus_amount: Decimal
    settled: bool


class LedgerRepository(Protocol):
    def export_snapshot(self, path: str) -> int:
        """Write the whole published ledger to a Parquet file (the schema of architecture.md)."""

    def apply_deltas(self, run_id: str, entries: Iterable[LedgerEntry]) -> int:
        """Upsert the new absolute values (idempotent: applying twice changes nothing)."""

    def settle_kept_locks(self, run_id: str, entries: Iterable[LedgerEntry], *, note: str) -> bool:
        """Apply a run's entries, release the locks it kept and note it on the run, at once;
        False (nothing changed) when it holds no lock any more."""


# --------------------------------------------------------------------------- Core View publishing
class PublishAckStore(Protocol):
    def acknowledged(self, run_id: str, part: int) -> dict[int, str]:
        """seq -> body sha256 of the batches Core View acknowledged for this part."""

    def record_ack(self, run_id: str, part: int, seq: int, records: int, body_sha256: str) -> None:
        """Remember an acknowledged batch (idempotent)."""
