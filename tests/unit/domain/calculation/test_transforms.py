"""Focused chispa tests of the calculation's DataFrame transforms (spec §2, §4).

Each test builds a tiny input frame and the frame it expects, both by hand, and compares only
the columns it is about. The end-to-end behaviour through ``settle`` is covered by the
``test_calculation_*`` modules; these pin each transform on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)
from pyspark.sql.types import (
    DataType,
    DateType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from settlement.domain.calculation import rates, rows
from settlement.domain.calculation.rate_plan import build_rate_plan
from settlement.domain.schemas import LEDGER_SCHEMA, MIN_ATTAINMENT, MONEY, RATE
from tests.fixtures.calculation import Batch, batch_rows, cancel, ledger_row, matrix_entry, tx

pytestmark = pytest.mark.spark

D = Decimal
OCT, NOV, SEP = "2026-10", "2026-11", "2026-09"
AMOUNT_RULE = "is not a decimal >= 0 with at most 2 decimals and 12 digits before the point"


def frame(
    spark: SparkSession, fields: Sequence[tuple[str, DataType]], data: list[Any]
) -> DataFrame:
    """A small frame of ``data`` with the named, typed (nullable) columns."""
    schema = StructType([StructField(name, kind, True) for name, kind in fields])
    return spark.createDataFrame(data, schema)


def assert_same_rows(actual: DataFrame, expected: DataFrame) -> None:
    """``actual``'s columns of ``expected`` hold the same rows with the same types."""
    assert_df_equality(
        actual.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True
    )


def october_rows(spark: SparkSession, *raw: dict[str, str | None]) -> DataFrame:
    """Raw rows of one October batch ``b1`` (line numbers from 2)."""
    return batch_rows(spark, [Batch("b1", OCT, list(raw))])


def with_values(row: dict[str, str | None], **values: str | None) -> dict[str, str | None]:
    """``row`` with some raw values replaced (``tx`` turns an empty vin into a default and
    ``cancel`` fixes net_price)."""
    return {**row, **values}


# --- rows.parse_rows ---------------------------------------------------------------------


def test_parse_rows_trims_values_and_turns_empty_ones_into_null(spark: SparkSession) -> None:
    # GIVEN values with surrounding spaces, and values that are empty or only spaces
    raw = october_rows(
        spark,
        tx("T1", market=" DE ", series=" 3", currency="EUR  "),
        with_values(cancel(" T2 ", " T1 "), net_price=""),
        with_values(tx("T3"), vin="   "),
        with_values(tx("T4"), dealer_id=""),
    )
    # WHEN the rows are parsed
    parsed = rows.parse_rows(raw)
    # THEN values are trimmed, empty ones are null, and a required empty one is MISSING_FIELD
    string = StringType()
    expected = frame(
        spark,
        [
            ("line_number", LongType()),
            ("transaction_id", string),
            ("market", string),
            ("series", string),
            ("currency", string),
            ("original_transaction_id", string),
            ("vin", string),
            ("dealer_id", string),
            ("reason", string),
            ("detail", string),
        ],
        [
            (2, "T1", "DE", "3", "EUR", None, "VINT1", "D1", None, None),
            (3, "T2", "DE", "3", "EUR", "T1", "VIN T2", "D1", None, None),
            (4, "T3", "DE", "3", "EUR", None, None, "D1", "MISSING_FIELD", "vin is empty"),
            (5, "T4", "DE", "3", "EUR", None, "VINT4", None, "MISSING_FIELD", "dealer_id is empty"),
        ],
    )
    assert_same_rows(parsed, expected)


def test_parse_rows_parses_event_date_and_net_price(spark: SparkSession) -> None:
    # GIVEN sales with dates and prices in the accepted forms, and a cancellation with a price
    raw = october_rows(
        spark,
        tx("P1", event_date="2026-10-01", net_price="40000.55"),
        tx("P2", event_date=" 2026-10-31 ", net_price="1000"),
        tx("P3", net_price=" 0.5 "),
        tx("P4", net_price="0"),
        tx("P5", net_price="999999999999.99"),
        with_values(cancel("P6", "P1"), net_price="123.45"),
    )
    # WHEN the rows are parsed
    parsed = rows.parse_rows(raw)
    # THEN event_date is a date and net_price a decimal(18,2); a cancellation's price is ignored
    expected = frame(
        spark,
        [
            ("transaction_id", StringType()),
            ("event_date", DateType()),
            ("net_price", MONEY),
            ("reason", StringType()),
        ],
        [
            ("P1", date(2026, 10, 1), D("40000.55"), None),
            ("P2", date(2026, 10, 31), D("1000.00"), None),
            ("P3", date(2026, 10, 5), D("0.50"), None),
            ("P4", date(2026, 10, 5), D("0.00"), None),
            ("P5", date(2026, 10, 5), D("999999999999.99"), None),
            ("P6", date(2026, 10, 5), None, None),
        ],
    )
    assert_same_rows(parsed, expected)


def test_parse_rows_gives_each_row_rule_its_reason_and_detail(spark: SparkSession) -> None:
    # GIVEN one row failing each row rule of spec §2 (and two good ones)
    raw = october_rows(
        spark,
        tx("M1", market=""),
        cancel("M2", ""),
        tx("D1", event_date="2026-13-01"),
        tx("D2", event_date="05.10.2026"),
        tx("D3", event_date="2026-02-30"),
        tx("A1", net_price="-5.00"),
        tx("A2", net_price="1.005"),
        tx("A3", net_price=""),
        tx("A4", net_price="1,000.00"),
        tx("A5", net_price="12345678901234567"),
        tx("A6", net_price="1000000000000.00"),
        tx("E1", event_type="RETURN"),
        tx("E2", event_type="sale"),
        tx("C1", channel="RETAIL"),
        tx("O1", event_date="2026-11-01"),
        tx("O2", event_date="2026-09-30"),
        tx("G1"),
        with_values(cancel("G2", "G1"), net_price="not a price"),
    )
    # WHEN the rows are parsed
    parsed = rows.parse_rows(raw)
    # THEN each failing row carries its reason and a detail quoting the value
    expected = frame(
        spark,
        [("transaction_id", StringType()), ("reason", StringType()), ("detail", StringType())],
        [
            ("M1", "MISSING_FIELD", "market is empty"),
            ("M2", "MISSING_FIELD", "original_transaction_id is empty"),
            ("D1", "INVALID_DATE", "event_date '2026-13-01' is not a date YYYY-MM-DD"),
            ("D2", "INVALID_DATE", "event_date '05.10.2026' is not a date YYYY-MM-DD"),
            ("D3", "INVALID_DATE", "event_date '2026-02-30' is not a date YYYY-MM-DD"),
            ("A1", "INVALID_AMOUNT", f"net_price '-5.00' {AMOUNT_RULE}"),
            ("A2", "INVALID_AMOUNT", f"net_price '1.005' {AMOUNT_RULE}"),
            ("A3", "INVALID_AMOUNT", f"net_price '' {AMOUNT_RULE}"),
            ("A4", "INVALID_AMOUNT", f"net_price '1,000.00' {AMOUNT_RULE}"),
            ("A5", "INVALID_AMOUNT", f"net_price '12345678901234567' {AMOUNT_RULE}"),
            ("A6", "INVALID_AMOUNT", f"net_price '1000000000000.00' {AMOUNT_RULE}"),
            ("E1", "INVALID_EVENT_TYPE", "event_type 'RETURN' is not one of SALE, CANCELLATION"),
            ("E2", "INVALID_EVENT_TYPE", "event_type 'sale' is not one of SALE, CANCELLATION"),
            ("C1", "INVALID_CHANNEL", "channel 'RETAIL' is not one of PRIVATE, FLEET, EMPLOYEE"),
            ("O1", "OUT_OF_PERIOD", "event_date 2026-11-01 is outside the batch period 2026-10"),
            ("O2", "OUT_OF_PERIOD", "event_date 2026-09-30 is outside the batch period 2026-10"),
            ("G1", None, None),
            ("G2", None, None),
        ],
    )
    assert_same_rows(parsed, expected)


def test_parse_rows_reports_the_first_failing_rule_in_spec_order(spark: SparkSession) -> None:
    # GIVEN rows that each fail two rules
    raw = october_rows(
        spark,
        tx("F1", market="", event_date="bad"),
        with_values(tx("F2", market=" ", event_date="bad"), vin=""),  # market and vin empty
        tx("F3", event_date="2026-10-32", event_type="RETURN"),
        tx("F4", net_price="-1", channel="RETAIL"),
        tx("F5", event_type="RETURN", channel="RETAIL", net_price=""),
        tx("F6", channel="RETAIL", event_date="2026-11-05"),
        tx("F7", net_price="abc", event_date="2026-11-05"),
    )
    # WHEN the rows are parsed
    parsed = rows.parse_rows(raw)
    # THEN the first rule failed wins (the first empty column in file order for MISSING_FIELD);
    # the amount rule only looks at sales
    expected = frame(
        spark,
        [("transaction_id", StringType()), ("reason", StringType()), ("detail", StringType())],
        [
            ("F1", "MISSING_FIELD", "market is empty"),
            ("F2", "MISSING_FIELD", "market is empty"),
            ("F3", "INVALID_DATE", "event_date '2026-10-32' is not a date YYYY-MM-DD"),
            ("F4", "INVALID_AMOUNT", f"net_price '-1' {AMOUNT_RULE}"),
            ("F5", "INVALID_EVENT_TYPE", "event_type 'RETURN' is not one of SALE, CANCELLATION"),
            ("F6", "INVALID_CHANNEL", "channel 'RETAIL' is not one of PRIVATE, FLEET, EMPLOYEE"),
            ("F7", "INVALID_AMOUNT", f"net_price 'abc' {AMOUNT_RULE}"),
        ],
    )
    assert_same_rows(parsed, expected)


def test_parse_rows_keeps_raw_text_only_where_it_differs(spark: SparkSession) -> None:
    # GIVEN values as read that equal their cleaned value, and values that do not
    raw = october_rows(
        spark,
        tx("R1"),
        tx("R2", market=" DE ", event_date=" 2026-10-05", net_price="1000"),
        tx("R3", event_date="2026-13-01", net_price=" 7.5 "),
        with_values(tx("R4"), market=""),
        with_values(cancel("R5", "R1"), net_price="5"),
    )
    # WHEN the rows are parsed
    parsed = rows.parse_rows(raw).select(
        "transaction_id",
        "raw_market",
        "raw_event_date",
        "raw_net_price",
        "raw_original_transaction_id",
        *(rows.raw_text(c).alias(f"as_read_{c}") for c in ("market", "event_date", "net_price")),
        rows.raw_text("original_transaction_id").alias("as_read_original_transaction_id"),
    )
    # THEN raw_<column> holds the text as read only where it differs from the value's text,
    # and raw_text gives the text as read on every row
    expected = frame(
        spark,
        [
            (name, StringType())
            for name in (
                "transaction_id",
                "raw_market",
                "raw_event_date",
                "raw_net_price",
                "raw_original_transaction_id",
                "as_read_market",
                "as_read_event_date",
                "as_read_net_price",
                "as_read_original_transaction_id",
            )
        ],
        [
            ("R1", None, None, None, None, "DE", "2026-10-05", "1000.00", None),
            ("R2", " DE ", " 2026-10-05", "1000", None, " DE ", " 2026-10-05", "1000", None),
            ("R3", None, "2026-13-01", " 7.5 ", None, "DE", "2026-13-01", " 7.5 ", None),
            ("R4", "", None, None, None, "", "2026-10-05", "1000.00", None),
            ("R5", None, None, "5", None, "DE", "2026-10-05", "5", "R1"),
        ],
    )
    assert_same_rows(parsed, expected)


# --- rows.duplicate_suspects, rows.duplicate_rows ------------------------------------------

CHECKED_FIELDS: list[tuple[str, DataType]] = [
    ("transaction_id", StringType()),
    ("period", StringType()),
    ("batch_id", StringType()),
    ("line_number", LongType()),
    ("reason", StringType()),
    ("rate_reason", StringType()),
]
DUPLICATE_FIELDS: list[tuple[str, DataType]] = [
    ("batch_id", StringType()),
    ("line_number", LongType()),
    ("reason", StringType()),
    ("detail", StringType()),
]
DUPLICATE = "DUPLICATE_TRANSACTION"


def no_ledger(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame([], LEDGER_SCHEMA)


def duplicates_of(checked: DataFrame, ledger: DataFrame, periods: list[str]) -> DataFrame:
    """What the calculation does: narrow to the suspects, then decide among them."""
    suspects = rows.duplicate_suspects(checked, ledger, periods)
    return rows.duplicate_rows(checked, ledger, periods, suspects)


def test_duplicate_suspects_are_ids_seen_twice_or_also_in_the_ledger(
    spark: SparkSession,
) -> None:
    # GIVEN ids once, twice (once rejected, once good), twice good, and once but settled for
    # September, in a run of October
    ledger = spark.createDataFrame([ledger_row("L1", SEP, "1.00", "0.00")], LEDGER_SCHEMA)
    checked = frame(
        spark,
        CHECKED_FIELDS,
        [
            ("U1", OCT, "a", 2, None, None),
            ("R1", OCT, "a", 3, "INVALID_DATE", None),
            ("R1", OCT, "a", 4, None, None),
            ("D1", OCT, "a", 5, None, None),
            ("D1", OCT, "b", 2, None, None),
            ("L1", OCT, "a", 6, None, None),
        ],
    )
    # WHEN the suspects are narrowed
    suspects = rows.duplicate_suspects(checked, ledger, [OCT])
    # THEN exactly the hashes of D1 and L1 remain
    expected = spark.createDataFrame([("D1",), ("L1",)], "transaction_id string").select(
        F.xxhash64("transaction_id").alias("id_hash")
    )
    assert_same_rows(suspects, expected)


def test_duplicate_rows_decides_by_the_id_not_the_hash(spark: SparkSession) -> None:
    # GIVEN every id a suspect, as if all their hashes collided
    checked = frame(
        spark,
        CHECKED_FIELDS,
        [("U1", OCT, "a", 2, None, None), ("U2", OCT, "a", 3, None, None),
         ("D1", OCT, "a", 4, None, None), ("D1", OCT, "a", 5, None, None)],
    )  # fmt: skip
    everyone = checked.select(F.xxhash64("transaction_id").alias("id_hash")).distinct()
    # WHEN the duplicates are decided among them
    duplicates = rows.duplicate_rows(checked, no_ledger(spark), [OCT], everyone)
    # THEN only the real duplicate is one
    first_seen = "transaction_id first seen in batch a line 4"
    expected = frame(spark, DUPLICATE_FIELDS, [("a", 5, DUPLICATE, first_seen)])
    assert_same_rows(duplicates, expected)


def test_duplicate_rows_first_occurrence_wins_in_period_batch_line_order(
    spark: SparkSession,
) -> None:
    # GIVEN transaction ids seen more than once across periods, batches and lines
    checked = frame(
        spark,
        CHECKED_FIELDS,
        [
            ("T1", NOV, "a", 2, None, None),  # period first: October's b/5 came earlier
            ("T1", OCT, "b", 5, None, None),
            ("T2", OCT, "b", 3, None, None),  # then batch: a/9 came earlier
            ("T2", OCT, "a", 9, None, None),
            ("T3", OCT, "a", 4, None, None),  # then line: a/2 came earlier
            ("T3", OCT, "a", 2, None, None),
            ("T4", OCT, "c", 2, None, None),  # three times: both later ones name the first
            ("T4", OCT, "c", 3, None, None),
            ("T4", NOV, "a", 2, None, None),
            ("U1", OCT, "a", 3, None, None),
        ],
    )
    # WHEN the duplicates of the run are found
    duplicates = duplicates_of(checked, no_ledger(spark), [OCT, NOV])
    # THEN every occurrence after the first is a duplicate naming the first
    expected = frame(
        spark,
        DUPLICATE_FIELDS,
        [
            ("a", 2, DUPLICATE, "transaction_id first seen in batch b line 5"),
            ("b", 3, DUPLICATE, "transaction_id first seen in batch a line 9"),
            ("a", 4, DUPLICATE, "transaction_id first seen in batch a line 2"),
            ("c", 3, DUPLICATE, "transaction_id first seen in batch c line 2"),
            ("a", 2, DUPLICATE, "transaction_id first seen in batch c line 2"),
        ],
    )
    assert_same_rows(duplicates, expected)


def test_duplicate_rows_ignores_rows_a_row_rule_rejected(spark: SparkSession) -> None:
    # GIVEN a rejected first occurrence followed by a good one, and a good one followed by a
    # rejected one
    checked = frame(
        spark,
        CHECKED_FIELDS,
        [
            ("R1", OCT, "a", 2, "INVALID_DATE", None),
            ("R1", OCT, "a", 3, None, None),
            ("R2", OCT, "a", 4, None, None),
            ("R2", OCT, "a", 5, "INVALID_CHANNEL", None),
            ("R3", OCT, "a", 6, None, None),
            ("R3", OCT, "a", 7, "MISSING_FIELD", None),
            ("R3", OCT, "a", 8, None, None),
        ],
    )
    # WHEN the duplicates of the run are found
    duplicates = duplicates_of(checked, no_ledger(spark), [OCT])
    # THEN a rejected row is neither seen nor a duplicate: only R3's third row is one
    expected = frame(
        spark,
        DUPLICATE_FIELDS,
        [("a", 8, DUPLICATE, "transaction_id first seen in batch a line 6")],
    )
    assert_same_rows(duplicates, expected)


def test_a_sale_without_a_rate_takes_no_id(spark: SparkSession) -> None:
    # GIVEN an October sale rejected NO_RATE and a good November sale of the same id, and an
    # October sale rejected CURRENCY_MISMATCH followed by a good one, in a run of both months
    checked = frame(
        spark,
        CHECKED_FIELDS,
        [
            ("X1", OCT, "a", 2, None, "NO_RATE"),
            ("X1", NOV, "b", 2, None, None),
            ("X2", OCT, "a", 3, None, "CURRENCY_MISMATCH"),
            ("X2", OCT, "a", 4, None, None),
        ],
    )
    # WHEN the duplicates of the run are found
    duplicates = duplicates_of(checked, no_ledger(spark), [OCT, NOV])
    # THEN none: a row that cannot settle does not take its id (as in a run of November
    # alone, where October's rejected row is nowhere to be seen)
    assert duplicates.count() == 0


def test_duplicate_rows_uses_the_ledger_of_other_periods_only(spark: SparkSession) -> None:
    # GIVEN a ledger with September history and rows of the periods the run re-computes
    ledger = spark.createDataFrame(
        [
            ledger_row("L1", SEP, "130.00", "0.00"),
            ledger_row("L2", OCT, "130.00", "0.00"),
            ledger_row("L3", NOV, "130.00", "0.00"),
            ledger_row("L4", SEP, "0.00", "0.00", settled=False),
            ledger_row("L5", SEP, "130.00", "0.00"),
            ledger_row("L6", SEP, "130.00", "0.00"),
        ],
        LEDGER_SCHEMA,
    )
    checked = frame(
        spark,
        CHECKED_FIELDS,
        [
            ("L1", OCT, "a", 2, None, None),  # settled for September: a duplicate
            ("L2", OCT, "a", 3, None, None),  # October is re-computed: not a duplicate
            ("L3", OCT, "a", 4, None, None),  # nor is November
            ("L4", OCT, "a", 5, None, None),  # reversed in September: not settled any more
            ("L5", OCT, "a", 6, None, None),  # settled and twice in the run
            ("L5", OCT, "a", 7, None, None),
            ("L6", OCT, "a", 8, "INVALID_DATE", None),  # already rejected by a row rule
        ],
    )
    # WHEN the duplicates of the run re-computing October and November are found
    duplicates = duplicates_of(checked, ledger, [OCT, NOV])
    # THEN only rows settled for another period (or seen earlier in the run) are duplicates
    expected = frame(
        spark,
        DUPLICATE_FIELDS,
        [
            ("a", 2, DUPLICATE, "transaction_id already settled for period 2026-09"),
            ("a", 6, DUPLICATE, "transaction_id already settled for period 2026-09"),
            ("a", 7, DUPLICATE, "transaction_id first seen in batch a line 6"),
        ],
    )
    assert_same_rows(duplicates, expected)


# --- rates.attach_plan -------------------------------------------------------------------

OPEN_FROM = date(2026, 1, 1)


entry = matrix_entry


PLAN_MATRIX = (
    entry("*", "*", "BASE", "0", "0.03", "100"),
    # X5 PRIVATE has its own rate from 1 October (inclusive) to 15 October (exclusive)
    entry(
        "X5",
        "PRIVATE",
        "BASE",
        "0",
        "0.05",
        valid_from=date(2026, 10, 1),
        valid_to=date(2026, 10, 15),
        version="m2",
    ),
    # market AT has BONUS rows only: no BASE row ever matches there
    entry("*", "*", "BONUS", "0.5", "0.01", market="AT"),
)
CLASSIFIED_FIELDS: list[tuple[str, DataType]] = [
    ("transaction_id", StringType()),
    ("event_type", StringType()),
    ("event_date", DateType()),
    ("market", StringType()),
    ("series", StringType()),
    ("channel", StringType()),
    ("net_price", MONEY),
    ("currency", StringType()),
    ("reason", StringType()),
]
PRICED_FIELDS: list[tuple[str, DataType]] = [
    ("transaction_id", StringType()),
    ("base_rate", RATE),
    ("base_amount_per_unit", MONEY),
    ("matrix_version", StringType()),
    ("base_amount", MONEY),
    ("rate_reason", StringType()),
    ("rate_detail", StringType()),
]


def classified(
    transaction_id: str,
    *,
    series: str = "3",
    channel: str = "FLEET",
    on: date = date(2026, 10, 5),
    net_price: str | None = "1000.00",
    market: str = "DE",
    currency: str = "EUR",
    event_type: str = "SALE",
    reason: str | None = None,
) -> tuple[Any, ...]:
    """A row as :func:`rows.parse_rows` leaves it (only the columns ``attach_plan`` reads)."""
    price = D(net_price) if net_price is not None else None
    return (transaction_id, event_type, on, market, series, channel, price, currency, reason)


def test_attach_plan_prices_sales_and_flags_rate_rules(spark: SparkSession) -> None:
    # GIVEN sales around the X5 PRIVATE row's validity, sales no BASE row matches, a currency
    # mismatch, a cancellation and a row a row rule already rejected
    sales = frame(
        spark,
        CLASSIFIED_FIELDS,
        [
            classified("S1", net_price="40000.55"),
            classified(
                "S2", series="X5", channel="PRIVATE", on=date(2026, 10, 1), net_price="100.50"
            ),
            classified("S3", series="X5", channel="PRIVATE", on=date(2026, 10, 14)),
            classified("S4", series="X5", channel="PRIVATE", on=date(2026, 10, 15)),
            classified("S5", series="X5", channel="PRIVATE", on=date(2026, 9, 30)),
            classified("S6", series="i4", channel="PRIVATE"),
            classified("S7", net_price="0.00"),
            classified("N1", market="FR"),
            classified("N2", on=date(2025, 12, 31)),
            classified("N3", market="AT", series="X5", channel="EMPLOYEE"),
            classified("M1", currency="USD"),
            classified("C1", event_type="CANCELLATION", net_price=None),
            classified("R1", channel="RETAIL", reason="INVALID_CHANNEL"),
        ],
    )
    plan = rates.frames_of(spark, build_rate_plan(PLAN_MATRIX))
    # WHEN the plan is attached
    priced = sales.transform(rates.attach_plan(plan))
    # THEN BASE = round_half_up(net_price × rate + amount_per_unit, 2) from the row valid on
    # the event date; unmatched sales are NO_RATE, another currency CURRENCY_MISMATCH; the
    # other rows get nulls
    no_rate = "no BASE matrix row for market {} series {} channel {} on {}"
    expected = frame(
        spark,
        PRICED_FIELDS,
        [
            ("S1", D("0.03"), D("100"), "m1", D("1300.02"), None, None),  # 1 300.0165
            ("S2", D("0.05"), D("0"), "m2", D("5.03"), None, None),  # 5.025, half up
            ("S3", D("0.05"), D("0"), "m2", D("50.00"), None, None),
            ("S4", D("0.03"), D("100"), "m1", D("130.00"), None, None),  # valid_to exclusive
            ("S5", D("0.03"), D("100"), "m1", D("130.00"), None, None),
            ("S6", D("0.03"), D("100"), "m1", D("130.00"), None, None),  # series under '*'
            ("S7", D("0.03"), D("100"), "m1", D("100.00"), None, None),
            (
                "N1",
                None,
                None,
                None,
                None,
                "NO_RATE",
                no_rate.format("FR", 3, "FLEET", "2026-10-05"),
            ),
            (
                "N2",
                None,
                None,
                None,
                None,
                "NO_RATE",
                no_rate.format("DE", 3, "FLEET", "2025-12-31"),
            ),
            (
                "N3",
                None,
                None,
                None,
                None,
                "NO_RATE",
                no_rate.format("AT", "X5", "EMPLOYEE", "2026-10-05"),
            ),
            (
                "M1",
                D("0.03"),
                D("100"),
                "m1",
                None,
                "CURRENCY_MISMATCH",
                "currency USD differs from the matrix row's EUR",
            ),
            ("C1", None, None, None, None, None, None),
            ("R1", None, None, None, None, None, None),
        ],
    )
    assert_same_rows(priced, expected)


# --- rates.with_tier ---------------------------------------------------------------------

LADDER = (
    entry("*", "*", "BONUS", "0.5", "0.001"),
    entry("*", "*", "BONUS", "0.666667", "0.005"),
    entry("*", "*", "BONUS", "1.0", "0.01", "10"),
)
STATS_FIELDS: list[tuple[str, DataType]] = [
    ("dealer_id", StringType()),
    ("bonus_plan", IntegerType()),
    ("net_units", LongType()),
    ("target_units", LongType()),
]
TIER_FIELDS: list[tuple[str, DataType]] = [
    ("dealer_id", StringType()),
    ("bonus_tier", MIN_ATTAINMENT),
    ("bonus_rate", RATE),
    ("bonus_amount_per_unit", MONEY),
]


def test_with_tier_reaches_a_threshold_exactly_and_not_just_below(spark: SparkSession) -> None:
    # GIVEN the one ladder 0.5 / 0.666667 / 1.0 (plan 0) and dealers around its thresholds
    tiers = rates.frames_of(spark, build_rate_plan(LADDER)).tiers
    stats = frame(
        spark,
        STATS_FIELDS,
        [
            ("AT_HALF", 0, 1, 2),  # 0.5 exactly
            ("BELOW_HALF", 0, 499_999, 1_000_000),  # 0.499999
            ("AT_SECOND", 0, 666_667, 1_000_000),  # 0.666667 exactly
            ("BELOW_SECOND", 0, 2, 3),  # 0.666666…: below 0.666667
            ("BETWEEN", 0, 3, 4),  # 0.75
            ("AT_TOP", 0, 4, 4),  # 1.0 exactly
            ("JUST_BELOW_TOP", 0, 999_999, 1_000_000),
            ("ABOVE_TOP", 0, 9, 4),  # 2.25: the top tier is open
            ("NONE_SOLD", 0, 0, 2),
            ("NEGATIVE", 0, -1, 2),  # more cancellations than sales
            ("ZERO_TARGET", 0, 3, 0),
            ("NO_TARGET", 0, 3, None),
            ("NO_LADDER", None, 4, 4),
        ],
    )
    # WHEN the tier reached is joined
    reached = stats.transform(
        rates.with_tier(
            tiers, plan="bonus_plan", net_units="net_units", target_units="target_units"
        )
    )
    # THEN bonus_tier ≤ net_units / target_units < next tier, exactly; no positive target or
    # no ladder: no tier
    low = (D("0.5"), D("0.001"), D("0"))
    mid = (D("0.666667"), D("0.005"), D("0"))
    top = (D("1.0"), D("0.01"), D("10"))
    none = (None, None, None)
    expected = frame(
        spark,
        TIER_FIELDS,
        [
            ("AT_HALF", *low),
            ("BELOW_HALF", *none),
            ("AT_SECOND", *mid),
            ("BELOW_SECOND", *low),
            ("BETWEEN", *mid),
            ("AT_TOP", *top),
            ("JUST_BELOW_TOP", *mid),
            ("ABOVE_TOP", *top),
            ("NONE_SOLD", *none),
            ("NEGATIVE", *none),
            ("ZERO_TARGET", *none),
            ("NO_TARGET", *none),
            ("NO_LADDER", *none),
        ],
    )
    assert_same_rows(reached, expected)
