"""Cancellations (spec §2, §4.6): find the original sale, reject the ones that cannot claw back.

The original is a sale settled in this run (in any of its periods), else a sale the ledger holds
as settled for a period this run does not re-compute. A ledger sale of a re-computed period that
did not settle again is gone, so its cancellation is ORIGINAL_NOT_FOUND.

Cancellations are few (a few % of the rows): every frame here is small, and the run's sales and
the ledger are only ever filtered down to the originals these cancellations name.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)

from settlement.domain.calculation.rates import bonus_amount, with_reached_tier
from settlement.domain.calculation.rows import (
    ROW_KEY,
    Rule,
    is_cancellation,
    is_sale,
    settled_elsewhere,
    still_good,
)
from settlement.domain.reasons import RejectReason
from settlement.domain.schemas import CANCELLATION, MONEY, SALE


def settled_sales(rows: DataFrame, duplicates: DataFrame) -> DataFrame:
    """Sales no rule rejects: good after the row rules, the rate rules and duplicates."""
    good = rows.filter(still_good() & is_sale() & F.col("rate_reason").isNull())
    return good.join(duplicates.select(*ROW_KEY), ROW_KEY, "left_anti")


def pending_cancellations(rows: DataFrame, duplicates: DataFrame) -> DataFrame:
    """Cancellations good after the row rules and duplicates: what :func:`resolve` decides."""
    return (
        rows.filter(still_good() & is_cancellation())
        .join(duplicates.select(*ROW_KEY), ROW_KEY, "left_anti")
        .select(
            *ROW_KEY,
            "period",
            "transaction_id",
            "dealer_id",
            "currency",
            "original_transaction_id",
        )
    )


def _settled_elsewhere(ledger: DataFrame, periods: Sequence[str], event_type: str) -> DataFrame:
    return settled_elsewhere(ledger, periods).filter(F.col("event_type") == event_type)


def _named_by(pending: DataFrame, frame: DataFrame, column: str) -> DataFrame:
    """The rows of ``frame`` whose ``column`` is an original some ``pending`` cancellation names
    (``pending`` is small: the large side is only filtered)."""
    named = pending.select(F.col("original_transaction_id").alias("named_original"))
    return frame.join(named, F.col(column) == F.col("named_original"), "left_semi")


def _originals_in_run(sales: DataFrame, pending: DataFrame) -> DataFrame:
    return _named_by(pending, sales, "transaction_id").select(
        F.col("transaction_id").alias("run_original_id"),
        F.struct("period", "dealer_id", "currency", "net_price", "base_amount", "bonus_plan").alias(
            "original_in_run"
        ),
    )


def _originals_in_ledger(
    ledger: DataFrame, periods: Sequence[str], pending: DataFrame
) -> DataFrame:
    sales = _settled_elsewhere(ledger, periods, SALE)
    return _named_by(pending, sales, "transaction_id").select(
        F.col("transaction_id").alias("ledger_original_id"),
        F.struct("period", "dealer_id", "currency", "base_amount", "bonus_amount").alias(
            "original_in_ledger"
        ),
    )


def _cancelled_in_ledger(
    ledger: DataFrame, periods: Sequence[str], pending: DataFrame
) -> DataFrame:
    cancellations = _settled_elsewhere(ledger, periods, CANCELLATION)
    return (
        _named_by(pending, cancellations, "original_transaction_id")
        .groupBy(F.col("original_transaction_id").alias("ledger_cancelled_id"))
        .agg(F.min("transaction_id").alias("ledger_cancelled_by"))
    )


def _original_currency() -> Column:
    return F.coalesce(F.col("original_in_run.currency"), F.col("original_in_ledger.currency"))


def _reject(rule: Rule) -> dict[str, Column]:
    """Reject the cancellations still standing that meet ``rule``."""
    hit = F.col("reason").isNull() & rule.condition
    return {
        "reason": F.when(hit, F.lit(rule.reason.value)).otherwise(F.col("reason")),
        "detail": F.when(hit, rule.detail).otherwise(F.col("detail")),
    }


def resolve(
    pending: DataFrame, sales: DataFrame, ledger: DataFrame, periods: Sequence[str]
) -> DataFrame:
    """The ``pending`` cancellations with their original attached and ``reason`` / ``detail``
    set where one cannot claw back: ORIGINAL_NOT_FOUND, CURRENCY_MISMATCH (a cancellation must
    carry its original's currency), ALREADY_CANCELLED (the first valid one in run order wins; a
    published one wins over all). Null ``reason``: the cancellation settles.

    ``pending`` should be materialised: its size lets Spark broadcast it against the sales.
    """
    order = Window.partitionBy("original_transaction_id").orderBy(
        F.col("reason").isNotNull(), "period", "batch_id", "line_number"
    )
    no_original = Rule(
        F.col("original_in_run").isNull() & F.col("original_in_ledger").isNull(),
        RejectReason.ORIGINAL_NOT_FOUND,
        F.concat(
            F.lit("original_transaction_id "),
            F.col("original_transaction_id"),
            F.lit(" is no sale settled in this run nor in the ledger"),
        ),
    )
    other_currency = Rule(
        F.col("currency") != _original_currency(),
        RejectReason.CURRENCY_MISMATCH,
        F.concat_ws(
            " ",
            F.lit("currency"),
            F.col("currency"),
            F.lit("differs from the original sale's"),
            _original_currency(),
        ),
    )
    cancelled_in_run = Rule(
        F.col("cancellation_rank") > 1,
        RejectReason.ALREADY_CANCELLED,
        F.concat(F.lit("already cancelled by "), F.col("first_cancellation")),
    )
    cancelled_in_ledger = Rule(
        F.col("ledger_cancelled_id").isNotNull(),
        RejectReason.ALREADY_CANCELLED,
        F.concat(
            F.lit("already cancelled by "), F.col("ledger_cancelled_by"), F.lit(" (published)")
        ),
    )
    return (
        pending.join(
            _originals_in_run(sales, pending),
            F.col("original_transaction_id") == F.col("run_original_id"),
            "left",
        )
        .join(
            _originals_in_ledger(ledger, periods, pending),
            F.col("original_transaction_id") == F.col("ledger_original_id"),
            "left",
        )
        .withColumns({"reason": F.lit(None).cast("string"), "detail": F.lit(None).cast("string")})
        .withColumns(_reject(no_original))
        .withColumns(_reject(other_currency))
        .withColumns(
            {
                "cancellation_rank": F.row_number().over(order),
                "first_cancellation": F.first("transaction_id").over(order),
            }
        )
        .withColumns(_reject(cancelled_in_run))
        .join(
            _cancelled_in_ledger(ledger, periods, pending),
            F.col("original_transaction_id") == F.col("ledger_cancelled_id"),
            "left",
        )
        .withColumns(_reject(cancelled_in_ledger))
        .drop(
            "run_original_id",
            "ledger_original_id",
            "cancellation_rank",
            "first_cancellation",
            "ledger_cancelled_id",
            "ledger_cancelled_by",
        )
    )


def _negated(amount: Column) -> Column:
    return (-amount).cast(MONEY)


def clawbacks(cancellations: DataFrame, reached: DataFrame) -> DataFrame:
    """The resolved ``cancellations`` with ``clawback_base`` / ``clawback_bonus`` (spec §4.6):
    the negated BASE and BONUS of the original, as computed in this run at the original's own
    dealer and period (its tier from ``reached``, :func:`rates.reached_tiers`), else as
    published. Null for the rejected ones."""
    in_run = F.col("original_in_run").isNotNull()
    settles = F.col("reason").isNull()
    original_bonus = F.when(in_run, bonus_amount(F.col("original_in_run.net_price"))).otherwise(
        F.col("original_in_ledger.bonus_amount")
    )
    original_base = F.coalesce(
        F.col("original_in_run.base_amount"), F.col("original_in_ledger.base_amount")
    )
    return (
        cancellations.transform(
            with_reached_tier(
                reached,
                dealer=F.col("original_in_run.dealer_id"),
                period=F.col("original_in_run.period"),
                plan=F.col("original_in_run.bonus_plan"),
            )
        )
        .withColumns(
            {
                "clawback_base": F.when(settles, _negated(original_base)),
                "clawback_bonus": F.when(settles, _negated(original_bonus)),
            }
        )
        .select(*ROW_KEY, "reason", "detail", "clawback_base", "clawback_bonus")
    )
