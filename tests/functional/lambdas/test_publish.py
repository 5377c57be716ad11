"""λ publish end to end on a local data store: calculation.json + deltas/ parquet -> Core View."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lambdas.publish import BadPublishEventError, handle
from settlement.adapters.coreview import FileSinkClient
from settlement.adapters.storage import DataStore
from settlement.domain.ports import RunEndedError
from settlement.domain.publishing import (
    CommitMismatchError,
    CoreViewClient,
    DeltaRecord,
    InvalidDeltaRecordError,
    figures_of,
)
from settlement.local_coreview import ServerHandle
from tests.fixtures.coreview import InMemoryAcks, http_client, make_delta_records
from tests.fixtures.runs import InMemoryRuns

MONEY = pa.decimal128(18, 2)
SCHEMA = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("period", pa.string()),
        ("dealer_id", pa.string()),
        ("currency", pa.string()),
    ]
    + [
        (name, MONEY)
        for name in ("base_delta", "bonus_delta", "delta", "base_amount", "bonus_amount")
    ]
)


@dataclass
class FakeDatabase:
    acks: InMemoryAcks = field(default_factory=InMemoryAcks)
    runs: InMemoryRuns = field(default_factory=InMemoryRuns)


@dataclass
class FakeAdapters:
    """What bootstrap.Adapters gives the handler, with in-memory acks and runs."""

    store: DataStore
    coreview: CoreViewClient
    database: FakeDatabase = field(default_factory=FakeDatabase)


def adapters_for(store: DataStore, coreview: CoreViewClient, *run_ids: str) -> FakeAdapters:
    """The handler's adapters with ``run_ids`` RUNNING, as the workflow has them when it
    publishes."""
    adapters = FakeAdapters(store, coreview)
    for run_id in run_ids:
        adapters.database.runs.open_run(run_id, [run_id], dry_run=False, requested_by="test")
    return adapters


def write_run(
    store: DataStore, run_id: str, parts: list[list[DeltaRecord]], *, full_totals: bool = True
) -> None:
    """The calculation job's outputs the publisher reads (architecture.md contracts)."""
    for part, records in enumerate(parts):
        for file_index, start in enumerate(range(0, len(records), 4000)):
            chunk = records[start : start + 4000]
            table = pa.Table.from_pylist([_row(r) for r in chunk], schema=SCHEMA)
            path = store.path(f"runs/{run_id}/deltas/part={part}/part-{file_index:05d}.parquet")
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)
        Path(store.path(f"runs/{run_id}/deltas/part={part}/_SUCCESS")).touch()
    figures = figures_of(r for records in parts for r in records)
    totals = [t.to_payload() for t in figures.totals]
    if not full_totals:
        totals = [{"currency": t["currency"], "delta": t["delta"]} for t in totals]
    store.write_json(
        f"runs/{run_id}/calculation.json",
        {
            "run_id": run_id,
            "periods": ["2026-10"],
            "deltas": {
                "records": figures.records,
                "parts": list(range(len(parts))),
                "totals": totals,
            },
        },
    )


def _row(record: DeltaRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in SCHEMA.names}


def test_announce_parts_commit_publish_the_run_exactly(
    tmp_path: Path, coreview_server: ServerHandle
) -> None:
    """GIVEN a run with 2 parts (9 000 + 7 000 records, several files each) WHEN the state
    machine's three actions run THEN Core View holds exactly those records; a re-driven part
    sends nothing again."""
    store = DataStore(str(tmp_path / "store"))
    records = list(make_delta_records(16_000))
    write_run(store, "run-1", [records[:9000], records[9000:]])
    adapters = adapters_for(store, http_client(coreview_server.url), "run-1")

    announced = handle({"action": "announce", "run_id": "run-1", "ignored": 1}, adapters)
    parts = [handle({"action": "part", "run_id": "run-1", "part": k}, adapters) for k in (0, 1)]
    redriven = handle({"action": "part", "run_id": "run-1", "part": 1}, adapters)
    committed = handle({"action": "commit", "run_id": "run-1"}, adapters)

    assert announced["records"] == 16_000
    assert [(p["records"], p["batches"], p["sent"]) for p in parts] == [(9000, 2, 2), (7000, 2, 2)]
    assert (redriven["sent"], redriven["skipped"]) == (0, 2)
    assert committed["records"] == 16_000
    assert committed["totals"] == [t.to_payload() for t in figures_of(records).totals]
    stored = [r["transaction_id"] for r in coreview_server.store.records("run-1")]
    assert stored == [r.transaction_id for r in records]


def test_totals_without_base_and_bonus_are_refused_naming_the_file(tmp_path: Path) -> None:
    """GIVEN calculation.json totals carrying only `delta` WHEN announcing THEN a clear error
    naming the file and the field; nothing announced."""
    store, sink = DataStore(str(tmp_path / "store")), FileSinkClient(tmp_path / "sink")
    write_run(store, "run-2", [list(make_delta_records(30))], full_totals=False)

    with pytest.raises(
        InvalidDeltaRecordError,
        match=r"runs/run-2/calculation\.json: totals\[0\]: field base_delta must be a decimal",
    ):
        handle({"action": "announce", "run_id": "run-2"}, adapters_for(store, sink, "run-2"))
    assert not (tmp_path / "sink/run-2").exists()


def test_commit_mismatch_fails_the_step(tmp_path: Path) -> None:
    """GIVEN a part never published WHEN committing THEN CommitMismatchError."""
    store, sink = DataStore(str(tmp_path / "store")), FileSinkClient(tmp_path / "sink")
    write_run(store, "run-4", [list(make_delta_records(10))])
    adapters = adapters_for(store, sink, "run-4")
    handle({"action": "announce", "run_id": "run-4"}, adapters)

    with pytest.raises(CommitMismatchError, match="records ours 10 theirs 0"):
        handle({"action": "commit", "run_id": "run-4"}, adapters)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"action": "part", "run_id": "run-5", "part": 7}, "part 7 is not among"),
        ({"action": "part", "run_id": "run-5"}, "needs an integer part"),
        ({"action": "publish", "run_id": "run-5"}, "must be announce, part or commit"),
        ({"action": "announce", "run_id": "nope"}, "runs/nope/calculation.json is missing"),
        ({"action": "announce"}, "needs a run_id"),
    ],
)
def test_bad_events_get_clear_errors(
    tmp_path: Path, event: dict[str, object], message: str
) -> None:
    """GIVEN a malformed event or a run without calculation.json WHEN handled THEN the
    error says what is wrong."""
    store = DataStore(str(tmp_path / "store"))
    write_run(store, "run-5", [list(make_delta_records(3))])

    with pytest.raises(BadPublishEventError, match=message):
        handle(event, adapters_for(store, FileSinkClient(tmp_path / "sink"), "run-5", "nope"))


def test_null_money_in_deltas_names_file_row_and_field(tmp_path: Path) -> None:
    """GIVEN a deltas file whose 2nd row has no bonus_delta WHEN publishing the part
    THEN the error names the file, the row and the field, and nothing is sent."""
    store, sink = DataStore(str(tmp_path / "store")), FileSinkClient(tmp_path / "sink")
    write_run(store, "run-6", [list(make_delta_records(3))])
    key = "runs/run-6/deltas/part=0/part-00000.parquet"
    table = pq.read_table(store.path(key))
    bonus = table.column("bonus_delta").to_pylist()
    bonus[1] = None
    pq.write_table(table.set_column(5, "bonus_delta", pa.array(bonus, MONEY)), store.path(key))
    adapters = adapters_for(store, sink, "run-6")
    handle({"action": "announce", "run_id": "run-6"}, adapters)

    with pytest.raises(
        BadPublishEventError, match=re.escape("part-00000.parquet row 2: field bonus_delta")
    ):
        handle({"action": "part", "run_id": "run-6", "part": 0}, adapters)
    assert not (tmp_path / "sink/run-6/parts").exists()


def test_handler_wires_real_adapters_and_resumes_from_database_acks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN a workspace (SQLite database, file:// sink) and a run of 12 000 records
    WHEN handler() publishes the part twice THEN the acks persisted in the database make the
    second call send nothing, and commit answers our figures."""
    from lambdas.publish import handler
    from settlement.bootstrap import build_adapters

    monkeypatch.setenv("SETTLE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SETTLE_COREVIEW_URL", f"file://{tmp_path / 'sink'}")
    records = list(make_delta_records(12_000))
    write_run(DataStore(str(tmp_path / "home" / "store")), "run-7", [records])
    build_adapters().database.runs.open_run(
        "run-7", ["2026-10"], dry_run=False, requested_by="test"
    )

    handler({"action": "announce", "run_id": "run-7"}, None)
    first = handler({"action": "part", "run_id": "run-7", "part": 0}, None)
    second = handler({"action": "part", "run_id": "run-7", "part": 0}, None)
    committed = handler({"action": "commit", "run_id": "run-7"}, None)

    assert (first["sent"], second["sent"], second["skipped"]) == (3, 0, 3)
    assert committed["records"] == 12_000
    assert committed["totals"] == [t.to_payload() for t in figures_of(records).totals]


@pytest.mark.parametrize("action", ["announce", "part", "commit"])
def test_a_run_that_has_ended_may_not_publish(tmp_path: Path, action: str) -> None:
    """GIVEN a run an operator marked FAILED while its process still ran WHEN its publish
    step runs THEN it is refused, naming the run's state, and nothing reaches Core View."""
    store, sink = DataStore(str(tmp_path / "store")), FileSinkClient(tmp_path / "sink")
    write_run(store, "run-8", [list(make_delta_records(3))])
    adapters = adapters_for(store, sink, "run-8")
    adapters.database.runs.finish_run("run-8", "FAILED", error="abandoned by the operator")

    refusal = re.escape("run run-8 is FAILED (abandoned by the operator)")
    with pytest.raises(RunEndedError, match=refusal):
        handle({"action": action, "run_id": "run-8", "part": 0}, adapters)
    assert not (tmp_path / "sink/run-8").exists()
