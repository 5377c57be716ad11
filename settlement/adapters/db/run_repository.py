"""Runs and period locks: the ``RunRepository`` port."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from settlement.adapters.db.tables import period_locks, runs
from settlement.adapters.db.types import utc_now
from settlement.domain.ports import PUBLISHING_LOCK, PeriodsHeldError, RunRecord

RUNNING = "RUNNING"
FINAL_STATES = ("SUCCEEDED", "FAILED")


class SqlRunRepository:
    """Runs and their period locks in the database (spec §5: one run per period at a time)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def open_run(
        self, run_id: str, periods: Sequence[str], *, dry_run: bool, requested_by: str
    ) -> RunRecord:
        """Record the run and lock all its periods in one transaction.

        Idempotent for the same ``run_id``. Raises ``PeriodsHeldError`` naming the holder when
        another run holds any of the periods, or, for a run that publishes, when another run
        that publishes is running (:data:`PUBLISHING_LOCK`, a lock row of its own); a concurrent
        race on a lock row ends the same way (the primary key on ``period_locks.period`` decides).
        """
        wanted = sorted(set(periods))
        locks = wanted if dry_run else [*wanted, PUBLISHING_LOCK]
        try:
            with self._engine.begin() as connection:
                existing = _select_run(connection, run_id)
                if existing is not None:
                    return _record(existing)
                _refuse_if_held(connection, run_id, locks)
                connection.execute(
                    insert(runs),
                    {
                        "run_id": run_id,
                        "periods": wanted,
                        "state": RUNNING,
                        "dry_run": dry_run,
                        "requested_by": requested_by,
                        "created_at": utc_now(),
                        "step_timings": {},
                        "summary": {},
                    },
                )
                connection.execute(
                    insert(period_locks), [{"period": p, "run_id": run_id} for p in locks]
                )
        except IntegrityError:
            with self._engine.connect() as connection:
                existing = _select_run(connection, run_id)
                if existing is not None:
                    return _record(existing)
                _refuse_if_held(connection, run_id, locks)
            raise
        record = self.get_run(run_id)
        assert record is not None
        return record

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._engine.connect() as connection:
            row = _select_run(connection, run_id)
        return None if row is None else _record(row)

    def list_runs(self, *, limit: int = 50) -> list[RunRecord]:
        query = select(runs).order_by(runs.c.created_at.desc(), runs.c.run_id.desc()).limit(limit)
        with self._engine.connect() as connection:
            return [_record(row) for row in connection.execute(query)]

    def record_step(self, run_id: str, step: str, seconds: float) -> None:
        """Store how long a step took (the last measurement of a step wins)."""
        with self._engine.begin() as connection:
            row = connection.execute(
                select(runs.c.step_timings).where(runs.c.run_id == run_id).with_for_update()
            ).first()
            if row is None:
                raise KeyError(f"unknown run {run_id}")
            timings = {**(row.step_timings or {}), step: seconds}
            connection.execute(
                update(runs).where(runs.c.run_id == run_id).values(step_timings=timings)
            )

    def finish_run(
        self,
        run_id: str,
        state: str,
        *,
        error: str | None = None,
        summary: dict[str, Any] | None = None,
        keep_locks: bool = False,
    ) -> bool:
        """End a RUNNING run with ``state`` and release its periods (unless ``keep_locks``).

        A run that already ended keeps its state (a retried step, or a run an operator
        abandoned while its process still ran, must not flip it): returns whether this call
        ended the run.
        """
        if state not in FINAL_STATES:
            raise ValueError(f"final state must be one of {FINAL_STATES}, not {state!r}")
        values: dict[str, Any] = {"state": state, "finished_at": utc_now(), "error": error}
        if summary is not None:
            values["summary"] = summary
        with self._engine.begin() as connection:
            ended = connection.execute(
                update(runs)
                .where(runs.c.run_id == run_id, runs.c.state == RUNNING)
                .values(**values)
            ).rowcount
            if not ended and _select_run(connection, run_id) is None:
                raise KeyError(f"unknown run {run_id}")
            if not keep_locks:
                connection.execute(delete(period_locks).where(period_locks.c.run_id == run_id))
        return bool(ended)

    def holds_locks(self, run_id: str) -> bool:
        query = select(period_locks.c.period).where(period_locks.c.run_id == run_id).limit(1)
        with self._engine.connect() as connection:
            return connection.execute(query).first() is not None

    def release_locks(self, run_id: str, *, note: str) -> None:
        """Release what an ended run kept; a RUNNING run's locks are its own to release."""
        with self._engine.begin() as connection:
            run = _select_run(connection, run_id)
            if run is None or run.state == RUNNING:
                raise ValueError(f"run {run_id} is not an ended run: its locks stay")
            connection.execute(delete(period_locks).where(period_locks.c.run_id == run_id))
            connection.execute(
                update(runs).where(runs.c.run_id == run_id).values(error=(run.error or "") + note)
            )


def _select_run(connection: Connection, run_id: str) -> Row[Any] | None:
    return connection.execute(select(runs).where(runs.c.run_id == run_id)).first()


def _refuse_if_held(connection: Connection, run_id: str, locks: list[str]) -> None:
    held = connection.execute(
        select(period_locks.c.period, period_locks.c.run_id)
        .where(period_locks.c.period.in_(locks))
        .where(period_locks.c.run_id != run_id)
        .order_by(period_locks.c.period)
    ).all()
    # A held period is named first: the overlap is what the operator must resolve, one holder
    # at a time (the message names the periods of the holder it names).
    periods = [row for row in held if row.period != PUBLISHING_LOCK] or held
    if periods:
        holder = periods[0].run_id
        raise PeriodsHeldError(holder, [row.period for row in periods if row.run_id == holder])


def _record(row: Row[Any]) -> RunRecord:
    return RunRecord(
        run_id=row.run_id,
        periods=list(row.periods),
        state=row.state,
        dry_run=bool(row.dry_run),
        requested_by=row.requested_by,
        created_at=row.created_at,
        finished_at=row.finished_at,
        error=row.error,
        step_timings=dict(row.step_timings or {}),
        summary=dict(row.summary or {}),
    )
