"""The database repositories, each test run against SQLite and PostgreSQL (COPY path there)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from settlement.adapters.db import Database, ledger_repository
from settlement.adapters.db.tables import matrix_rows, target_rows
from settlement.domain.ports import LedgerEntry, PeriodsHeldError
from settlement.domain.reference.models import MatrixRow, NewVersion, TargetRow

NOW = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def header(kind: str, sha: str, name: str = "file.csv") -> NewVersion:
    return NewVersion(kind, name, sha, "finance@example.com", NOW)  # type: ignore[arg-type]


def matrix_row(market: str = "DE", rate: str = "0.03", **changes: object) -> MatrixRow:
    values: dict[str, object] = {
        "market": market,
        "series": "*",
        "channel": "*",
        "component": "BASE",
        "min_attainment": Decimal("0"),
        "rate": Decimal(rate),
        "amount_per_unit": Decimal("100.00"),
        "currency": "EUR",
        "valid_from": date(2026, 1, 1),
        "valid_to": None,
    }
    values.update(changes)
    return MatrixRow(**values)  # type: ignore[arg-type]


def ledger_entry(
    transaction_id: str, base: str, bonus: str = "0.00", **changes: object
) -> LedgerEntry:
    values: dict[str, object] = {
        "transaction_id": transaction_id,
        "period": "2026-10",
        "event_type": "SALE",
        "original_transaction_id": None,
        "dealer_id": "D1",
        "market": "DE",
        "currency": "EUR",
        "base_amount": Decimal(base),
        "bonus_amount": Decimal(bonus),
        "settled": True,
    }
    values.update(changes)
    return LedgerEntry(**values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- migrations
def test_migrate_again_is_a_fast_no_op(database: Database) -> None:
    """GIVEN a migrated database WHEN migrate runs again THEN nothing changes, quickly."""
    database.reference.add_target_version(
        header("targets", "a" * 64), [TargetRow("DE", "D1", "2026-10", 4)]
    )
    started = time.perf_counter()
    database.migrate()
    assert time.perf_counter() - started < 1.0
    assert len(database.reference.list_versions("targets")) == 1


# --------------------------------------------------------------------------- reference
def test_matrix_upload_becomes_active_only_for_its_markets(database: Database) -> None:
    """GIVEN a DE+FR version then a DE-only version
    WHEN the active matrix is read THEN DE comes from the second, FR still from the first."""
    first, created = database.reference.add_matrix_version(
        header("matrix", "1" * 64), [matrix_row("DE", "0.03"), matrix_row("FR", "0.02")]
    )
    second, _ = database.reference.add_matrix_version(
        header("matrix", "2" * 64), [matrix_row("DE", "0.035")]
    )
    active = database.reference.active_matrix()
    assert created
    assert first.markets == ("DE", "FR")
    assert [(version, row.market, row.rate) for version, row in active] == [
        (second.version_id, "DE", Decimal("0.035")),
        (first.version_id, "FR", Decimal("0.02")),
    ]


def test_same_sha256_twice_returns_the_existing_version(database: Database) -> None:
    """GIVEN a stored version WHEN the same sha256 is added again THEN no second version."""
    first, _ = database.reference.add_matrix_version(header("matrix", "3" * 64), [matrix_row()])
    again, created = database.reference.add_matrix_version(
        header("matrix", "3" * 64), [matrix_row()]
    )
    assert not created
    assert again == first
    with database.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(matrix_rows)).scalar() == 1


def test_latest_target_upload_wins_per_dealer_and_period(database: Database) -> None:
    """GIVEN two target uploads overlapping on (D1, 2026-10)
    WHEN targets for 2026-10 are read THEN D1 has the later value, D2 the earlier,
    and other periods are left out."""
    first, _ = database.reference.add_target_version(
        header("targets", "4" * 64),
        [
            TargetRow("DE", "D1", "2026-10", 4),
            TargetRow("DE", "D2", "2026-10", 7),
            TargetRow("DE", "D1", "2026-11", 9),
        ],
    )
    second, _ = database.reference.add_target_version(
        header("targets", "5" * 64), [TargetRow("DE", "D1", "2026-10", 5)]
    )
    targets = database.reference.latest_targets(["2026-10"])
    assert [(v, t.dealer_id, t.target_units) for v, t in targets] == [
        (second.version_id, "D1", 5),
        (first.version_id, "D2", 7),
    ]


def test_exact_decimals_round_trip(database: Database) -> None:
    """GIVEN extreme but valid decimals WHEN stored and read THEN they come back exactly."""
    row = matrix_row(
        rate="0.000001",
        component="BONUS",
        min_attainment=Decimal("999999.999999"),
        amount_per_unit=Decimal("9999999999999999.99"),
    )
    database.reference.add_matrix_version(header("matrix", "6" * 64), [row])
    [(_, stored)] = database.reference.active_matrix()
    assert stored == row


def test_sql_and_markup_looking_values_are_plain_data(database: Database) -> None:
    """GIVEN values that look like SQL and HTML WHEN stored THEN they come back verbatim
    and the tables are intact."""
    sneaky_market = "DE'); DROP TABLE matrix_rows; --"
    sneaky_series = '<script>alert("x")</script>,"\\N'
    database.reference.add_matrix_version(
        header("matrix", "7" * 64, name="<b>m</b>.csv"),
        [matrix_row(sneaky_market, series=sneaky_series)],
    )
    database.reference.add_target_version(
        header("targets", "8" * 64), [TargetRow("DE", "1 OR 1=1", "2026-10", 1)]
    )
    [(_, stored)] = database.reference.active_matrix()
    [(_, target)] = database.reference.latest_targets(["2026-10"])
    assert (stored.market, stored.series) == (sneaky_market, sneaky_series)
    assert target.dealer_id == "1 OR 1=1"
    assert database.reference.list_versions("matrix")[0].file_name == "<b>m</b>.csv"


def test_bulk_target_load_is_complete(database: Database) -> None:
    """GIVEN 5 000 target rows WHEN loaded in one version THEN all are stored."""
    rows = [TargetRow("DE", f"D{n:05d}", "2026-10", n) for n in range(5000)]
    database.reference.add_target_version(header("targets", "9" * 64), rows)
    with database.engine.connect() as connection:
        total = connection.execute(select(func.sum(target_rows.c.target_units))).scalar()
    assert int(total or 0) == sum(range(5000))


# --------------------------------------------------------------------------- runs and locks
def test_open_run_is_idempotent_and_refuses_a_held_period(database: Database) -> None:
    """GIVEN run r1 holding 2026-10
    WHEN r1 opens again THEN the same record; WHEN r2 asks for 2026-10 and 2026-11
    THEN it is refused naming r1, and takes nothing."""
    first = database.runs.open_run("r1", ["2026-10"], dry_run=False, requested_by="ops")
    again = database.runs.open_run("r1", ["2026-10"], dry_run=False, requested_by="ops")
    with pytest.raises(PeriodsHeldError) as refused:
        database.runs.open_run("r2", ["2026-11", "2026-10"], dry_run=True, requested_by="ops")
    assert again == first
    assert first.state == "RUNNING"
    assert refused.value.holder_run_id == "r1"
    assert refused.value.periods == ["2026-10"]
    assert database.runs.get_run("r2") is None
    database.runs.open_run("r3", ["2026-11"], dry_run=True, requested_by="ops")


def test_a_refusal_names_the_periods_of_the_holder_it_names(database: Database) -> None:
    """GIVEN dry runs r1 holding 2026-09 and r2 holding 2026-10 WHEN r3 asks for both
    THEN the refusal names r1 with 2026-09 only (not r2's period as r1's)."""
    database.runs.open_run("r1", ["2026-09"], dry_run=True, requested_by="ops")
    database.runs.open_run("r2", ["2026-10"], dry_run=True, requested_by="ops")
    with pytest.raises(PeriodsHeldError) as refused:
        database.runs.open_run("r3", ["2026-09", "2026-10"], dry_run=True, requested_by="ops")
    assert str(refused.value) == "periods 2026-09 are held by running run r1"


def test_runs_that_publish_go_one_at_a_time_dry_runs_alongside(database: Database) -> None:
    """GIVEN r1 running to publish 2026-10
    WHEN r2 asks to publish 2026-11 THEN it is refused naming r1 (both would read and write
    the ledger); WHEN r3 asks for a dry run of 2026-11 THEN it opens; WHEN r1 ends THEN r2 opens."""
    database.runs.open_run("r1", ["2026-10"], dry_run=False, requested_by="ops")
    with pytest.raises(PeriodsHeldError) as refused:
        database.runs.open_run("r2", ["2026-11"], dry_run=False, requested_by="ops")
    assert (refused.value.holder_run_id, refused.value.periods) == ("r1", [])
    assert "publishes and updates the ledger" in str(refused.value)
    assert database.runs.get_run("r2") is None
    database.runs.open_run("r3", ["2026-11"], dry_run=True, requested_by="ops")
    database.runs.finish_run("r1", "SUCCEEDED", error=None, summary={})
    database.runs.finish_run("r3", "SUCCEEDED", error=None, summary={})
    assert (
        database.runs.open_run("r2", ["2026-11"], dry_run=False, requested_by="ops").run_id == "r2"
    )


def test_a_run_that_ended_keeps_its_state(database: Database) -> None:
    """GIVEN r1 marked FAILED (abandoned) WHEN its own steps later try to end it SUCCEEDED
    THEN nothing changes and the call says so; a first end says it ended the run."""
    database.runs.open_run("r1", ["2026-10"], dry_run=False, requested_by="ops")
    assert database.runs.finish_run("r1", "FAILED", error="abandoned") is True

    assert database.runs.finish_run("r1", "SUCCEEDED", summary={"rows": 3}) is False

    run = database.runs.get_run("r1")
    assert run is not None
    assert (run.state, run.error, run.summary) == ("FAILED", "abandoned", {})


def test_finish_run_releases_the_periods(database: Database) -> None:
    """GIVEN a running r1 WHEN it finishes (twice) THEN its periods are free for r2."""
    database.runs.open_run("r1", ["2026-09", "2026-10"], dry_run=False, requested_by="ops")
    database.runs.record_step("r1", "Export reference snapshot", 1.5)
    database.runs.finish_run("r1", "FAILED", error="boom", summary={"rows": 3})
    database.runs.finish_run("r1", "FAILED", error="boom", summary={"rows": 3})
    second = database.runs.open_run("r2", ["2026-10"], dry_run=False, requested_by="ops")
    finished = database.runs.get_run("r1")
    assert finished is not None
    assert (finished.state, finished.error, finished.summary) == ("FAILED", "boom", {"rows": 3})
    assert finished.step_timings == {"Export reference snapshot": 1.5}
    assert finished.finished_at is not None
    assert finished.finished_at.tzinfo is not None
    assert [run.run_id for run in database.runs.list_runs()] == [second.run_id, "r1"]


def test_a_run_that_ends_keeping_its_locks_holds_them_until_released(database: Database) -> None:
    """GIVEN r1 ended FAILED keeping its locks (its publication unresolved) WHEN r2 asks for
    October THEN it is refused naming r1; a running run's locks cannot be released from
    outside; once r1's are released, r2 opens."""
    database.runs.open_run("r1", ["2026-10"], dry_run=False, requested_by="ops")
    with pytest.raises(ValueError, match="not an ended run"):
        database.runs.release_locks("r1", note=" | released by hand")
    database.runs.finish_run("r1", "FAILED", error="commit unknown", keep_locks=True)
    with pytest.raises(PeriodsHeldError) as refused:
        database.runs.open_run("r2", ["2026-10"], dry_run=False, requested_by="ops")
    assert refused.value.holder_run_id == "r1"
    database.runs.release_locks("r1", note=" | released by hand")
    assert database.runs.open_run("r2", ["2026-10"], dry_run=False, requested_by="ops").state == (
        "RUNNING"
    )


def test_a_run_that_kept_its_locks_is_settled_once_and_never_over_newer_values(
    database: Database,
) -> None:
    """GIVEN r1 ended FAILED keeping its locks, its publication of T1 (10.00) unresolved
    WHEN run A settles it, a newer run publishes T1 = 110.00, and run B's settlement of r1,
    started at the same time as A's, lands late
    THEN A's settlement applied r1's values and released its locks in one go, and B's found
    nothing to settle: the ledger keeps 110.00 and r1's error records one settlement."""
    database.runs.open_run("r1", ["2026-10"], dry_run=False, requested_by="ops")
    database.runs.finish_run("r1", "FAILED", error="commit unknown", keep_locks=True)
    assert database.ledger.settle_kept_locks("r1", [ledger_entry("T1", "10.00")], note=" | by A")
    assert not database.runs.holds_locks("r1")
    database.ledger.apply_deltas("r3", [ledger_entry("T1", "110.00")])
    late = database.ledger.settle_kept_locks("r1", [ledger_entry("T1", "10.00")], note=" | by B")
    assert late is False
    assert [e.base_amount for e in database.ledger.entries()] == [Decimal("110.00")]
    assert database.runs.get_run("r1").error == "commit unknown | by A"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- ledger
def test_apply_deltas_upserts_and_is_idempotent(database: Database, tmp_path: Path) -> None:
    """GIVEN two published transactions WHEN the same values are applied again THEN nothing
    changes; WHEN one is reversed THEN only it changes, and the snapshot shows the new values."""
    entries = [ledger_entry("T1", "2000.00", "500.00"), ledger_entry("T2", "1300.02", "400.01")]
    assert database.ledger.apply_deltas("r1", entries) == 2
    assert database.ledger.apply_deltas("r1", entries) == 0
    reversed_t2 = ledger_entry("T2", "0.00", "0.00", settled=False)
    assert database.ledger.apply_deltas("r2", [entries[0], reversed_t2]) == 1
    path = tmp_path / "ledger.parquet"
    assert database.ledger.export_snapshot(str(path)) == 2
    rows = pq.read_table(path).to_pylist()
    assert [(r["transaction_id"], r["base_amount"], r["settled"]) for r in rows] == [
        ("T1", Decimal("2000.00"), True),
        ("T2", Decimal("0.00"), False),
    ]


def test_apply_deltas_streams_in_chunks_inside_one_transaction(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN chunks of two entries WHEN five are applied, T1 again in the last chunk THEN all
    land and the later T1 wins; WHEN a bad amount sits in the last chunk THEN nothing lands."""
    monkeypatch.setattr(ledger_repository, "APPLY_CHUNK_ROWS", 2)
    entries = [ledger_entry(f"T{n}", f"{n}.00", "0.00") for n in range(1, 5)]
    assert database.ledger.apply_deltas("r1", [*entries, ledger_entry("T1", "9.00", "0.00")]) == 5
    assert {e.transaction_id: e.base_amount for e in database.ledger.entries()} == {
        "T1": Decimal("9.00"), "T2": Decimal("2.00"), "T3": Decimal("3.00"), "T4": Decimal("4.00"),
    }  # fmt: skip
    bad = ledger_entry("T9", "1.001", "0.00")
    with pytest.raises(ValueError, match="more than 2 decimals"):
        database.ledger.apply_deltas("r2", [ledger_entry("T5", "5.00", "0.00"), *entries, bad])
    assert "T5" not in {entry.transaction_id for entry in database.ledger.entries()}


def test_empty_ledger_snapshot_has_the_schema(database: Database, tmp_path: Path) -> None:
    """GIVEN nothing published WHEN the ledger is exported THEN an empty file with the schema."""
    path = tmp_path / "nested" / "ledger.parquet"
    assert database.ledger.export_snapshot(str(path)) == 0
    schema = pq.read_schema(path)
    assert schema.names == [
        "transaction_id", "period", "event_type", "original_transaction_id", "dealer_id",
        "market", "currency", "base_amount", "bonus_amount", "settled",
    ]  # fmt: skip
    assert str(schema.field("base_amount").type) == "decimal128(18, 2)"


def test_ledger_snapshot_streams_in_row_groups_and_keeps_every_value(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN a ledger with awkward values (quotes, commas, a newline, an empty original id
    next to a null one, negative and zero amounts, a reversed row) and export chunks of a few
    rows WHEN it is exported THEN the file holds exactly the ledger, in several row groups
    (the ledger is never held whole in memory)."""
    monkeypatch.setattr(ledger_repository, "EXPORT_CHUNK_ROWS", 2)
    monkeypatch.setattr(ledger_repository, "EXPORT_CHUNK_BYTES", 100)
    entries = [
        ledger_entry('T"1,x', "1.00", "0.50"),
        ledger_entry("T2\nline", "-1800.00", "-450.00", event_type="CANCELLATION",
                     original_transaction_id="S,4"),
        ledger_entry("T3", "0.00", "0.00", settled=False, dealer_id="Dé"),
        ledger_entry("T4", "9999999999999999.99", "0.01", original_transaction_id=""),
        *(ledger_entry(f"T{n}", f"{n}.{n:02d}") for n in range(5, 12)),
    ]  # fmt: skip
    database.ledger.apply_deltas("r1", entries)
    path = tmp_path / "ledger.parquet"
    written = database.ledger.export_snapshot(str(path))
    assert written == len(entries)
    assert pq.ParquetFile(path).num_row_groups > 1
    exported = [LedgerEntry(**row) for row in pq.read_table(path).to_pylist()]
    by_id = {entry.transaction_id: entry for entry in entries}
    assert sorted(e.transaction_id for e in exported) == sorted(by_id)
    assert all(entry == by_id[entry.transaction_id] for entry in exported)


def test_a_ledger_export_that_fails_midway_leaves_no_file(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN a ledger exported in chunks of two rows, and a writer that fails on the second
    chunk WHEN it is exported THEN the error surfaces and no file is left (a complete-looking
    Parquet file with the first chunk only would pass for the whole ledger)."""
    monkeypatch.setattr(ledger_repository, "EXPORT_CHUNK_ROWS", 2)
    monkeypatch.setattr(ledger_repository, "EXPORT_CHUNK_BYTES", 60)
    database.ledger.apply_deltas("r1", [ledger_entry(f"T{n}", f"{n}.00") for n in range(6)])
    real_write = pq.ParquetWriter.write_table
    calls: list[int] = []

    def fail_on_second_chunk(self: pq.ParquetWriter, table: object, *args: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        real_write(self, table, *args)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", fail_on_second_chunk)
    path = tmp_path / "ledger.parquet"
    with pytest.raises(OSError, match="disk full"):
        database.ledger.export_snapshot(str(path))
    assert not path.exists()


def test_ledger_keeps_cancellation_links_and_exact_amounts(database: Database) -> None:
    """GIVEN a clawback entry with a negative amount and a quote in its id WHEN applied
    THEN it is stored exactly."""
    clawback = ledger_entry(
        'C"1', "-1800.00", "-450.00", event_type="CANCELLATION", original_transaction_id="S4"
    )
    database.ledger.apply_deltas("r1", [clawback])
    assert database.ledger.entries() == [clawback]


# --------------------------------------------------------------------------- acks
def test_acks_are_recorded_once(database: Database) -> None:
    """GIVEN an acknowledged batch WHEN recorded again with another body THEN the first stays."""
    database.acks.record_ack("r1", 0, 1, 5000, "a" * 64)
    database.acks.record_ack("r1", 0, 1, 5000, "b" * 64)
    database.acks.record_ack("r1", 0, 2, 10, "c" * 64)
    database.acks.record_ack("r1", 1, 1, 10, "d" * 64)
    assert database.acks.acknowledged("r1", 0) == {1: "a" * 64, 2: "c" * 64}
    assert database.acks.acknowledged("r2", 0) == {}


def test_concurrent_runs_for_one_period_get_exactly_one_lock(database: Database) -> None:
    """GIVEN four runs asking for the same period at the same moment
    WHEN they open concurrently THEN exactly one holds it and the others are refused naming it."""
    from concurrent.futures import ThreadPoolExecutor

    def attempt(run_id: str) -> str:
        try:
            database.runs.open_run(run_id, ["2026-10"], dry_run=False, requested_by="ops")
        except PeriodsHeldError as refused:
            return f"refused:{refused.holder_run_id}"
        return "opened"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(attempt, ["a", "b", "c", "d"]))
    assert outcomes.count("opened") == 1
    winner = ["a", "b", "c", "d"][outcomes.index("opened")]
    assert sorted(outcomes) == ["opened", *[f"refused:{winner}"] * 3]


def test_an_amount_with_too_many_decimals_is_refused_not_rounded(database: Database) -> None:
    """GIVEN a ledger amount with 3 decimals WHEN applied THEN it is refused naming the
    transaction, and nothing of the batch is stored (no silent rounding by NUMERIC)."""
    entries = [ledger_entry("T1", "10.00"), ledger_entry("T2", "10.005")]
    with pytest.raises(ValueError, match=r"T2: base_amount 10\.005 has more than 2 decimals"):
        database.ledger.apply_deltas("r1", entries)
    assert database.ledger.entries() == []
