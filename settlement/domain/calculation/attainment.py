"""Units, attainment and the retroactive BONUS tier (spec §4.2, §4.3, §4.5, §4.6)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)

from settlement.domain.calculation.rates import bonus_amount, reached_tier
from settlement.domain.calculation.rows import Transform, is_cancellation, is_sale, still_good
from settlement.domain.schemas import ATTAINMENT, MONEY


def dealer_period_stats(rows: DataFrame, targets: DataFrame) -> DataFrame:
    """Per (dealer_id, period): settled sales and cancellations, net units and the target.

    A cancellation counts in the period of its own event_date, for its own dealer.
    """
    units = (
        rows.filter(still_good())
        .groupBy("dealer_id", "period")
        .agg(
            F.sum(is_sale().cast("long")).alias("sales_units"),
            F.sum(is_cancellation().cast("long")).alias("cancelled_units"),
        )
        .withColumn("net_units", F.col("sales_units") - F.col("cancelled_units"))
    )
    target = targets.select("dealer_id", "period", F.col("target_units").cast("long"))
    return units.join(F.broadcast(target), ["dealer_id", "period"], "left")


def attainment_value(net_units: Column, target_units: Column) -> Column:
    """The attainment to report, ``decimal(18,6)`` (null without a positive target).

    Reporting only: tiers are chosen by :func:`reached_tier`, never from this rounded value.
    """
    ratio = net_units.cast("decimal(20,0)") / target_units.cast("decimal(20,0)")
    return F.when(target_units > 0, ratio.cast(ATTAINMENT))


def _stats_as(stats: DataFrame, prefix: str) -> DataFrame:
    return stats.select(
        *(
            F.col(c).alias(f"{prefix}{c}")
            for c in ("dealer_id", "period", "net_units", "target_units")
        )
    )


def _negated(amount: Column) -> Column:
    return (-amount).cast(MONEY)


def apply_bonus(stats: DataFrame) -> Transform:
    """Price the BONUS of every settled sale at the tier its dealer reached over the whole period,
    and the clawback of every settled cancellation (the negated BASE and BONUS of its original:
    as computed in this run, at the original's own dealer and period, else as published)."""

    def transform(rows: DataFrame) -> DataFrame:
        own = F.broadcast(_stats_as(stats, "own_"))
        orig = F.broadcast(_stats_as(stats, "orig_"))
        joined = rows.join(
            own,
            (F.col("dealer_id") == F.col("own_dealer_id"))
            & (F.col("period") == F.col("own_period")),
            "left",
        ).join(
            orig,
            (F.col("original_in_run.dealer_id") == F.col("orig_dealer_id"))
            & (F.col("original_in_run.period") == F.col("orig_period")),
            "left",
        )
        sale_tier = reached_tier(
            F.col("bonus_candidates"), F.col("own_net_units"), F.col("own_target_units")
        )
        original_tier = reached_tier(
            F.col("original_in_run.bonus_candidates"),
            F.col("orig_net_units"),
            F.col("orig_target_units"),
        )
        original_bonus = F.coalesce(
            F.when(
                F.col("original_in_run").isNotNull(),
                bonus_amount(F.col("original_in_run.net_price"), original_tier),
            ),
            F.col("original_in_ledger.bonus_amount"),
        )
        original_base = F.coalesce(
            F.col("original_in_run.base_amount"), F.col("original_in_ledger.base_amount")
        )
        settled_sale = is_sale() & still_good()
        settled_cancellation = is_cancellation() & still_good()
        return (
            joined.withColumn("tier", F.when(settled_sale, sale_tier))
            .withColumns(
                {
                    "attainment": attainment_value(
                        F.col("own_net_units"), F.col("own_target_units")
                    ),
                    "bonus_amount": F.when(
                        settled_sale, bonus_amount(F.col("net_price"), F.col("tier"))
                    ).when(settled_cancellation, _negated(original_bonus)),
                    "base_amount": F.when(settled_sale, F.col("base_amount")).when(
                        settled_cancellation, _negated(original_base)
                    ),
                }
            )
            .drop(*(c for c in joined.columns if c.startswith(("own_", "orig_"))))
        )

    return transform
