"""λ finalise: the last state of a run that reconciled (and, unless dry, was published).

Event ``{"run_id", "dry_run", "execution_arn"?}``. On the publish path it applies the run's
deltas to the published ledger (new absolute values, streamed from ``deltas/`` and
``ledger_updates/``); then it writes
``runs/<run_id>/run_report.json`` and marks the run SUCCEEDED, which releases its periods. Every
part is idempotent, so a retry or redrive is safe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from lambdas.reconcile import read_calculation, record_batches
from settlement.adapters.storage import DataStore
from settlement.adapters.transient import transient_errors_named
from settlement.bootstrap import Adapters
from settlement.domain.ports import LedgerEntry, require_running
from settlement.domain.run_report import (
    RunFacts,
    build_run_report,
    run_summary,
    timings_from_history,
)

LEDGER_COLUMNS = [field.name for field in fields(LedgerEntry)]  # in the field order
FINALISE_STEP = "Finalise run"
LOGGER = logging.getLogger(__name__)


class UnknownRunError(Exception):
    """The run was never opened: nothing to finalise."""


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point: builds the adapters and delegates to :func:`handle`."""
    from settlement.bootstrap import build_adapters

    del context
    return handle(event, build_adapters())


@transient_errors_named
def handle(event: dict[str, Any], adapters: Adapters) -> dict[str, Any]:
    """Apply the ledger (publish path), write the run report, mark the run SUCCEEDED."""
    started = time.monotonic()
    run_id, dry_run = str(event["run_id"]), bool(event.get("dry_run", False))
    runs = adapters.database.runs
    run = runs.get_run(run_id)
    if run is None:
        raise UnknownRunError(f"run {run_id} was never opened")
    if run.state != "SUCCEEDED":  # SUCCEEDED: a retry of a finalise that completed
        require_running(runs, run_id, "update the ledger")
    applied = 0 if dry_run else apply_run_deltas(adapters, run_id)
    timings = {**step_timings(event, run.step_timings), FINALISE_STEP: time.monotonic() - started}
    report = write_run_report(adapters, run_id, "SUCCEEDED", published=not dry_run, timings=timings)
    runs.record_step(run_id, FINALISE_STEP, timings[FINALISE_STEP])
    runs.finish_run(run_id, "SUCCEEDED", summary=run_summary(report))
    return {
        "run_id": run_id,
        "state": "SUCCEEDED",
        "dry_run": dry_run,
        "delta_records": report["computed_delta_records"],
        "published_records": report["records"],
        "ledger_entries_applied": applied,
        "run_report_uri": adapters.store.uri(f"runs/{run_id}/run_report.json"),
    }


def apply_run_deltas(adapters: Adapters, run_id: str) -> int:
    """Upsert the run's ledger rows (:func:`ledger_entries`) into the ledger (absolute values;
    idempotent)."""
    entries = ledger_entries(adapters.store, run_id)
    return adapters.database.ledger.apply_deltas(run_id, entries)


def ledger_entries(store: DataStore, run_id: str) -> Iterator[LedgerEntry]:
    """The ledger rows the run sets, streamed batch by batch: those of ``deltas/`` and of
    ``ledger_updates/`` (unpublished rewrites, e.g. a cancellation's new original).

    The reversal of a transaction now booked under another period, dealer or currency is
    published but sets no ledger row (``ledger_entry`` false): the transaction's other record
    does, whichever part either lies in.
    """
    columns_read = [*LEDGER_COLUMNS, "ledger_entry"]
    for output in ("deltas", "ledger_updates"):
        for batch in record_batches(store, f"runs/{run_id}/{output}", columns_read):
            columns = [batch.column(name).to_pylist() for name in columns_read]
            # Positional (LEDGER_COLUMNS is LedgerEntry's field order): no dict per row.
            for *values, ledger_entry in zip(*columns, strict=True):
                if ledger_entry:
                    yield LedgerEntry(*values)


def write_run_report(
    adapters: Adapters,
    run_id: str,
    state: str,
    *,
    published: bool,
    timings: dict[str, float],
    error: str | None = None,
) -> dict[str, Any]:
    """Gather what the run left in the store and write ``run_report.json`` (spec §6)."""
    store = adapters.store
    calculation_key = f"runs/{run_id}/calculation.json"
    batches_key = f"runs/{run_id}/input/batches.json"
    facts = RunFacts(
        run_id=run_id,
        state=state,
        run=adapters.database.runs.get_run(run_id),
        batches=store.read_json(batches_key) if store.exists(batches_key) else None,
        calculation=read_calculation(store, run_id) if store.exists(calculation_key) else None,
        matrix_versions=_matrix_versions(store, run_id),
        target_versions=_target_versions(store, run_id),
        published=published,
        acknowledged=adapters.database.acks.acknowledged_records(run_id),
        error=error,
        timings=timings,
        finished_at=datetime.now(UTC),
    )
    report = build_run_report(facts)
    store.write_json(f"runs/{run_id}/run_report.json", report)
    return report


def _matrix_versions(store: DataStore, run_id: str) -> dict[str, str]:
    table = _reference_table(store, run_id, "matrix", ["market", "matrix_version"])
    if table is None:
        return {}
    pairs = zip(
        table.column("market").to_pylist(), table.column("matrix_version").to_pylist(), strict=True
    )
    return {str(market): str(version) for market, version in pairs}


def _target_versions(store: DataStore, run_id: str) -> list[str]:
    table = _reference_table(store, run_id, "targets", ["target_version"])
    if table is None:
        return []
    return sorted({str(version) for version in table.column("target_version").to_pylist()})


def _reference_table(store: DataStore, run_id: str, name: str, columns: list[str]) -> Any:
    key = f"runs/{run_id}/reference/{name}.parquet"
    if not store.exists(key):
        return None
    with store.filesystem.open_input_file(store.path(key)) as handle:
        return pq.read_table(handle, columns=columns)


def step_timings(event: dict[str, Any], recorded: dict[str, float]) -> dict[str, float]:
    """Seconds per step: from the execution's history on AWS, else as recorded for the run.

    Timings are informative: when the history cannot be read (permissions, throttling) the
    recorded ones are kept rather than failing a run whose money is already settled.
    """
    arn = str(event.get("execution_arn") or "")
    if not arn.startswith("arn:aws:states:") or ":local:" in arn:
        return dict(recorded)
    try:
        return {**recorded, **timings_from_history(_execution_history(arn))}
    except Exception as problem:  # timings must never fail a settled run
        LOGGER.warning("step timings unavailable for %s: %s", arn, problem)
        return dict(recorded)


def _execution_history(arn: str) -> list[dict[str, Any]]:
    import boto3

    client = boto3.client("stepfunctions")
    events: list[dict[str, Any]] = []
    for page in client.get_paginator("get_execution_history").paginate(executionArn=arn):
        events.extend(page["events"])  # type: ignore[arg-type]
    return events
