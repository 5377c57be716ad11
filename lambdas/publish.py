"""λ publish: announce a run to Core View, publish one part of its deltas, or commit it.

Event ``{"action": "announce" | "part" | "commit", "run_id": …, "part": k}`` (other keys are
ignored). Reads ``runs/<run_id>/calculation.json`` and, for a part, the Parquet files under
``runs/<run_id>/deltas/part=<k>/``, streamed record batch by record batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Protocol

import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from settlement.adapters.storage import DataStore
from settlement.adapters.transient import transient_errors_named
from settlement.domain.ports import PublishAckStore, RunRepository, require_running
from settlement.domain.publishing import (
    CoreViewClient,
    DeltaRecord,
    RunFigures,
    announce_run,
    commit_run,
    publish_part,
)

DELTA_COLUMNS = [
    "transaction_id",
    "period",
    "dealer_id",
    "currency",
    "base_delta",
    "bonus_delta",
    "delta",
    "base_amount",
    "bonus_amount",
]
READ_BATCH_ROWS = 20_000


class _Database(Protocol):
    @property
    def acks(self) -> PublishAckStore: ...

    @property
    def runs(self) -> RunRepository: ...


class PublishAdapters(Protocol):
    """What this handler needs from ``settlement.bootstrap.Adapters``."""

    @property
    def store(self) -> DataStore: ...

    @property
    def coreview(self) -> CoreViewClient: ...

    @property
    def database(self) -> _Database: ...


class BadPublishEventError(ValueError):
    """The event or the run's files do not allow publishing; the message says which."""


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point: builds the adapters and delegates to :func:`handle`."""
    from settlement.bootstrap import build_adapters

    del context
    return handle(event, build_adapters())


@transient_errors_named
def handle(event: dict[str, Any], adapters: PublishAdapters) -> dict[str, Any]:
    """Run one publishing action and return its counts.

    Raises
    ------
    BadPublishEventError
        Unknown action, missing run id or part, or a part the calculation did not produce.
    CommitMismatchError, CoreViewError
        Core View disagreed or refused (the state machine's Catch fails the run).
    RunEndedError
        The run is no longer RUNNING (an operator abandoned it): it may not publish.
    """
    action, run_id = event.get("action"), event.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise BadPublishEventError(f"publish event needs a run_id, got {run_id!r}")
    if action not in ("announce", "part", "commit"):
        raise BadPublishEventError(
            f"publish action must be announce, part or commit, got {action!r}"
        )
    require_running(adapters.database.runs, run_id, "publish to Core View")
    store = adapters.store
    calculation = _read_calculation(store, run_id)
    if action == "announce":
        expected = expected_figures(store, run_id, calculation)
        announce_run(run_id, calculation["periods"], expected, adapters.coreview)
        return {"run_id": run_id, "action": action, **expected.to_payload()}
    if action == "part":
        part = _part_of(event, calculation)
        records = read_part(store, run_id, part)
        result = publish_part(
            run_id, part, records, client=adapters.coreview, acks=adapters.database.acks
        )
        return {"action": action, **result.to_payload()}
    expected = expected_figures(store, run_id, calculation)
    receipt = commit_run(run_id, expected, adapters.coreview)
    return {"run_id": run_id, "action": action, **receipt.figures.to_payload()}


def _read_calculation(store: DataStore, run_id: str) -> dict[str, Any]:
    key = f"runs/{run_id}/calculation.json"
    if not store.exists(key):
        raise BadPublishEventError(f"{store.uri(key)} is missing: the calculation did not finish")
    document = store.read_json(key)
    deltas = document.get("deltas") if isinstance(document, dict) else None
    if not isinstance(deltas, dict) or not {"records", "parts", "totals"} <= deltas.keys():
        raise BadPublishEventError(
            f"{store.uri(key)}: field deltas needs records, parts and totals"
        )
    return dict(document)


def _part_of(event: dict[str, Any], calculation: dict[str, Any]) -> int:
    part = event.get("part")
    if not isinstance(part, int) or isinstance(part, bool):
        raise BadPublishEventError(f"action part needs an integer part, got {part!r}")
    if part not in calculation["deltas"]["parts"]:
        raise BadPublishEventError(f"part {part} is not among {calculation['deltas']['parts']}")
    return part


def read_part(store: DataStore, run_id: str, part: int) -> Iterator[DeltaRecord]:
    """Stream the part's delta records, file by file (sorted keys) and row by row."""
    prefix = f"runs/{run_id}/deltas/part={part}/"
    for key in store.list(prefix, recursive=True):
        name = key.rsplit("/", 1)[-1]
        if name.endswith(".parquet") and not name.startswith((".", "_")):
            yield from _records_of_file(store, key)


def _records_of_file(store: DataStore, key: str) -> Iterator[DeltaRecord]:
    with store.filesystem.open_input_file(store.path(key)) as handle:
        parquet = pq.ParquetFile(handle)
        missing = set(DELTA_COLUMNS) - set(parquet.schema_arrow.names)
        if missing:
            raise BadPublishEventError(f"{store.uri(key)}: missing columns {sorted(missing)}")
        row = 0
        for batch in parquet.iter_batches(batch_size=READ_BATCH_ROWS, columns=DELTA_COLUMNS):
            columns = [batch.column(name).to_pylist() for name in DELTA_COLUMNS]
            for values in zip(*columns, strict=True):
                row += 1
                yield _record(values, where=f"{store.uri(key)} row {row}")


def _record(values: tuple[Any, ...], *, where: str) -> DeltaRecord:
    for name, value in zip(DELTA_COLUMNS, values, strict=True):
        if value is None:
            raise BadPublishEventError(f"{where}: field {name} is empty")
    for name, value in zip(DELTA_COLUMNS[4:], values[4:], strict=True):
        if not isinstance(value, Decimal):
            raise BadPublishEventError(f"{where}: field {name} must be a decimal, got {value!r}")
    return DeltaRecord(*values)


def expected_figures(store: DataStore, run_id: str, calculation: dict[str, Any]) -> RunFigures:
    """The count and totals Core View must hold: ``deltas`` of ``calculation.json``.

    The job writes ``base_delta``, ``bonus_delta`` and ``delta`` per currency; an entry without
    them is refused, naming the file.
    """
    deltas = calculation["deltas"]
    return RunFigures.from_payload(
        {"records": deltas["records"], "totals": deltas["totals"]},
        where=store.uri(f"runs/{run_id}/calculation.json"),
    )
