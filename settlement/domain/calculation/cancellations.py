"""Cancellations (spec §2, §4.6): find the original sale, reject the ones that cannot claw back.

The original is a sale settled in this run (in any of its periods), else a sale the ledger holds
as settled for a period this run does not re-compute. A ledger sale of a re-computed period that
did not settle again is gone, so its cancellation is ORIGINAL_NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)

from settlement.domain.calculation.rows import (
    Transform,
    is_cancellation,
    is_sale,
    reject_when,
    still_good,
)
from settlement.domain.reasons import RejectReason
from settlement.domain.schemas import CANCELLATION, SALE


def _settled_elsewhere(ledger: DataFrame, periods: Sequence[str], event_type: str) -> DataFrame:
    return ledger.filter(
        F.col("settled") & (F.col("event_type") == event_type) & ~F.col("period").isin(*periods)
    )


def _originals_in_run(rows: DataFrame) -> DataFrame:
    return rows.filter(is_sale() & still_good()).select(
        F.col("transaction_id").alias("run_original_id"),
        F.struct(
            "period", "dealer_id", "currency", "net_price", "base_amount", "bonus_candidates"
        ).alias("original_in_run"),
    )


def _originals_in_ledger(ledger: DataFrame, periods: Sequence[str]) -> DataFrame:
    return _settled_elsewhere(ledger, periods, SALE).select(
        F.col("transaction_id").alias("ledger_original_id"),
        F.struct("period", "dealer_id", "currency", "base_amount", "bonus_amount").alias(
            "original_in_ledger"
        ),
    )


def _cancelled_in_ledger(ledger: DataFrame, periods: Sequence[str]) -> DataFrame:
    return (
        _settled_elsewhere(ledger, periods, CANCELLATION)
        .groupBy(F.col("original_transaction_id").alias("ledger_cancelled_id"))
        .agg(F.min("transaction_id").alias("ledger_cancelled_by"))
    )


def _original_currency() -> Column:
    return F.coalesce(F.col("original_in_run.currency"), F.col("original_in_ledger.currency"))


def _check_cancellations(ledger: DataFrame, periods: Sequence[str]) -> Transform:
    def transform(cancellations: DataFrame) -> DataFrame:
        order = Window.partitionBy("original_transaction_id").orderBy(
            F.col("reason").isNotNull(), "period", "batch_id", "line_number"
        )
        return (
            cancellations.transform(
                reject_when(
                    F.col("original_in_run").isNull() & F.col("original_in_ledger").isNull(),
                    RejectReason.ORIGINAL_NOT_FOUND,
                    F.concat(
                        F.lit("original_transaction_id "),
                        F.col("original_transaction_id"),
                        F.lit(" is no sale settled in this run nor in the ledger"),
                    ),
                )
            )
            .transform(
                reject_when(
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
            )
            .withColumns(
                {
                    "cancellation_rank": F.row_number().over(order),
                    "first_cancellation": F.first("transaction_id").over(order),
                }
            )
            .transform(
                reject_when(
                    F.col("cancellation_rank") > 1,
                    RejectReason.ALREADY_CANCELLED,
                    F.concat(F.lit("already cancelled by "), F.col("first_cancellation")),
                )
            )
            .join(
                F.broadcast(_cancelled_in_ledger(ledger, periods)),
                F.col("original_transaction_id") == F.col("ledger_cancelled_id"),
                "left",
            )
            .transform(
                reject_when(
                    F.col("ledger_cancelled_id").isNotNull(),
                    RejectReason.ALREADY_CANCELLED,
                    F.concat(
                        F.lit("already cancelled by "),
                        F.col("ledger_cancelled_by"),
                        F.lit(" (published)"),
                    ),
                )
            )
            .drop(
                "cancellation_rank",
                "first_cancellation",
                "ledger_cancelled_id",
                "ledger_cancelled_by",
            )
        )

    return transform


def pending_cancellations() -> Column:
    """Cancellations no rule has rejected yet: the rows :func:`resolve_cancellations` handles."""
    return is_cancellation() & still_good()


def resolve_cancellations(rows: DataFrame, ledger: DataFrame, periods: Sequence[str]) -> DataFrame:
    """The :func:`pending_cancellations` of ``rows`` with ``original_in_run`` /
    ``original_in_ledger`` attached, after ORIGINAL_NOT_FOUND, CURRENCY_MISMATCH (a cancellation
    must carry its original's currency) and ALREADY_CANCELLED (the first valid one in run order
    wins; a published one wins over all).

    Only the cancellations: the caller keeps the other rows as they are and unions them back
    (:func:`with_resolved`), so this small frame can be materialised on its own.
    """
    return (
        rows.filter(pending_cancellations())
        .join(
            _originals_in_run(rows),
            F.col("original_transaction_id") == F.col("run_original_id"),
            "left",
        )
        .join(
            _originals_in_ledger(ledger, periods),
            F.col("original_transaction_id") == F.col("ledger_original_id"),
            "left",
        )
        .drop("run_original_id", "ledger_original_id")
        .transform(_check_cancellations(ledger, periods))
    )


def with_resolved(rows: DataFrame, cancellations: DataFrame) -> DataFrame:
    """``rows`` with their pending cancellations replaced by the resolved ``cancellations``."""
    pending = pending_cancellations()
    others = rows.filter(~pending | pending.isNull())
    return others.unionByName(cancellations, allowMissingColumns=True)
