"""`generate_month` end to end on disk: manifests, intended rejects, realism, targets, determinism.

The row checks below re-implement the spec §2 rules independently of the generator, so a row the
generator meant to be valid (or rejected for a reason) is checked against the contract itself.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from settlement.generator import COLUMNS, GeneratedMonth, generate_month
from settlement.generator.catalog import CURRENCIES, MARKETS
from tests.fixtures.generator import GeneratedInputs, read_csv_rows

Row = dict[str, str]
REQUIRED = [column for column in COLUMNS if column not in {"net_price", "original_transaction_id"}]
AMOUNT = re.compile(r"^\d+(\.\d{1,2})?$")
VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
LEVELS = ((True, True), (True, False), (False, True), (False, False))


def base_row(matrix: list[Row], sale: Row, on: date) -> Row | None:
    """The BASE row of spec §4 step 1, or None."""
    candidates = [
        row
        for row in matrix
        if row["market"] == sale["market"]
        and row["component"] == "BASE"
        and date.fromisoformat(row["valid_from"]) <= on
        and (not row["valid_to"] or on < date.fromisoformat(row["valid_to"]))
    ]
    for exact_series, exact_channel in LEVELS:
        level = [
            row
            for row in candidates
            if row["series"] == (sale["series"] if exact_series else "*")
            and row["channel"] == (sale["channel"] if exact_channel else "*")
        ]
        if level:
            assert len(level) == 1, f"ambiguous BASE rows for {sale}"
            return level[0]
    return None


def row_reason(row: Row, period: str, matrix: list[Row], seen: set[str]) -> str | None:
    """Reasons decidable from the row alone (and the ids seen before), in a fixed order."""
    cancellation = row["event_type"] == "CANCELLATION"
    required = REQUIRED + (["original_transaction_id"] if cancellation else [])
    duplicate = row["transaction_id"] in seen
    seen.add(row["transaction_id"])
    if any(not row[column] for column in required):
        return "MISSING_FIELD"
    if row["event_type"] not in {"SALE", "CANCELLATION"}:
        return "INVALID_EVENT_TYPE"
    if row["channel"] not in {"PRIVATE", "FLEET", "EMPLOYEE"}:
        return "INVALID_CHANNEL"
    try:
        on = date.fromisoformat(row["event_date"])
    except ValueError:
        return "INVALID_DATE"
    if not cancellation and (not AMOUNT.match(row["net_price"]) or Decimal(row["net_price"]) < 0):
        return "INVALID_AMOUNT"
    if on.isoformat()[:7] != period:
        return "OUT_OF_PERIOD"
    if duplicate:
        return "DUPLICATE_TRANSACTION"
    if cancellation:
        return None
    matched = base_row(matrix, row, on)
    if matched is None:
        return "NO_RATE"
    return "CURRENCY_MISMATCH" if matched["currency"] != row["currency"] else None


def classify(inputs: GeneratedInputs) -> tuple[dict[str, Counter[str]], list[Row]]:
    """Per batch, the count of each outcome (a reason, SALE or CANCELLATION); the settled rows."""
    month = inputs.month
    matrix = read_csv_rows(month.matrix_path)
    seen: set[str] = set()
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    provisional: list[tuple[str, Row]] = []
    for batch in month.batches:
        for row in read_csv_rows(batch.data_path):
            reason = row_reason(row, month.period, matrix, seen)
            if reason:
                outcomes[batch.batch_id][reason] += 1
            else:
                provisional.append((batch.batch_id, row))
    sales = {row["transaction_id"] for _, row in provisional if row["event_type"] == "SALE"}
    cancelled: set[str] = set()
    settled: list[Row] = []
    for batch_id, row in provisional:
        original = row["original_transaction_id"]
        if row["event_type"] == "CANCELLATION" and original not in sales:
            outcomes[batch_id]["ORIGINAL_NOT_FOUND"] += 1
        elif row["event_type"] == "CANCELLATION" and original in cancelled:
            outcomes[batch_id]["ALREADY_CANCELLED"] += 1
        else:
            cancelled.add(original)
            outcomes[batch_id][row["event_type"]] += 1
            settled.append(row)
    return outcomes, settled


Classified = tuple[dict[str, Counter[str]], list[Row]]


@pytest.fixture(scope="module")
def classified(month_with_rejects: GeneratedInputs) -> Classified:
    return classify(month_with_rejects)


# ----------------------------------------------------------------------------- batches
def test_manifests_match_their_data_files(month_with_rejects: GeneratedInputs) -> None:
    # GIVEN a generated month in three batches
    month = month_with_rejects.month
    assert [batch.batch_id for batch in month.batches] == [
        "2026-10-dms-0001",
        "2026-10-dms-0002",
        "2026-10-dms-0003",
    ]
    for batch in month.batches:
        # WHEN each manifest is read THEN it describes its data file exactly (spec §2)
        manifest = json.loads(batch.manifest_path.read_text(encoding="utf-8"))
        data = batch.data_path.read_bytes()
        lines = data.decode("utf-8").splitlines()
        assert manifest == {
            "batch_id": batch.batch_id,
            "period": "2026-10",
            "schema_version": 1,
            "row_count": len(lines) - 1,
            "sha256": hashlib.sha256(data).hexdigest(),
            "source": "dms",
        }
        assert lines[0] == ",".join(COLUMNS)
    assert [b.row_count for b in month.batches] == [8_000, 8_000, 6_000]
    assert not list(month_with_rejects.out.rglob("*.partial"))


def test_every_reason_is_present_as_intended(
    month_with_rejects: GeneratedInputs, classified: Classified
) -> None:
    # GIVEN 22,000 rows with 20 % invalid WHEN the spec §2 rules classify every row
    month = month_with_rejects.month
    outcomes, _ = classified
    # THEN each batch holds exactly the rejects the generator reports, for every reason
    for batch_id, intended in month.batch_reason_counts.items():
        found = {reason: outcomes[batch_id][reason] for reason in intended}
        assert found == intended
    assert all(count >= 390 for count in month.reason_counts.values())
    assert month.rows_rejected == int(22_000 * 0.2)
    # AND every other row settles: rows = sales + cancellations + rejects
    total = sum(outcomes.values(), Counter())
    assert total["SALE"] == month.valid_sales
    assert total["CANCELLATION"] == month.valid_cancellations
    assert month.valid_sales + month.valid_cancellations + month.rows_rejected == month.rows


def test_settled_rows_look_real(classified: Classified) -> None:
    # GIVEN the rows that settle WHEN their values are inspected
    _, settled = classified
    sales = {row["transaction_id"]: row for row in settled if row["event_type"] == "SALE"}
    cancellations = [row for row in settled if row["event_type"] == "CANCELLATION"]
    # THEN prices, dates, currencies and VINs are plausible
    for sale in sales.values():
        assert Decimal("20000") <= Decimal(sale["net_price"]) <= Decimal("150000")
        assert Decimal(sale["net_price"]).as_tuple().exponent == -2
        assert sale["currency"] == CURRENCIES[MARKETS.index(sale["market"])]
        assert sale["dealer_id"].startswith(sale["market"])
        assert VIN.match(sale["vin"])
    assert {sale["market"] for sale in sales.values()} == set(MARKETS)
    assert len({sale["series"] for sale in sales.values()}) == 14
    channels = Counter(sale["channel"] for sale in sales.values())
    assert channels["PRIVATE"] > channels["FLEET"] > channels["EMPLOYEE"] > 0
    # AND about 3 % are cancellations of an earlier sale of the same vehicle and dealer
    assert 0.025 < len(cancellations) / 22_000 < 0.035
    for cancellation in cancellations:
        sale = sales[cancellation["original_transaction_id"]]
        assert cancellation["event_date"] >= sale["event_date"]
        same = ("dealer_id", "vin", "market", "series", "channel", "currency")
        assert all(cancellation[field] == sale[field] for field in same)
        assert cancellation["net_price"] in {"", sale["net_price"]}


def test_targets_put_dealers_below_at_and_above_each_tier(clean_month: GeneratedInputs) -> None:
    # GIVEN a month of valid rows and its targets
    month = clean_month.month
    units: Counter[str] = Counter()
    for row in read_csv_rows(month.batches[0].data_path):
        units[row["dealer_id"]] += 1 if row["event_type"] == "SALE" else -1
    targets = {row["dealer_id"]: row for row in read_csv_rows(month.targets_path)}
    assert all(row["period"] == "2026-10" for row in targets.values())
    # WHEN each dealer's attainment is computed from the rows
    attainments = [
        Fraction(units[dealer], int(row["target_units"]))
        for dealer, row in targets.items()
        if int(row["target_units"]) > 0
    ]
    # THEN attainment lands below, exactly at, between and above the 0.9 / 1.0 / 1.1 tiers
    tiers = [Fraction(9, 10), Fraction(1), Fraction(11, 10)]
    assert any(a < tiers[0] for a in attainments)
    assert any(a > tiers[2] for a in attainments)
    for tier in tiers:
        assert tier in attainments
    for low, high in itertools.pairwise(tiers):
        assert any(low < a < high for a in attainments)
    # AND some dealers have no target row and some a target of 0 (NO_TARGET)
    assert len(targets) < month.dealers
    assert any(row["target_units"] == "0" for row in targets.values())


# ----------------------------------------------------------------------------- determinism
def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_seed_gives_the_same_bytes(tmp_path: Path, fmt: str) -> None:
    # GIVEN the same arguments twice WHEN generating into two directories
    arguments = {"rows": 6_000, "seed": 5, "period": "2026-02", "invalid_share": 0.1, "fmt": fmt}
    generate_month(tmp_path / "a", batch_rows=2_500, **arguments)  # type: ignore[arg-type]
    generate_month(tmp_path / "b", batch_rows=2_500, **arguments)  # type: ignore[arg-type]
    generate_month(tmp_path / "c", batch_rows=2_500, **{**arguments, "seed": 6})  # type: ignore[arg-type]
    # THEN every file is byte for byte the same, and another seed changes the batches
    first = _tree(tmp_path / "a")
    assert first == _tree(tmp_path / "b")
    assert len(first) == 8
    other = _tree(tmp_path / "c")
    assert (
        first["transactions/2026-02-dms-0001." + fmt]
        != other["transactions/2026-02-dms-0001." + fmt]
    )


def test_parquet_holds_the_same_values_as_csv(tmp_path: Path) -> None:
    # GIVEN the same month as CSV and as Parquet
    csv_month = generate_month(
        tmp_path / "csv", rows=3_000, seed=2, period="2026-03", invalid_share=0.2
    )
    parquet_month = generate_month(
        tmp_path / "pq", rows=3_000, seed=2, period="2026-03", invalid_share=0.2, fmt="parquet"
    )
    # WHEN both are read THEN the Parquet strings are the CSV values (empty in CSV = null)
    table = pq.read_table(parquet_month.batches[0].data_path)
    assert table.column_names == list(COLUMNS)
    from_parquet = [{k: v or "" for k, v in row.items()} for row in table.to_pylist()]
    assert from_parquet == read_csv_rows(csv_month.batches[0].data_path)


# ----------------------------------------------------------------------------- several months
def test_a_second_month_adds_batches_targets_and_cross_month_cancellations(tmp_path: Path) -> None:
    # GIVEN October generated WHEN November is generated into the same directory after it
    october = generate_month(tmp_path, rows=5_000, seed=3, period="2026-10")
    november = generate_month(tmp_path, rows=5_000, seed=3, period="2026-11", previous=october)
    # THEN both months' batches and targets are there, with distinct ids
    batch_files = sorted(path.name for path in (tmp_path / "transactions").glob("*.csv"))
    assert batch_files == ["2026-10-dms-0001.csv", "2026-11-dms-0001.csv"]
    periods = Counter(row["period"] for row in read_csv_rows(november.targets_path))
    assert set(periods) == {"2026-10", "2026-11"}
    ids = [read_csv_rows(m.batches[0].data_path) for m in (october, november)]
    assert not {r["transaction_id"] for r in ids[0]} & {r["transaction_id"] for r in ids[1]}
    # AND some November cancellations reverse October sales, dated in November
    october_sales = {r["transaction_id"]: r for r in ids[0] if r["event_type"] == "SALE"}
    crossing = [r for r in ids[1] if r["original_transaction_id"] in october_sales]
    assert len(crossing) == 25
    assert all(r["event_date"].startswith("2026-11") for r in crossing)
    assert all(r["vin"] == october_sales[r["original_transaction_id"]]["vin"] for r in crossing)
    assert november.valid_cancellations == 25 + 150


# ----------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"rows": 0}, "rows must be at least 1"),
        ({"period": "2026-13"}, "period must be YYYY-MM"),
        ({"invalid_share": 0.6}, "invalid share must be between 0 and 0.5"),
        ({"fmt": "xlsx"}, "format must be one of csv, parquet"),
        ({"source": "a-b"}, "source must be"),
        ({"seed": -1}, "seed must be 0 or more"),
    ],
)
def test_bad_arguments_are_refused_before_writing(
    tmp_path: Path, arguments: dict[str, object], message: str
) -> None:
    defaults: dict[str, object] = {"rows": 100, "seed": 1, "period": "2026-10"}
    with pytest.raises(ValueError, match=message):
        generate_month(tmp_path / "out", **{**defaults, **arguments})  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_tiny_generations_still_hold_every_reason(tmp_path: Path) -> None:
    # GIVEN only 22 rows, half invalid WHEN generated THEN one row per reason, rows add up
    month: GeneratedMonth = generate_month(
        tmp_path, rows=22, seed=1, period="2026-10", invalid_share=0.5
    )
    assert set(month.reason_counts.values()) == {1}
    assert month.valid_sales + month.valid_cancellations + 11 == 22
    assert month.batches[0].row_count == 22
