"""The calculation job against an independent oracle (``tests/support/settlement_oracle.py``).

Two runs of the real job (``glue_jobs.job.run_calculation``) on the shared Spark session:

- ``month``: a generated October (several markets and currencies, every reject reason,
  duplicates, same-run cancellations, targets aimed at the tiers, mid-month matrix changes) plus
  two hand-written batches and matrix rows for the edges a generator only hits by chance: tier
  thresholds exactly reached, a BONUS ladder at a specific level that starts mid-month, a BASE
  row that ends mid-month, half-up ties, target 0 and no target, a negative and a zero net, a
  dealer in two markets, trimmed values, a blank CSV line, cancellations before their sale;
- ``ledger``: October and November in one run after a published September (the ledger):
  clawbacks of published sales, transaction ids already settled for September, published
  cancellations, reversed (unsettled) ledger rows, ledger rows of the re-computed October,
  November cancelling October sales of the same run, and duplicates decided in period order.

For each, every line (amounts to the cent), every reject and every dealer_summary row must be
what the oracle computes from the same files. The end of the file checks the money bounds: the
largest price settles exactly, a larger one is rejected, and totals beyond the money type fail
the job (an audit with this oracle found they were written as null).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from glue_jobs.job import AmountOverflowError, run_calculation
from settlement.domain.snapshot import LEDGER_SCHEMA, MATRIX_SCHEMA, TARGETS_SCHEMA
from settlement.generator import GeneratedMonth, generate_month
from tests.support.settlement_oracle import (
    COLUMNS,
    LedgerEntry,
    Line,
    Matrix,
    MatrixRow,
    Outcome,
    RawRow,
    SummaryRow,
    Target,
    read_csv_batch,
    read_matrix_csv,
    read_parquet_batch,
    read_targets_csv,
    settle,
)

pytestmark = pytest.mark.spark

SEP, OCT, NOV = "2026-09", "2026-10", "2026-11"
D0 = Decimal("0.00")
Row = dict[str, str | None]
LINE_FIELDS = [f.name for f in fields(Line)]
SUMMARY_FIELDS = [f.name for f in fields(SummaryRow)]


# --------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class BatchFile:
    """A batch as the job's ``batches.json`` lists it."""

    batch_id: str
    period: str
    path: Path
    format: str

    def rows(self) -> Iterator[RawRow]:
        if self.format == "csv":
            return read_csv_batch(self.path, self.batch_id, self.period)
        return read_parquet_batch(self.path, self.batch_id, self.period)


@dataclass(frozen=True)
class RunInputs:
    """Everything one run reads: batches and the reference snapshot."""

    periods: list[str]
    batches: list[BatchFile]
    matrix: list[MatrixRow]
    targets: list[Target]
    ledger: list[LedgerEntry]


@dataclass(frozen=True)
class JobOutput:
    """What the job wrote, keyed as the oracle's :class:`Outcome`."""

    lines: dict[str, dict[str, Any]]
    rejects: set[tuple[str, int, str]]
    summary: dict[tuple[str, str, str, str], dict[str, Any]]


@dataclass(frozen=True)
class Compared:
    """A scenario: its inputs, what the oracle says and what the job wrote."""

    name: str
    inputs: RunInputs
    expected: Outcome
    actual: JobOutput
    generated: GeneratedMonth


def generated_batches(month: GeneratedMonth) -> list[BatchFile]:
    """The CSV batches ``generate_month`` wrote."""
    return [BatchFile(b.batch_id, month.period, b.data_path, "csv") for b in month.batches]


def row(
    transaction_id: str,
    dealer_id: str,
    day: str,
    series: str = "X1",
    channel: str = "PRIVATE",
    net_price: str | None = "40000.00",
    *,
    event_type: str = "SALE",
    market: str = "DE",
    currency: str = "EUR",
    original: str | None = None,
    vin: str | None = "WBATESTVIN0000001",
) -> Row:
    """One raw batch row (``day`` is the day of October, or a whole date when it has a '-')."""
    return {
        "transaction_id": transaction_id,
        "event_type": event_type,
        "event_date": day if "-" in day else f"{OCT}-{int(day):02d}",
        "market": market,
        "dealer_id": dealer_id,
        "vin": vin,
        "series": series,
        "channel": channel,
        "net_price": net_price,
        "currency": currency,
        "original_transaction_id": original,
    }


def cancellation(
    transaction_id: str, original: str | None, dealer_id: str, day: str, **kw: Any
) -> Row:
    """A cancellation row (net_price empty unless given: it is ignored on a cancellation)."""
    values = {"net_price": None, **kw}
    return row(
        transaction_id, dealer_id, day, event_type="CANCELLATION", original=original, **values
    )


def write_csv(path: Path, rows: Sequence[Row], *, blank_after: int | None = None) -> None:
    """A CSV batch; ``blank_after`` inserts a blank line after that many data rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for position, record in enumerate(rows):
        if position == blank_after:
            out.write("\n")
        writer.writerow(["" if record[c] is None else record[c] for c in COLUMNS])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(out.getvalue(), encoding="utf-8")


def write_parquet(path: Path, rows: Sequence[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in COLUMNS})
    pq.write_table(table, path)


def matrix_row(
    market: str,
    series: str,
    channel: str,
    component: str,
    min_attainment: str,
    rate: str,
    amount: str = "0",
    *,
    currency: str = "EUR",
    valid_from: date = date(2020, 1, 1),
    valid_to: date | None = None,
) -> MatrixRow:
    return MatrixRow(
        market,
        series,
        channel,
        component,
        Decimal(min_attainment),
        Decimal(rate),
        Decimal(amount),
        currency,
        valid_from,
        valid_to,
    )


# --------------------------------------------------------------------------- store and job
def build_store(root: Path, run_id: str, inputs: RunInputs) -> None:
    """Lay out what ``run_calculation`` reads: the batch files, ``input/batches.json`` and the
    reference snapshot (``matrix``, ``targets``, ``ledger`` Parquet files)."""
    listed = []
    for batch in inputs.batches:
        key = f"incoming/transactions/{batch.path.name}"
        target = root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        data = batch.path.read_bytes()
        target.write_bytes(data)
        listed.append(
            {
                "batch_id": batch.batch_id,
                "period": batch.period,
                "key": key,
                "format": batch.format,
                "sha256": hashlib.sha256(data).hexdigest(),
                "row_count": sum(1 for _ in batch.rows()),
                "source": "test",
            }
        )
    document = {"run_id": run_id, "periods": inputs.periods, "batches": listed}
    (root / f"runs/{run_id}/input").mkdir(parents=True)
    (root / f"runs/{run_id}/input/batches.json").write_text(json.dumps(document))
    reference = root / f"runs/{run_id}/reference"
    reference.mkdir(parents=True)
    matrix = [
        {"matrix_version": m.version, **{k: v for k, v in asdict(m).items() if k != "version"}}
        for m in inputs.matrix
    ]
    targets = [{"target_version": "t1", **asdict(t)} for t in inputs.targets]
    ledger = [asdict(e) for e in inputs.ledger]
    pq.write_table(pa.Table.from_pylist(matrix, MATRIX_SCHEMA), reference / "matrix.parquet")
    pq.write_table(pa.Table.from_pylist(targets, TARGETS_SCHEMA), reference / "targets.parquet")
    pq.write_table(pa.Table.from_pylist(ledger, LEDGER_SCHEMA), reference / "ledger.parquet")


def read_output(root: Path, run_id: str, name: str) -> list[dict[str, Any]]:
    dataset = pads.dataset(root / f"runs/{run_id}/{name}", format="parquet", partitioning="hive")
    rows: list[dict[str, Any]] = dataset.to_table().to_pylist()
    return rows


def run_job(spark: SparkSession, root: Path, run_id: str, inputs: RunInputs) -> JobOutput:
    build_store(root, run_id, inputs)
    run_calculation(spark, store_root=str(root), run_id=run_id, periods=inputs.periods)
    lines = read_output(root, run_id, "lines")
    summary = read_output(root, run_id, "dealer_summary")
    return JobOutput(
        lines={line["transaction_id"]: line for line in lines},
        rejects={
            (r["batch_id"], r["line_number"], r["reason"])
            for r in read_output(root, run_id, "rejects")
        },
        summary={(s["period"], s["market"], s["dealer_id"], s["currency"]): s for s in summary},
    )


def oracle(inputs: RunInputs) -> Outcome:
    rows = [r for batch in inputs.batches for r in batch.rows()]
    return settle(rows, inputs.matrix, inputs.targets, inputs.ledger, inputs.periods)


# --------------------------------------------------------------------------- scenario: month
EDGE_MATRIX = [
    # a BONUS ladder at the most specific level that starts mid-month: before the 16th an X5
    # PRIVATE sale takes the (*, *) ladder, from the 16th only this one (1.0 or nothing)
    matrix_row("DE", "X5", "PRIVATE", "BONUS", "1.0", "0.02", valid_from=date(2026, 10, 16)),
    # a specific BASE row that ends mid-month (then (*, FLEET) applies)
    matrix_row("DE", "5", "FLEET", "BASE", "0", "0.02", "10", valid_to=date(2026, 10, 10)),
    # six-decimal rate and an amount per unit with cents
    matrix_row("DE", "X3", "EMPLOYEE", "BASE", "0", "0.012345", "12.34"),
    # a 0 threshold: reached with net_units >= 0 (and a target), not below
    matrix_row("DE", "7", "*", "BONUS", "0", "0.001"),
    matrix_row("DE", "7", "*", "BONUS", "1.0", "0.011"),
    # thresholds around 2/3: compared exactly, 2 of 3 reaches 0.666666 but not 0.666667 (the
    # reported attainment, rounded, is 0.666667)
    matrix_row("DE", "2", "*", "BONUS", "0.666666", "0.002"),
    matrix_row("DE", "2", "*", "BONUS", "0.666667", "0.003"),
]
# Targets of the hand-written rows' dealers (QANT, QAIT and QAC have none).
EDGE_TARGETS = {
    "QA090": 10,  # 9 net: exactly 0.9
    "QA100": 5,  # 5 net: exactly 1.0
    "QA110": 10,  # 11 net: exactly 1.1
    "QA120": 10,  # 12 net: exactly 1.2 (the electric ladders' top tier)
    "QA086": 7,  # 6 net: 0.857142…, reported 0.857143 (half-up), tier 0.8 only on i4
    "QAT00": 0,  # target 0: NO_TARGET
    "QANEG": 5,  # 1 sale - 2 cancellations: net -1, the 0 threshold is not reached
    "QAZER": 5,  # 1 sale - 1 cancellation: net 0, the 0 threshold is reached
    "QAMM": 4,  # 2 sales in DE (EUR) + 2 in GB (GBP): one attainment, 1.0
    "QA667": 3,  # 2 net: 2/3 exactly
    "QAFR": 2,
    "QASE": 2,
}


def _filler(dealer: str, count: int, start: int, **kw: Any) -> list[Row]:
    """``count`` plain X1 PRIVATE sales of ``dealer`` (ids ``<dealer>-<n>``)."""
    return [
        row(
            f"{dealer}-{n}",
            dealer,
            str(3 + n % 20),
            net_price=f"{41000 + 137 * n}.{n % 100:02d}",
            **kw,
        )
        for n in range(start, start + count)
    ]


def edge_rows(generated: list[RawRow]) -> tuple[list[Row], list[Row]]:
    """The rows of the two hand-written October batches: ``aaa`` (CSV, read first in run
    order) and ``edge`` (Parquet, read last)."""
    bad_date = next(
        r for r in generated if r.values["event_date"] in (f"{OCT}-32", f"{OCT}-00", "n/a")
    )
    first = generated[0]
    early: list[Row] = [
        # a cancellation with the wrong currency, then one before its sale (which is in `edge`)
        cancellation("QC-CUR", "QS-LATE", "QAC", "20", currency="GBP"),
        cancellation("QC-EARLY", "QS-LATE", "QAC", "21", net_price="abc"),  # price ignored
        # NO_RATE first occurrence (US series 1), re-used later: still a duplicate
        row("QNR1", "US00001", "5", "1", market="US", currency="USD"),
        cancellation("QC-NR", "QNR1", "QAC", "25"),  # its original never settled
        # values with spaces around them are trimmed; a tab is data (no matrix for "DE\t")
        {**row(" QSP1 ", " QAC", "2026-10-07 ", "X1 ", " FLEET"), "event_type": " SALE "},
        row("QTAB", "QAC", "8", market="DE\t"),
        row("QLOW", "QAC", "8", event_type="sale"),
        row("QRET", "QAC", "8", event_type="RETURN", net_price="abc"),
        row("QDATE", "QAC", "2026-9-01"),
        row("QFEB", "QAC", "2026-02-30"),
        row("QOUT", "QAC", "2026-11-01"),
        row("QZERO", "QAC", "9", net_price="0"),
        row("QLEAD", "QAC", "9", net_price="0045000.10"),
        row("QBIG", "QAC", "9", net_price="12345678901234567"),
        row("QEXP", "QAC", "9", net_price="1e5"),
        row("QPLUS", "QAC", "9", net_price="+100"),
        row("QDEC3", "QAC", "9", net_price="100.001"),
        cancellation("QC-NOORIG", None, "QAC", "9"),
        cancellation("QC-NOVIN", "QS-LATE", "QAC", "9", vin=None),
        row("QCUR", "QAC", "9", currency="GBP"),  # a DE sale in GBP
        row("QISO", "QAC", "2026-10-05T00:00"),  # a timestamp is no date
        row("QBLANK", "QAC", "9", vin="   "),  # all spaces: missing
        row("QSELF", "QAC", "9", channel="*"),  # '*' is a matrix wildcard, not a channel
        cancellation("QC-SELF", "QC-SELF", "QAC", "9"),  # cancels itself: no sale
        cancellation("QC-RETAIL", "QS-LATE2", "QAC", "9", channel="RETAIL"),
        row("QORIG", "QAC", "9", original="ANYTHING"),  # a sale naming an original
    ]
    late: list[Row] = [
        row("QS-LATE", "QAC", "3", net_price="30000.00"),
        cancellation("QC-SECOND", "QS-LATE", "QAC", "28"),
        cancellation("QC-OFC", "QC-EARLY", "QAC", "28"),  # a cancellation is no original
        row("QNR1", "QAC", "6"),  # the id is taken by the NO_RATE row
        row(first.values["transaction_id"] or "", "QAC", "6"),  # a generated id again
        # an id whose first occurrence failed a row rule (INVALID_DATE): this one settles
        row(bad_date.values["transaction_id"] or "", "QAC", "6"),
        row("QTWICE", "QAC", "6"),
        row("QTWICE", "QAC", "7"),
        row("QS-LATE2", "QAC", "25"),
        cancellation("QC-BEFORE", "QS-LATE2", "QAC", "2", net_price="-5"),  # dated before it
        cancellation("QC-XX", "QZERO", "QAC", "9", market="XX"),  # needs no matrix row
        cancellation("QC-OFCUR", "QCUR", "QAC", "9", currency="GBP"),  # QCUR never settled
        row("QPAD", "QAC", "9", net_price=" 45000.00 "),
        row("QDOT1", "QAC", "9", net_price=".50"),
        row("QDOT2", "QAC", "9", net_price="50."),
        row("QCOMMA", "QAC", "9", net_price="45000,00"),
        row("QA667-1", "QA667", "5", "2", net_price="38000.00"),
        row("QA667-2", "QA667", "6", "2", net_price="38000.00"),
        # QA090: 9 sales; i4 on both sides of its BASE change (15th), X5 PRIVATE on both sides
        # of its own ladder's start (16th), 5 FLEET on both sides of its row's end (10th), a
        # half-up tie (10 001.50 × 0.03 + 100 = 400.045) and the six-decimal X3 EMPLOYEE row
        row("QA090-1", "QA090", "14", "i4", net_price="58000.00"),
        row("QA090-2", "QA090", "15", "i4", net_price="58000.00"),
        row("QA090-3", "QA090", "15", "X5", net_price="77777.77"),
        row("QA090-4", "QA090", "16", "X5", net_price="77777.77"),
        row("QA090-5", "QA090", "4", "3", net_price="50000.00"),
        row("QA090-6", "QA090", "4", "X1", net_price="10001.50"),
        row("QA090-7", "QA090", "9", "5", "FLEET", net_price="60000.00"),
        row("QA090-8", "QA090", "10", "5", "FLEET", net_price="60000.00"),
        row("QA090-9", "QA090", "11", "X3", "EMPLOYEE", net_price="33333.33"),
        *_filler("QA100", 4, 0),
        row("QA100-X", "QA100", "12", "iX", net_price="95000.00"),
        *_filler("QA110", 9, 0),
        row("QA110-iX", "QA110", "12", "iX", net_price="95000.00"),
        row("QA110-i4", "QA110", "20", "i4", net_price="58000.00"),
        *_filler("QA120", 10, 0),
        row("QA120-iX", "QA120", "12", "iX", net_price="95000.00"),
        row("QA120-i4", "QA120", "20", "i4", net_price="58000.00"),
        *_filler("QA086", 5, 0),
        row("QA086-i4", "QA086", "20", "i4", net_price="58000.00"),
        *_filler("QAT00", 2, 0),
        *_filler("QANT", 2, 0),  # no target row at all
        row("QANEG-1", "QANEG", "5", "7", net_price="110000.00"),
        cancellation("QANEG-C1", "QANEG-1", "QANEG", "6"),
        cancellation("QANEG-C2", "QA100-0", "QANEG", "7"),  # another dealer's sale
        row("QAZER-1", "QAZER", "5", "7", net_price="110000.00"),
        cancellation("QAZER-C1", "QAZER-1", "QAZER", "6"),
        *_filler("QAMM", 2, 0),
        row("QAMM-GB1", "QAMM", "5", "X1", "FLEET", market="GB", currency="GBP"),
        row("QAMM-GB2", "QAMM", "5", "X1", market="GB", currency="GBP"),
        # FR X5 FLEET ends on the 20th (exclusive); IT i5 PRIVATE starts on the 10th
        row("QAFR-1", "QAFR", "19", "X5", "FLEET", market="FR"),
        row("QAFR-2", "QAFR", "20", "X5", "FLEET", market="FR"),
        row("QAIT-1", "QAIT", "9", "i5", market="IT"),
        row("QAIT-2", "QAIT", "10", "i5", market="IT"),
        # SE: the top tier's rate changes on the 20th; 3 net on a target of 2 reaches it
        row("QASE-1", "QASE", "19", market="SE", currency="SEK"),
        row("QASE-2", "QASE", "20", market="SE", currency="SEK"),
        row("QASE-3", "QASE", "21", "3", market="SE", currency="SEK"),
    ]
    return early, late


@pytest.fixture(scope="module")
def month(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Compared:
    """GIVEN a generated October with every reject reason, and the hand-written edges."""
    out = tmp_path_factory.mktemp("oracle-month")
    generated = generate_month(
        out / "gen", rows=4_000, seed=3, period=OCT, invalid_share=0.1, batch_rows=2_000
    )
    batches = generated_batches(generated)
    early, late = edge_rows([r for b in batches for r in b.rows()])
    write_csv(out / "edge" / f"{OCT}-aaa-0001.csv", early, blank_after=3)
    write_parquet(out / "edge" / f"{OCT}-edge-0001.parquet", late)
    batches += [
        BatchFile(f"{OCT}-aaa-0001", OCT, out / "edge" / f"{OCT}-aaa-0001.csv", "csv"),
        BatchFile(f"{OCT}-edge-0001", OCT, out / "edge" / f"{OCT}-edge-0001.parquet", "parquet"),
    ]
    inputs = RunInputs(
        periods=[OCT],
        batches=batches,
        matrix=[*read_matrix_csv(generated.matrix_path), *EDGE_MATRIX],
        targets=[
            *read_targets_csv(generated.targets_path),
            *(Target("DE", dealer, OCT, units) for dealer, units in EDGE_TARGETS.items()),
        ],
        ledger=[],
    )
    # WHEN the job runs on them (and the oracle on the same files)
    actual = run_job(spark, out / "store", "oracle-month", inputs)
    return Compared("month", inputs, oracle(inputs), actual, generated)


# --------------------------------------------------------------------------- scenario: ledger
def entry(line: Line, **changes: Any) -> LedgerEntry:
    """The ledger entry publishing ``line`` (a first run publishes every line whole)."""
    published = LedgerEntry(
        line.transaction_id,
        line.period,
        line.event_type,
        line.original_transaction_id,
        line.dealer_id,
        line.market,
        line.currency,
        line.base_amount,
        line.bonus_amount,
    )
    return replace(published, **changes)


def cancelling(transaction_id: str, original: Line, day: str, **changes: Any) -> Row:
    """A cancellation of ``original`` by its own dealer, market and currency."""
    values = {"market": original.market, "currency": original.currency, **changes}
    return cancellation(transaction_id, original.transaction_id, original.dealer_id, day, **values)


@pytest.fixture(scope="module")
def ledger(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Compared:
    """GIVEN September published (the oracle's lines of a generated September as the ledger),
    then October and November generated, each cancelling sales of the month before, settled
    in one run; plus hand-written rows for the ledger's edges and the run's period order."""
    out = tmp_path_factory.mktemp("oracle-ledger")
    september = generate_month(out / "sep", rows=1_500, seed=21, period=SEP, batch_rows=1_500)
    october = generate_month(
        out / "oct", rows=2_000, seed=22, period=OCT, invalid_share=0.05, batch_rows=1_500,
        previous=september,
    )  # fmt: skip
    november = generate_month(
        out / "nov", rows=1_000, seed=23, period=NOV, invalid_share=0.05, previous=october
    )
    sep_run = RunInputs(
        [SEP],
        generated_batches(september),
        read_matrix_csv(september.matrix_path),
        read_targets_csv(september.targets_path),
        [],
    )
    sep_lines = oracle(sep_run).lines.values()
    # September sales nothing cancels yet (neither September nor the generated October)
    taken = {sale.transaction_id for sale in september.carry_over}
    taken |= {line.original_transaction_id or "" for line in sep_lines}
    free = sorted(
        (s for s in sep_lines if s.event_type == "SALE" and s.transaction_id not in taken),
        key=lambda line: line.transaction_id,
    )
    resent, cancelled_before, wrong_currency, cancelled_in_october = free[-4:]
    sep_cancellation = next(line for line in sep_lines if line.event_type == "CANCELLATION")
    oct_sale = next(
        r
        for r in generated_batches(october)[0].rows()
        if r.values["event_type"] == "SALE" and r.values["market"] == "DE"
    )
    oct_sale_id = oct_sale.values["transaction_id"] or ""
    published_october = LedgerEntry(
        oct_sale_id, OCT, "SALE", None, oct_sale.values["dealer_id"] or "", "DE", "EUR",
        Decimal("1.00"), Decimal("2.00"),
    )  # fmt: skip
    extra_ledger = [
        # a published cancellation of a September sale: October's is ALREADY_CANCELLED
        entry(
            cancelled_before,
            transaction_id="LX-C1",
            event_type="CANCELLATION",
            original_transaction_id=cancelled_before.transaction_id,
            base_amount=-cancelled_before.base_amount,
            bonus_amount=-cancelled_before.bonus_amount,
        ),
        # reversed before (settled = false): neither a duplicate nor an original
        LedgerEntry("LR1", SEP, "SALE", None, "DE00001", "DE", "EUR", D0, D0, settled=False),
        LedgerEntry("LR2", SEP, "SALE", None, "DE00001", "DE", "EUR", D0, D0, settled=False),
        # rows of the re-computed October are replaced: neither duplicates nor originals, nor
        # cancellations that make a new one ALREADY_CANCELLED; LO2's group shows what it had
        published_october,
        LedgerEntry("LO2", OCT, "SALE", None, "ZL001", "DE", "EUR", Decimal(100), Decimal(5)),
        entry(
            cancelled_in_october,
            transaction_id="LOC",
            period=OCT,
            event_type="CANCELLATION",
            original_transaction_id=cancelled_in_october.transaction_id,
        ),
    ]
    oct_edge: list[Row] = [
        row(resent.transaction_id, resent.dealer_id, "4", market=resent.market,
            currency=resent.currency),  # settled for September: DUPLICATE
        cancelling("ZC1", cancelled_before, "5"),
        cancellation("ZC2", "LR2", "DE00001", "5"),
        row("LR1", "DE00001", "5"),
        cancellation("ZC3", "LO2", "ZL001", "5"),
        cancelling("ZC4", wrong_currency, "6",
                   currency="SEK" if wrong_currency.currency != "SEK" else "EUR"),
        cancelling("ZC5", wrong_currency, "7"),  # claws back what was published
        cancellation("ZC6", sep_cancellation.transaction_id, sep_cancellation.dealer_id, "7"),
        cancelling("ZC7", cancelled_in_october, "8"),
        cancellation("ZC8", "ZN1", "DE00002", "9"),  # its sale is in November, same run
        row("ZX2", "DE00002", "9"),
    ]  # fmt: skip
    # A November batch whose id sorts first: the run's order is period first, then batch id.
    nov_edge: list[Row] = [
        row("ZN1", "DE00002", f"{NOV}-03", "i4", net_price="58000.00"),
        row("ZX2", "DE00002", f"{NOV}-03"),  # taken in October
        row(oct_sale_id, "DE00002", f"{NOV}-03"),  # taken in October
    ]
    write_parquet(out / "edge" / "oct-edge.parquet", oct_edge)
    write_parquet(out / "edge" / "nov-edge.parquet", nov_edge)
    inputs = RunInputs(
        periods=[OCT, NOV],
        batches=[
            *generated_batches(october),
            *generated_batches(november),
            BatchFile(f"{OCT}-zz-0001", OCT, out / "edge" / "oct-edge.parquet", "parquet"),
            BatchFile("0000-nov-edge", NOV, out / "edge" / "nov-edge.parquet", "parquet"),
        ],
        matrix=read_matrix_csv(october.matrix_path),
        targets=[*read_targets_csv(october.targets_path), *read_targets_csv(november.targets_path)],
        ledger=[*(entry(line) for line in sep_lines), *extra_ledger],
    )
    # WHEN the job re-computes October and November (and the oracle does the same)
    actual = run_job(spark, out / "store", "oracle-ledger", inputs)
    return Compared("ledger", inputs, oracle(inputs), actual, october)


@pytest.fixture(params=["month", "ledger"])
def compared(request: pytest.FixtureRequest) -> Compared:
    scenario: Compared = request.getfixturevalue(request.param)
    return scenario


# --------------------------------------------------------------------------- comparison
def differences(
    expected: Mapping[Any, Mapping[str, Any]],
    actual: Mapping[Any, Mapping[str, Any]],
    columns: Sequence[str],
) -> list[str]:
    """Readable differences between two keyed tables, compared column by column (Decimals by
    value: ``0.030000 == 0.03``)."""
    found = [f"only in the oracle: {k}" for k in sorted(expected.keys() - actual.keys())]
    found += [f"only in the job: {k}" for k in sorted(actual.keys() - expected.keys())]
    for key in sorted(expected.keys() & actual.keys()):
        for column in columns:
            want, got = expected[key][column], actual[key][column]
            if want != got:
                found.append(f"{key} {column}: oracle {want!r}, job {got!r}")
    return found


def shown(found: list[str]) -> str:
    return f"{len(found)} differences, first 25:\n" + "\n".join(found[:25])


# --------------------------------------------------------------------------- tests
def test_every_settled_line_matches_the_oracle_to_the_cent(compared: Compared) -> None:
    # THEN the job settled exactly the oracle's transactions, with the same rates, tier and
    # amounts (Decimal equality, to the cent)
    expected = {t: asdict(line) for t, line in compared.expected.lines.items()}
    found = differences(expected, compared.actual.lines, LINE_FIELDS)
    assert not found, shown(found)


def test_every_reject_matches_the_oracle(compared: Compared) -> None:
    # THEN the same rows are rejected, for the same reason
    expected, actual = compared.expected.reject_keys, compared.actual.rejects
    found = [f"only in the oracle: {r}" for r in sorted(expected - actual)]
    found += [f"only in the job: {r}" for r in sorted(actual - expected)]
    assert not found, shown(found)


def test_every_dealer_summary_row_matches_the_oracle(compared: Compared) -> None:
    # THEN each (period, market, dealer, currency) has the oracle's units, target, attainment,
    # tier, flag and totals
    expected = {k: asdict(s) for k, s in compared.expected.summary.items()}
    found = differences(expected, compared.actual.summary, SUMMARY_FIELDS)
    assert not found, shown(found)


def test_every_row_is_settled_or_rejected(compared: Compared) -> None:
    # THEN rows_in = rows_settled + rows_rejected, in the oracle as in the job
    rows = sum(1 for batch in compared.inputs.batches for _ in batch.rows())
    assert len(compared.expected.lines) + len(compared.expected.rejects) == rows
    assert len(compared.actual.lines) + len(compared.actual.rejects) == rows


def test_oracle_rejects_the_generated_rows_as_the_generator_intended(month: Compared) -> None:
    # GIVEN the generator's own count of the rows it spoiled, per reason
    generated = {b.batch_id for b in month.generated.batches}
    # WHEN the oracle's rejects of those batches are counted
    counts = dict.fromkeys(month.generated.reason_counts, 0)
    for reject in month.expected.rejects:
        if reject.batch_id in generated:
            counts[reject.reason] += 1
    # THEN they agree: the oracle is checked against a second, independent source too
    assert counts == month.generated.reason_counts
    assert all(counts.values())


def test_month_scenario_covers_what_it_claims(month: Compared) -> None:
    # THEN the scenario exercises the cases the oracle is meant to check
    lines = month.expected.lines.values()
    sales = [line for line in lines if line.event_type == "SALE"]
    summary = month.expected.summary.values()
    assert {line.currency for line in lines} == {"EUR", "GBP", "CHF", "SEK", "USD"}
    # the BASE rows used are at every level, and some are valid only part of October
    matrix = Matrix(month.inputs.matrix)
    used = [matrix.base_row(s.market, s.series, s.channel, s.event_date) for s in sales]
    levels = {(r.series != "*", r.channel != "*") for r in used if r is not None}
    assert levels == {(True, True), (True, False), (False, True), (False, False)}
    assert any(r is not None and r.valid_to is not None for r in used)
    used_rates = {(line.market, line.series, line.channel, line.base_rate) for line in sales}
    assert ("DE", "i4", "PRIVATE", Decimal("0.04")) in used_rates
    assert ("DE", "i4", "PRIVATE", Decimal("0.042")) in used_rates
    # tiers at, below and above each threshold, and no tier
    tiers = {line.bonus_tier for line in sales}
    for tier in ("0", "0.666666", "0.8", "0.9", "1.0", "1.1", "1.2"):
        assert Decimal(tier) in tiers, tier
    assert None in tiers
    attainments = {s.attainment for s in summary}
    for exact in ("0.9", "1.0", "1.1", "1.2", "0.857143", "0.666667", "-0.2", "0"):
        assert Decimal(exact) in attainments, exact
    assert {s.flag for s in summary} == {"", "NO_TARGET"}
    assert {s.target_units for s in summary if s.flag} == {None, 0}
    assert {line.event_type for line in lines} == {"SALE", "CANCELLATION"}
    assert {r.reason for r in month.expected.rejects} >= set(month.generated.reason_counts)


def test_ledger_scenario_covers_what_it_claims(ledger: Compared) -> None:
    # THEN clawbacks of published sales, ids already settled for September, the ledger's own
    # edges and the run's period order all occur
    lines = ledger.expected.lines
    published = {e.transaction_id: e for e in ledger.inputs.ledger if e.period == SEP}
    clawbacks = [
        line
        for line in lines.values()
        if line.event_type == "CANCELLATION" and line.original_transaction_id in published
    ]
    assert len(clawbacks) >= 5
    for line in clawbacks:
        original = published[line.original_transaction_id or ""]
        assert (line.base_amount, line.bonus_amount) == (
            -original.base_amount,
            -original.bonus_amount,
        )
    reasons = {(r.batch_id, r.transaction_id): r.reason for r in ledger.expected.rejects}
    edge = {t: reason for (batch, t), reason in reasons.items() if batch == f"{OCT}-zz-0001"}
    assert edge["ZC1"] == "ALREADY_CANCELLED"
    assert edge["ZC2"] == edge["ZC3"] == edge["ZC6"] == "ORIGINAL_NOT_FOUND"
    assert edge["ZC4"] == "CURRENCY_MISMATCH"
    assert list(edge.values()).count("DUPLICATE_TRANSACTION") == 1
    assert {"LR1", "ZC5", "ZC7", "ZC8", "ZX2"} <= lines.keys()
    assert lines["ZC8"].amount == -lines["ZN1"].amount != 0  # clawed back from November
    assert lines["ZX2"].period == OCT
    nov_edge = [reason for (batch, _), reason in reasons.items() if batch == "0000-nov-edge"]
    assert nov_edge == ["DUPLICATE_TRANSACTION"] * 2
    # November cancels October sales of the same run (the generator's carried-over sales)
    assert any(
        line.period == NOV and lines[line.original_transaction_id or ""].period == OCT
        for line in lines.values()
        if line.event_type == "CANCELLATION" and line.original_transaction_id in lines
    )
    zero = ledger.expected.summary[(OCT, "DE", "ZL001", "EUR")]
    assert (zero.sales_units, zero.total, zero.previously_published) == (
        0,
        Decimal(0),
        Decimal("105.00"),
    )


# --------------------------------------------------------------------------- money bounds
def test_the_largest_price_settles_exactly_and_a_larger_one_is_rejected(
    spark: SparkSession, tmp_path: Path
) -> None:
    # GIVEN the largest net price the row rules take (12 integer digits), and one above it,
    # on a BASE row of rate 1 plus the largest amount per unit
    largest = "999999999999.99"
    write_csv(
        tmp_path / "big.csv",
        [
            row("MAX", "D1", "5", net_price=largest),
            row("OVER", "D1", "6", net_price="1" + "0" * 12),
        ],
    )
    inputs = RunInputs(
        periods=[OCT],
        batches=[BatchFile("big", OCT, tmp_path / "big.csv", "csv")],
        matrix=[matrix_row("DE", "*", "*", "BASE", "0", "1", largest)],
        targets=[],
        ledger=[],
    )
    # WHEN the job settles them
    actual = run_job(spark, tmp_path / "store", "oracle-big", inputs)
    # THEN the largest settles to the cent, as the oracle computes it, and the larger one is
    # rejected as INVALID_AMOUNT: no amount is ever beyond the money type
    expected = oracle(inputs)
    assert expected.lines["MAX"].base_amount == Decimal("1999999999999.98")
    assert actual.lines["MAX"]["base_amount"] == expected.lines["MAX"].base_amount
    assert actual.rejects == {("big", 3, "INVALID_AMOUNT")} == expected.reject_keys


def test_dealer_totals_beyond_the_money_type_fail_the_job(
    spark: SparkSession, tmp_path: Path
) -> None:
    # GIVEN 5 001 sales of one dealer, each BASE 1 999 999 999 999.98: 10^16 in all, beyond
    # decimal(18,2)
    largest = "999999999999.99"
    write_csv(
        tmp_path / "many.csv",
        [row(f"T{n}", "D1", "5", net_price=largest) for n in range(5_001)],
    )
    inputs = RunInputs(
        periods=[OCT],
        batches=[BatchFile("many", OCT, tmp_path / "many.csv", "csv")],
        matrix=[matrix_row("DE", "*", "*", "BASE", "0", "1", largest)],
        targets=[],
        ledger=[],
    )
    # WHEN the job settles them
    with pytest.raises(AmountOverflowError, match=r"dealer totals beyond decimal\(18,2\) for D1"):
        run_job(spark, tmp_path / "store", "oracle-many", inputs)
    # THEN it fails naming the dealer, and leaves no output a later step could read
    assert not (tmp_path / "store/runs/oracle-many/calculation.json").exists()
    assert not (tmp_path / "store/runs/oracle-many/lines").exists()
