"""Column lists and Spark schemas of the calculation's inputs and outputs (spec §2, §6).

Transactions are read with every column as a string and parsed by the calculation, so a bad value
becomes a reject with a reason instead of a failed read. Money is ``decimal(18,2)``, rates
``decimal(7,6)``, tier thresholds ``decimal(12,6)`` and the reported attainment ``decimal(18,6)``.
"""

from __future__ import annotations

from pyspark.sql.types import (
    BooleanType,
    DataType,
    DateType,
    DecimalType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from settlement.domain import transactions

# Re-exported: the calculation reads the batch columns from here with its schemas.
TRANSACTION_COLUMNS = transactions.TRANSACTION_COLUMNS

MONEY = DecimalType(18, 2)
RATE = DecimalType(7, 6)
MIN_ATTAINMENT = DecimalType(12, 6)
ATTAINMENT = DecimalType(18, 6)

SALE = "SALE"
CANCELLATION = "CANCELLATION"
EVENT_TYPES = (SALE, CANCELLATION)
CHANNELS = ("PRIVATE", "FLEET", "EMPLOYEE")
BASE = "BASE"
BONUS = "BONUS"
ANY = "*"

# Required on every row; net_price is checked as INVALID_AMOUNT on sales and
# original_transaction_id as MISSING_FIELD on cancellations.
ALWAYS_REQUIRED_COLUMNS = tuple(
    c for c in TRANSACTION_COLUMNS if c not in ("net_price", "original_transaction_id")
)
BATCH_ROW_KEY_COLUMNS = ("batch_id", "period", "line_number")


def _struct(*fields: tuple[str, DataType]) -> StructType:
    return StructType([StructField(name, kind, True) for name, kind in fields])


RAW_TRANSACTION_SCHEMA = _struct(*((c, StringType()) for c in TRANSACTION_COLUMNS))
"""One batch file row as read: every column a string."""

BATCH_ROWS_SCHEMA = _struct(
    ("batch_id", StringType()),
    ("period", StringType()),
    ("line_number", LongType()),
    *((c, StringType()) for c in TRANSACTION_COLUMNS),
)
"""What ``settle`` takes: the raw rows of all batches with their batch, period and line."""

MATRIX_SCHEMA = _struct(
    ("matrix_version", StringType()),
    ("market", StringType()),
    ("series", StringType()),
    ("channel", StringType()),
    ("component", StringType()),
    ("min_attainment", MIN_ATTAINMENT),
    ("rate", RATE),
    ("amount_per_unit", MONEY),
    ("currency", StringType()),
    ("valid_from", DateType()),
    ("valid_to", DateType()),
)

TARGETS_SCHEMA = _struct(
    ("target_version", StringType()),
    ("market", StringType()),
    ("dealer_id", StringType()),
    ("period", StringType()),
    ("target_units", LongType()),
)

LEDGER_SCHEMA = _struct(
    ("transaction_id", StringType()),
    ("period", StringType()),
    ("event_type", StringType()),
    ("original_transaction_id", StringType()),
    ("dealer_id", StringType()),
    ("market", StringType()),
    ("currency", StringType()),
    ("base_amount", MONEY),
    ("bonus_amount", MONEY),
    ("settled", BooleanType()),
)

LINES_SCHEMA = _struct(
    ("run_id", StringType()),
    ("period", StringType()),
    ("transaction_id", StringType()),
    ("original_transaction_id", StringType()),
    ("event_type", StringType()),
    ("event_date", DateType()),
    ("market", StringType()),
    ("dealer_id", StringType()),
    ("series", StringType()),
    ("channel", StringType()),
    ("net_price", MONEY),
    ("currency", StringType()),
    ("base_rate", RATE),
    ("base_amount_per_unit", MONEY),
    ("attainment", ATTAINMENT),
    ("bonus_tier", MIN_ATTAINMENT),
    ("bonus_rate", RATE),
    ("matrix_version", StringType()),
    ("base_amount", MONEY),
    ("bonus_amount", MONEY),
    ("amount", MONEY),
    ("batch_id", StringType()),
    ("line_number", LongType()),
)

DEALER_SUMMARY_SCHEMA = _struct(
    ("period", StringType()),
    ("market", StringType()),
    ("dealer_id", StringType()),
    ("currency", StringType()),
    ("sales_units", LongType()),
    ("cancelled_units", LongType()),
    ("net_units", LongType()),
    ("target_units", LongType()),
    ("attainment", ATTAINMENT),
    ("bonus_tier", MIN_ATTAINMENT),
    ("flag", StringType()),
    ("base_total", MONEY),
    ("bonus_total", MONEY),
    ("clawback_total", MONEY),
    ("total", MONEY),
    ("previously_published", MONEY),
    ("delta", MONEY),
)

REJECTS_SCHEMA = _struct(
    ("batch_id", StringType()),
    ("period", StringType()),
    ("line_number", LongType()),
    ("transaction_id", StringType()),
    ("reason", StringType()),
    ("detail", StringType()),
    *((f"raw_{c}", StringType()) for c in TRANSACTION_COLUMNS),
)
"""``raw_<column>`` hold the row exactly as read (untrimmed strings)."""

DELTAS_SCHEMA = _struct(
    ("transaction_id", StringType()),
    ("period", StringType()),
    ("dealer_id", StringType()),
    ("currency", StringType()),
    ("base_delta", MONEY),
    ("bonus_delta", MONEY),
    ("delta", MONEY),
    ("base_amount", MONEY),
    ("bonus_amount", MONEY),
    ("market", StringType()),
    ("event_type", StringType()),
    ("original_transaction_id", StringType()),
    ("settled", BooleanType()),
    ("ledger_entry", BooleanType()),
)
"""Spec §6 columns, then what the ledger keeps per transaction (so finalise can update it);
``ledger_entry`` is false only for the reversal of a transaction booked elsewhere now."""

BATCH_COUNTS_SCHEMA = _struct(
    ("batch_id", StringType()),
    ("period", StringType()),
    ("rows_in", LongType()),
    ("rows_settled", LongType()),
    ("rows_rejected", LongType()),
)


def column_names(schema: StructType) -> list[str]:
    """The field names of ``schema`` in order."""
    return [field.name for field in schema.fields]
