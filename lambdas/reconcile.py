"""λ reconcile: the figures must add up before anything is published (spec §2, §6).

Event ``{"run_id", "dry_run"?}``. Reads ``calculation.json``, ``input/batches.json`` and the small
Parquet outputs (only the columns it sums, batch by batch); writes
``runs/<run_id>/reconciliation.json`` and answers the delta parts the publish Map iterates.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.dataset as pads  # type: ignore[import-untyped, unused-ignore]

from settlement.adapters.storage import DataStore
from settlement.adapters.transient import transient_errors_named
from settlement.bootstrap import Adapters
from settlement.domain.reconciliation import (
    CalculationMissingError,
    delta_stats,
    line_totals,
    reconcile,
    summary_deltas,
    summary_totals,
)

LINE_COLUMNS = ["currency", "event_type", "base_amount", "bonus_amount", "amount"]
SUMMARY_COLUMNS = ["currency", "base_total", "bonus_total", "clawback_total", "total"]
DELTA_COLUMNS = ["period", "dealer_id", "currency", "base_delta", "bonus_delta", "delta"]
BOOKED_SUMMARY_COLUMNS = ["period", "dealer_id", "currency", "delta"]


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point: builds the adapters and delegates to :func:`handle`."""
    from settlement.bootstrap import build_adapters

    del context
    return handle(event, build_adapters())


@transient_errors_named
def handle(event: dict[str, Any], adapters: Adapters) -> dict[str, Any]:
    """Reconcile the run's calculation.

    Raises
    ------
    CalculationMissingError
        ``calculation.json`` is absent (the calculation did not complete).
    ReconciliationError
        Listing every mismatch; nothing is published.
    """
    run_id, store = str(event["run_id"]), adapters.store
    calculation = read_calculation(store, run_id)
    inputs = store.read_json(f"runs/{run_id}/input/batches.json")
    result = reconcile(
        run_id=run_id,
        calculation=calculation,
        manifest_rows={batch["batch_id"]: int(batch["row_count"]) for batch in inputs["batches"]},
        lines=line_totals(record_batches(store, f"runs/{run_id}/lines", LINE_COLUMNS)),
        summary=summary_totals(
            record_batches(store, f"runs/{run_id}/dealer_summary", SUMMARY_COLUMNS)
        ),
        deltas=delta_stats(part_batches(store, f"runs/{run_id}/deltas", DELTA_COLUMNS)),
        summary_booked=summary_deltas(
            record_batches(store, f"runs/{run_id}/dealer_summary", BOOKED_SUMMARY_COLUMNS)
        ),
    )
    document = result.as_json()
    store.write_json(f"runs/{run_id}/reconciliation.json", document)
    return {
        "run_id": run_id,
        "parts": result.parts,
        "delta_records": result.delta_records,
        "rows_in": result.rows_in,
        "dry_run": bool(event.get("dry_run", False)),
    }


def read_calculation(store: DataStore, run_id: str) -> dict[str, Any]:
    """``calculation.json``, the job's completion marker."""
    key = f"runs/{run_id}/calculation.json"
    if not store.exists(key):
        raise CalculationMissingError(
            f"{store.uri(key)} is missing: the calculation of run {run_id} did not complete"
        )
    document: dict[str, Any] = store.read_json(key)
    return document


def parquet_dataset(store: DataStore, prefix: str) -> pads.Dataset | None:
    """The Parquet dataset under ``prefix`` (hive partitions), or None when nothing is there."""
    if not any(True for _ in store.list(prefix, recursive=True)):
        return None
    return pads.dataset(
        store.path(prefix),
        filesystem=store.filesystem,
        format="parquet",
        partitioning="hive",
    )


def record_batches(
    store: DataStore, prefix: str, columns: Sequence[str]
) -> Iterator[pa.RecordBatch]:
    """The dataset's record batches, only ``columns`` (empty when there is no file)."""
    dataset = parquet_dataset(store, prefix)
    if dataset is not None:
        # pyarrow reads up to 16 batches of 4 files ahead by default: ~0.9 GB for 10 M lines,
        # too much for a 1 GiB Lambda. One ahead keeps it near 0.1 GB at about the same speed.
        yield from dataset.to_batches(
            columns=list(columns), batch_readahead=1, fragment_readahead=1
        )


def part_batches(
    store: DataStore, prefix: str, columns: Sequence[str]
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """``(part, record batch)`` of ``deltas/part=<k>/``, fragment by fragment."""
    dataset = parquet_dataset(store, prefix)
    if dataset is None:
        return
    for fragment in dataset.get_fragments():
        part = pads.get_partition_keys(fragment.partition_expression).get("part")
        if part is None:
            if fragment.count_rows():
                raise ValueError(f"{fragment.path} holds deltas outside a part=<k> directory")
            continue  # an empty file the job writes when there is nothing to publish
        for batch in fragment.to_batches(columns=list(columns)):
            yield int(part), batch
