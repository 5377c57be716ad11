"""Row rules of spec §2: normalise the raw strings, parse them, and reject what fails.

Every transform keeps one row per input row and records the first failing rule in ``reason`` /
``detail`` (null while the row is still good), so later rules only look at rows still standing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)

from settlement.domain.reasons import RejectReason
from settlement.domain.schemas import (
    ALWAYS_REQUIRED_COLUMNS,
    CANCELLATION,
    CHANNELS,
    EVENT_TYPES,
    MONEY,
    SALE,
    TRANSACTION_COLUMNS,
)

Transform = Callable[[DataFrame], DataFrame]

DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# Up to 16 integer digits so the value fits decimal(18,2); at most 2 decimals; no sign.
AMOUNT_PATTERN = r"^[0-9]{1,16}(\.[0-9]{1,2})?$"


def still_good() -> Column:
    """Rows no rule has rejected yet."""
    return F.col("reason").isNull()


def is_sale() -> Column:
    return F.col("event_type") == SALE


def is_cancellation() -> Column:
    return F.col("event_type") == CANCELLATION


def reject_when(condition: Column, reason: RejectReason, detail: Column) -> Transform:
    """Reject the rows still good that meet ``condition`` with ``reason`` and ``detail``."""

    def transform(df: DataFrame) -> DataFrame:
        hit = still_good() & condition
        return df.withColumns(
            {
                "reason": F.when(hit, F.lit(reason.value)).otherwise(F.col("reason")),
                "detail": F.when(hit, detail).otherwise(F.col("detail")),
            }
        )

    return transform


def normalise(df: DataFrame) -> DataFrame:
    """Keep the raw row in ``raw``; trim every value and turn empty strings into nulls."""
    cleaned = [F.when(F.trim(c) != "", F.trim(c)).alias(c) for c in TRANSACTION_COLUMNS]
    raw = F.struct(*(F.col(c).alias(f"raw_{c}") for c in TRANSACTION_COLUMNS)).alias("raw")
    return df.select(
        "batch_id",
        "period",
        "line_number",
        raw,
        *cleaned,
        F.lit(None).cast("string").alias("reason"),
        F.lit(None).cast("string").alias("detail"),
    )


def _first_missing() -> Column:
    checks = [F.when(F.col(c).isNull(), F.lit(c)) for c in ALWAYS_REQUIRED_COLUMNS]
    checks.append(
        F.when(
            is_cancellation() & F.col("original_transaction_id").isNull(), "original_transaction_id"
        )
    )
    return F.coalesce(*checks)


def _quoted(column: str) -> Column:
    return F.concat(F.lit(f"{column} '"), F.col(column), F.lit("'"))


def apply_row_rules(df: DataFrame) -> DataFrame:
    """Parse ``event_date`` and ``net_price`` and apply the per-row rules in spec §2's order.

    MISSING_FIELD, INVALID_DATE, INVALID_AMOUNT (sales only: a cancellation's net_price is
    ignored), INVALID_EVENT_TYPE, INVALID_CHANNEL, OUT_OF_PERIOD.
    """
    date_ok = F.col("event_date").rlike(DATE_PATTERN)
    parsed_date = F.when(date_ok, F.expr("try_cast(event_date AS DATE)"))
    amount_ok = F.col("net_price").rlike(AMOUNT_PATTERN)
    parsed_price = F.when(is_sale() & amount_ok, F.col("net_price").cast(MONEY))
    return (
        df.transform(
            reject_when(
                _first_missing().isNotNull(),
                RejectReason.MISSING_FIELD,
                F.concat(_first_missing(), F.lit(" is empty")),
            )
        )
        .withColumns({"event_date_raw": F.col("event_date"), "net_price_raw": F.col("net_price")})
        .withColumns({"event_date": parsed_date, "net_price": parsed_price})
        .transform(
            reject_when(
                F.col("event_date").isNull(),
                RejectReason.INVALID_DATE,
                F.concat(
                    F.lit("event_date '"),
                    F.col("event_date_raw"),
                    F.lit("' is not a date YYYY-MM-DD"),
                ),
            )
        )
        .transform(
            reject_when(
                is_sale() & F.col("net_price").isNull(),
                RejectReason.INVALID_AMOUNT,
                F.concat(
                    F.lit("net_price '"),
                    F.coalesce(F.col("net_price_raw"), F.lit("")),
                    F.lit("' is not a decimal >= 0 with at most 2 decimals"),
                ),
            )
        )
        .transform(
            reject_when(
                ~F.col("event_type").isin(*EVENT_TYPES),
                RejectReason.INVALID_EVENT_TYPE,
                F.concat(_quoted("event_type"), F.lit(f" is not one of {', '.join(EVENT_TYPES)}")),
            )
        )
        .transform(
            reject_when(
                ~F.col("channel").isin(*CHANNELS),
                RejectReason.INVALID_CHANNEL,
                F.concat(_quoted("channel"), F.lit(f" is not one of {', '.join(CHANNELS)}")),
            )
        )
        .transform(
            reject_when(
                F.date_format("event_date", "yyyy-MM") != F.col("period"),
                RejectReason.OUT_OF_PERIOD,
                F.concat(
                    F.lit("event_date "),
                    F.col("event_date").cast("string"),
                    F.lit(" is outside the batch period "),
                    F.col("period"),
                ),
            )
        )
        .drop("event_date_raw", "net_price_raw")
    )


def _run_order() -> list[Column]:
    return [F.col("period"), F.col("batch_id"), F.col("line_number")]


def flag_duplicates(ledger: DataFrame, periods: Sequence[str]) -> Transform:
    """Reject DUPLICATE_TRANSACTION rows.

    A transaction_id is a duplicate when a row still good came earlier in the run, in the order
    (period, batch_id, line_number), or when the ledger holds it as settled for a period this run
    does not re-compute. Rows already rejected by a row rule do not count as seen.
    """

    def transform(df: DataFrame) -> DataFrame:
        first = Window.partitionBy("transaction_id").orderBy(
            F.col("reason").isNotNull(), *_run_order()
        )
        settled_elsewhere = ledger.filter(
            F.col("settled") & ~F.col("period").isin(*periods)
        ).select(
            F.col("transaction_id").alias("ledger_transaction_id"),
            F.col("period").alias("ledger_period"),
        )
        earlier = F.first(F.struct("batch_id", "line_number")).over(first)
        return (
            df.withColumns({"occurrence": F.row_number().over(first), "first_seen": earlier})
            .transform(
                reject_when(
                    F.col("occurrence") > 1,
                    RejectReason.DUPLICATE_TRANSACTION,
                    F.concat(
                        F.lit("transaction_id first seen in batch "),
                        F.col("first_seen.batch_id"),
                        F.lit(" line "),
                        F.col("first_seen.line_number").cast("string"),
                    ),
                )
            )
            .join(
                settled_elsewhere,
                F.col("transaction_id") == F.col("ledger_transaction_id"),
                "left",
            )
            .transform(
                reject_when(
                    F.col("ledger_transaction_id").isNotNull(),
                    RejectReason.DUPLICATE_TRANSACTION,
                    F.concat(
                        F.lit("transaction_id already settled for period "), F.col("ledger_period")
                    ),
                )
            )
            .drop("occurrence", "first_seen", "ledger_transaction_id", "ledger_period")
        )

    return transform
