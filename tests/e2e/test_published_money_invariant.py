"""The money invariant of spec §5 across a sequence of real runs (real Spark job, ``file://`` sink).

For every transaction ever published, what Core View was committed for it (the sum of its
``base_delta`` and of its ``bonus_delta`` over every committed run) equals its BASE and BONUS in
the latest successful run of its period, or 0 when it no longer settles there; booked under the
period, dealer and currency of that line (0 under any other); and the ledger holds the same.

The sequence: both periods settled; a corrected matrix and October re-run; an unchanged re-run;
a dry run after new targets; an October batch withdrawn; a corrected September batch (other
prices, one sale moved to another dealer) with both periods re-run.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from settlement.adapters.coreview.file_sink import FileSinkClient
from settlement.bootstrap import Adapters
from settlement.cli.workflow import submit_batch, upload
from settlement.domain.batches import INCOMING_PREFIX
from settlement.domain.ports import LedgerEntry
from settlement.generator import TARGET_COLUMNS, GeneratedMonth, generate_month
from settlement.generator.matrix import write_corrected_matrix
from state_machine.local import run_workflow
from tests.e2e.test_settlement_spark import load_month, table

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SEPTEMBER, OCTOBER = "2026-09", "2026-10"
ZERO = Decimal("0.00")
LINE_COLUMNS = ["transaction_id", "period", "market", "dealer_id", "currency", "event_type",
                "original_transaction_id", "base_amount", "bonus_amount"]  # fmt: skip


class Booking(NamedTuple):
    """Where Core View books a record: a transaction under a period, dealer and currency."""

    transaction_id: str
    period: str
    dealer_id: str
    currency: str


class Amounts(NamedTuple):
    base: Decimal
    bonus: Decimal


def plus(left: Amounts, right: Amounts) -> Amounts:
    return Amounts(left.base + right.base, left.bonus + right.bonus)


NOTHING = Amounts(ZERO, ZERO)


@dataclass
class Settlement:
    """A workspace driven through the real workflow, remembering the runs in the order started."""

    workspace: Adapters
    spark: Any
    started: list[str] = field(default_factory=list)

    @property
    def sink(self) -> FileSinkClient:
        sink = self.workspace.coreview
        assert isinstance(sink, FileSinkClient)
        return sink

    def run(self, *periods: str, dry_run: bool = False) -> str:
        request = {"periods": list(periods), "dry_run": dry_run, "requested_by": "tests"}
        execution = run_workflow(self.workspace, request, spark=self.spark, sleep=lambda _: None)
        assert execution.status == "SUCCEEDED", f"{execution.error}: {execution.cause}"
        run_id: str = execution.name
        self.started.append(run_id)
        return run_id

    def successful_runs(self) -> list[tuple[str, list[str]]]:
        """The succeeded, not dry, runs with their periods, oldest first."""
        runs = []
        for run_id in self.started:
            record = self.workspace.database.runs.get_run(run_id)
            assert record is not None
            if record.state == "SUCCEEDED" and not record.dry_run:
                runs.append((run_id, record.periods))
        return runs

    def latest_lines(self) -> dict[str, dict[str, Any]]:
        """Per settled transaction, its line in the latest successful run of its period."""
        latest_run = {period: run_id for run_id, periods in self.successful_runs()
                      for period in periods}  # fmt: skip
        lines: dict[str, dict[str, Any]] = {}
        for period, run_id in sorted(latest_run.items()):
            for line in table(self.workspace, run_id, "lines", LINE_COLUMNS):
                if line["period"] == period:
                    assert line["transaction_id"] not in lines, "settled in two periods"
                    lines[line["transaction_id"]] = line
        return lines

    def committed(self) -> dict[Booking, Amounts]:
        """Per booking, the sums of the deltas of every run Core View committed."""
        sums: dict[Booking, Amounts] = defaultdict(lambda: NOTHING)
        for run_id in self.started:
            if self.sink.committed_figures(run_id) is None:
                assert self.records_of(run_id) == 0, f"{run_id} left records uncommitted"
                continue
            for record in self.sink.records(run_id):
                booking = Booking(
                    record.transaction_id, record.period, record.dealer_id, record.currency
                )
                sums[booking] = plus(sums[booking], Amounts(record.base_delta, record.bonus_delta))
        return dict(sums)

    def ledger(self) -> dict[str, LedgerEntry]:
        return {entry.transaction_id: entry for entry in self.workspace.database.ledger.entries()}

    def records_of(self, run_id: str) -> int:
        return sum(1 for _ in self.sink.records(run_id))


def booking_of(line: Mapping[str, Any]) -> Booking:
    return Booking(line["transaction_id"], line["period"], line["dealer_id"], line["currency"])


def amounts_of(line: Mapping[str, Any]) -> Amounts:
    return Amounts(line["base_amount"], line["bonus_amount"])


def per_transaction(sums: Mapping[Booking, Amounts]) -> dict[str, Amounts]:
    totals: dict[str, Amounts] = defaultdict(lambda: NOTHING)
    for booking, amounts in sums.items():
        totals[booking.transaction_id] = plus(totals[booking.transaction_id], amounts)
    return dict(totals)


def differences(
    expected: Mapping[Any, Amounts], actual: Mapping[Any, Amounts]
) -> dict[Any, tuple[Amounts, Amounts]]:
    """Keys whose amounts differ (a missing key counts as 0), as (expected, actual)."""
    keys = set(expected) | set(actual)
    return {
        key: (expected.get(key, NOTHING), actual.get(key, NOTHING))
        for key in sorted(keys)
        if expected.get(key, NOTHING) != actual.get(key, NOTHING)
    }


def assert_published_equals_latest(settlement: Settlement) -> None:
    """The invariant of spec §5 over everything committed so far (see the module docstring)."""
    latest = settlement.latest_lines()
    committed = settlement.committed()
    # Per transaction: the sum of everything committed equals the latest line, or 0.
    expected = {tid: amounts_of(line) for tid, line in latest.items()}
    assert differences(expected, per_transaction(committed)) == {}
    # Per booking: all of it under the latest line's period, dealer and currency, 0 elsewhere.
    booked = {booking_of(line): amounts_of(line) for line in latest.values()}
    assert differences(booked, committed) == {}
    # The ledger holds the latest values under the same bookings; what no longer settles is 0.
    ledger = settlement.ledger()
    assert {booking.transaction_id for booking in committed} <= set(ledger)
    in_ledger = {
        tid: Amounts(entry.base_amount, entry.bonus_amount) for tid, entry in ledger.items()
    }
    assert differences(expected, in_ledger) == {}
    settled_in_ledger = {
        Booking(tid, entry.period, entry.dealer_id, entry.currency)
        for tid, entry in ledger.items()
        if entry.settled
    }
    assert settled_in_ledger == set(booked)


# --------------------------------------------------------------------------- inputs
def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, columns: Iterable[str], rows: Iterable[Mapping[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def batch_of(month: GeneratedMonth, wanted: Callable[[dict[str, str]], bool]) -> Path:
    """The data file of the first batch of ``month`` with a row ``wanted``."""
    for batch in month.batches:
        if any(wanted(row) for row in rows_of(batch.data_path)):
            return batch.data_path
    raise AssertionError("no batch has such a row")


def new_targets(targets: Path, out: Path, period: str) -> Path:
    """The targets of ``period`` halved (plus one): every tier with a target moves."""
    rows = [
        {**row, "target_units": str(int(row["target_units"]) // 2 + 1)}
        for row in rows_of(targets)
        if row["period"] == period
    ]
    return write_rows(out, TARGET_COLUMNS, rows)


def corrected_batch(
    data: Path, out: Path, *, repriced: set[str], moved: str, to_dealer: str
) -> Path:
    """``data`` with ``repriced`` sales 1 234.56 dearer and ``moved`` sold by ``to_dealer``."""
    rows = rows_of(data)
    for row in rows:
        if row["transaction_id"] in repriced:
            row["net_price"] = str(Decimal(row["net_price"]) + Decimal("1234.56"))
        if row["transaction_id"] == moved:
            row["dealer_id"] = to_dealer
    return write_rows(out, rows[0].keys(), rows)


def withdraw(workspace: Adapters, batch_id: str) -> None:
    workspace.store.delete(f"{INCOMING_PREFIX}{batch_id}.csv")
    workspace.store.delete(f"{INCOMING_PREFIX}{batch_id}.manifest.json")


# --------------------------------------------------------------------------- the sequence
def test_what_core_view_holds_per_transaction_is_its_latest_line_across_re_runs(
    workspace: Adapters, spark: Any, tmp_path: Path
) -> None:
    # GIVEN September and October (with cancellations of September sales), rejects in both
    september = generate_month(
        tmp_path / "sep", rows=600, seed=21, period=SEPTEMBER, invalid_share=0.02, batch_rows=300
    )
    october = generate_month(
        tmp_path / "oct", rows=600, seed=22, period=OCTOBER, invalid_share=0.02, batch_rows=200,
        previous=september,
    )  # fmt: skip
    load_month(workspace, september)
    load_month(workspace, october)
    settlement = Settlement(workspace, spark)

    # WHEN (1) both periods are settled
    first = settlement.run(SEPTEMBER, OCTOBER)
    # THEN everything settled was published whole, cross-period clawbacks included
    latest = settlement.latest_lines()
    assert settlement.records_of(first) == len(latest)
    september_sales = {t for t, line in latest.items() if line["period"] == SEPTEMBER}
    cross = {
        t: line for t, line in latest.items()
        if line["period"] == OCTOBER and line["original_transaction_id"] in september_sales
    }  # fmt: skip
    assert cross, "the generator made no cancellation of a September sale"
    assert_published_equals_latest(settlement)

    # WHEN (2) a corrected matrix is uploaded and October alone is re-run
    upload(workspace, "matrix", write_corrected_matrix(october.matrix_path, tmp_path / "m2.csv"))
    corrected = settlement.run(OCTOBER)
    # THEN only October corrections were published, and the invariant holds
    assert settlement.records_of(corrected) > 0
    assert {record.period for record in settlement.sink.records(corrected)} == {OCTOBER}
    assert_published_equals_latest(settlement)

    # WHEN (3) October is re-run with nothing changed
    unchanged = settlement.run(OCTOBER)
    # THEN nothing is published
    assert settlement.records_of(unchanged) == 0
    assert workspace.store.read_json(f"runs/{unchanged}/run_report.json")["records"] == 0
    assert_published_equals_latest(settlement)

    # WHEN (4) October's targets change and October is dry-run
    ledger_before = settlement.ledger()
    upload(workspace, "targets", new_targets(october.targets_path, tmp_path / "t2.csv", OCTOBER))
    dry = settlement.run(OCTOBER, dry_run=True)
    # THEN the dry run computed changes but published nothing and left the ledger alone
    assert workspace.store.read_json(f"runs/{dry}/run_report.json")["computed_delta_records"] > 0
    assert not (settlement.sink.root / dry).exists()
    assert settlement.ledger() == ledger_before
    assert_published_equals_latest(settlement)

    # WHEN (5) an October batch is withdrawn and October re-run (the new targets now apply)
    withdrawn_batch = october.batches[1]
    withdrawn = {row["transaction_id"] for row in rows_of(withdrawn_batch.data_path)}
    withdraw(workspace, withdrawn_batch.batch_id)
    after_withdrawal = settlement.run(OCTOBER)
    # THEN its published transactions were reversed to 0, the new tiers published as BONUS
    # corrections, and the invariant holds
    assert any(record.bonus_delta for record in settlement.sink.records(after_withdrawal))
    committed = per_transaction(settlement.committed())
    reversed_ = withdrawn & set(committed)
    assert reversed_
    assert all(committed[t] == NOTHING for t in reversed_)
    assert_published_equals_latest(settlement)

    # WHEN (6) a corrected September batch is resubmitted (other prices, including a sale
    # cancelled in October; one sale moved to another dealer) and both periods are re-run
    latest = settlement.latest_lines()
    cancelled_sale = sorted(line["original_transaction_id"] for line in cross.values())[0]
    data = batch_of(september, lambda row: row["transaction_id"] == cancelled_sale)
    sales = sorted(
        row["transaction_id"] for row in rows_of(data)
        if row["transaction_id"] in latest and latest[row["transaction_id"]]["event_type"] == "SALE"
    )  # fmt: skip
    repriced = {cancelled_sale, *sales[:5]}
    moved = next(sale for sale in sales if sale not in repriced)
    mover = latest[moved]
    to_dealer = min(
        line["dealer_id"] for line in latest.values()
        if line["period"] == SEPTEMBER and line["market"] == mover["market"]
        and line["dealer_id"] != mover["dealer_id"]
    )  # fmt: skip
    clawback = next(t for t, line in cross.items()
                    if line["original_transaction_id"] == cancelled_sale)  # fmt: skip
    clawed_before = latest[clawback]["base_amount"]
    fixed = corrected_batch(
        data, tmp_path / data.name, repriced=repriced, moved=moved, to_dealer=to_dealer
    )
    submit_batch(workspace, fixed, period=SEPTEMBER, source=september.source)
    settlement.run(SEPTEMBER, OCTOBER)
    # THEN the moved sale is booked whole under its new dealer and nothing under its old one
    latest = settlement.latest_lines()
    assert latest[moved]["dealer_id"] == to_dealer
    committed_bookings = settlement.committed()
    assert committed_bookings[booking_of(mover)] == NOTHING
    assert committed_bookings[booking_of(latest[moved])] == amounts_of(latest[moved])
    # AND the October clawback follows the repriced September sale
    assert latest[clawback]["base_amount"] == -latest[cancelled_sale]["base_amount"]
    assert latest[clawback]["base_amount"] != clawed_before
    assert_published_equals_latest(settlement)
