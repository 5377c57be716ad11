"""Matrix rows for a sale (spec §4.1, §4.4, §4.5): lookups in the run's rate plan.

The plan (:mod:`settlement.domain.calculation.rate_plan`) is decided once from the snapshot;
here it becomes two small frames that every sale joins by broadcast: the plan entries on
(market, series, channel) with the event date inside the entry's dates, and the BONUS tier
ladders on (bonus_plan) with the attainment inside the tier's bounds. No shuffle, no search.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)
from pyspark.sql.types import DateType, IntegerType, StringType, StructField, StructType

from settlement.domain.calculation.rate_plan import MatrixEntry, RatePlan, build_rate_plan
from settlement.domain.calculation.rows import Rule, Transform, first_failing, is_sale, still_good
from settlement.domain.reasons import RejectReason
from settlement.domain.schemas import ANY, MIN_ATTAINMENT, MONEY, RATE

PLAN_SCHEMA = StructType(
    [
        StructField("plan_market", StringType()),
        StructField("plan_series", StringType()),
        StructField("plan_channel", StringType()),
        StructField("plan_valid_from", DateType()),
        StructField("plan_valid_to", DateType()),
        StructField("base_rate", RATE),
        StructField("base_amount_per_unit", MONEY),
        StructField("base_currency", StringType()),
        StructField("matrix_version", StringType()),
        StructField("bonus_plan", IntegerType()),
    ]
)
TIERS_SCHEMA = StructType(
    [
        StructField("tier_plan", IntegerType()),
        StructField("bonus_tier", MIN_ATTAINMENT),
        StructField("tier_next", MIN_ATTAINMENT),
        StructField("bonus_rate", RATE),
        StructField("bonus_amount_per_unit", MONEY),
    ]
)


@dataclass(frozen=True)
class PlanFrames:
    """The rate plan as broadcastable frames, and the series it names explicitly."""

    entries: DataFrame
    tiers: DataFrame
    explicit_series: tuple[str, ...]


def plan_frames(spark: SparkSession, matrix: DataFrame) -> PlanFrames:
    """Decide the rate plan of the (small) matrix snapshot and load it as two frames."""
    plan = build_rate_plan(MatrixEntry.from_record(row.asDict()) for row in matrix.collect())
    return frames_of(spark, plan)


def frames_of(spark: SparkSession, plan: RatePlan) -> PlanFrames:
    entries = [
        (
            e.market,
            e.series,
            e.channel,
            e.valid_from,
            e.valid_to,
            *(
                (e.base.rate, e.base.amount_per_unit, e.base.currency, e.base.matrix_version)
                if e.base
                else (None, None, None, None)
            ),
            e.bonus_plan,
        )
        for e in plan.entries
    ]
    tiers = [
        (plan_id, t.min_attainment, t.next_min_attainment, t.rate, t.amount_per_unit)
        for plan_id, ladder in enumerate(plan.ladders)
        for t in ladder
    ]
    return PlanFrames(
        entries=spark.createDataFrame(entries, PLAN_SCHEMA),
        tiers=spark.createDataFrame(tiers, TIERS_SCHEMA),
        explicit_series=plan.explicit_series,
    )


def _series_key(explicit_series: tuple[str, ...]) -> Column:
    if not explicit_series:
        return F.lit(ANY)
    return F.when(F.col("series").isin(*explicit_series), F.col("series")).otherwise(F.lit(ANY))


def commission(net_price: Column, rate: Column, amount_per_unit: Column) -> Column:
    """``round_half_up(net_price × rate + amount_per_unit, 2)`` in exact decimal arithmetic."""
    return F.round(net_price * rate + amount_per_unit, 2).cast(MONEY)


def _rate_rules() -> list[Rule]:
    return [
        Rule(
            F.col("base_rate").isNull(),
            RejectReason.NO_RATE,
            F.concat_ws(
                " ",
                F.lit("no BASE matrix row for market"),
                F.col("market"),
                F.lit("series"),
                F.col("series"),
                F.lit("channel"),
                F.col("channel"),
                F.lit("on"),
                F.col("event_date").cast("string"),
            ),
        ),
        Rule(
            F.col("currency") != F.col("base_currency"),
            RejectReason.CURRENCY_MISMATCH,
            F.concat_ws(
                " ",
                F.lit("currency"),
                F.col("currency"),
                F.lit("differs from the matrix row's"),
                F.col("base_currency"),
            ),
        ),
    ]


def attach_plan(plan: PlanFrames) -> Transform:
    """Give every sale still good its BASE row and BONUS ladder (``base_rate``,
    ``base_amount_per_unit``, ``matrix_version``, ``bonus_plan``), its
    ``base_amount``, and ``rate_reason`` / ``rate_detail`` (NO_RATE, CURRENCY_MISMATCH).

    Other rows get nulls. A rate rule is kept apart from ``reason`` because DUPLICATE_TRANSACTION
    comes first in spec §2's order and is decided later.
    """

    def transform(df: DataFrame) -> DataFrame:
        entry = F.broadcast(plan.entries)
        date = F.col("event_date")
        matches = (
            (F.col("market") == F.col("plan_market"))
            & (F.col("series_key") == F.col("plan_series"))
            & (F.col("channel") == F.col("plan_channel"))
            & (F.col("plan_valid_from") <= date)
            & (F.col("plan_valid_to").isNull() | (date < F.col("plan_valid_to")))
        )
        priced = is_sale() & still_good()
        rules = {k: F.when(priced, v) for k, v in first_failing(_rate_rules()).items()}
        base_amount = commission(
            F.col("net_price"), F.col("base_rate"), F.col("base_amount_per_unit")
        )
        return (
            df.withColumn("series_key", F.when(priced, _series_key(plan.explicit_series)))
            .join(entry, matches, "left")
            .withColumns({"rate_reason": rules["reason"], "rate_detail": rules["detail"]})
            .withColumn("base_amount", F.when(priced & F.col("rate_reason").isNull(), base_amount))
            .drop(
                "series_key",
                "base_currency",
                *(f.name for f in PLAN_SCHEMA if f.name.startswith("plan_")),
            )
        )

    return transform


def with_tier(tiers: DataFrame, *, plan: str, net_units: str, target_units: str) -> Transform:
    """Join the BONUS tier reached (``bonus_tier``, ``bonus_rate``, ``bonus_amount_per_unit``):
    the tier of ladder ``plan`` with ``bonus_tier ≤ net_units / target_units < tier_next``.

    Compared as ``bonus_tier × target_units ≤ net_units`` in exact decimals: no division, no
    rounding. No tier without a positive target (NO_TARGET) or below the lowest threshold.
    """
    target = F.col(target_units).cast("decimal(20,0)")
    units = F.col(net_units).cast("decimal(20,0)")
    reached = (
        (F.col(plan) == F.col("tier_plan"))
        & (F.col(target_units) > 0)
        & (F.col("bonus_tier") * target <= units)
        & (F.col("tier_next").isNull() | (units < F.col("tier_next") * target))
    )

    def transform(df: DataFrame) -> DataFrame:
        return df.join(F.broadcast(tiers), reached, "left").drop("tier_plan", "tier_next")

    return transform


def reached_tiers(stats: DataFrame, tiers: DataFrame) -> DataFrame:
    """The tier each dealer reached in each period on each ladder (spec §4.5): ``tier_dealer_id,
    tier_period, tier_plan, bonus_tier, bonus_rate, bonus_amount_per_unit``.

    Decided once per dealer, period and ladder (a small frame), so a sale finds its tier with an
    equality join instead of comparing decimals against every tier of its ladder.
    """
    ladders = tiers.select(F.col("tier_plan").alias("ladder")).distinct()
    return (
        stats.select("dealer_id", "period", "net_units", "target_units")
        .crossJoin(F.broadcast(ladders))
        .transform(
            with_tier(tiers, plan="ladder", net_units="net_units", target_units="target_units")
        )
        .filter(F.col("bonus_tier").isNotNull())
        .select(
            F.col("dealer_id").alias("tier_dealer_id"),
            F.col("period").alias("tier_period"),
            F.col("ladder").alias("tier_plan"),
            "bonus_tier",
            "bonus_rate",
            "bonus_amount_per_unit",
        )
    )


def with_reached_tier(
    reached: DataFrame, *, dealer: Column, period: Column, plan: Column
) -> Transform:
    """Join the tier of :func:`reached_tiers` for ``dealer``, ``period`` and ladder ``plan``
    (nulls when none is reached)."""
    matches = (
        (dealer == F.col("tier_dealer_id"))
        & (period == F.col("tier_period"))
        & (plan == F.col("tier_plan"))
    )

    def transform(df: DataFrame) -> DataFrame:
        return df.join(reached, matches, "left").drop("tier_dealer_id", "tier_period", "tier_plan")

    return transform


def bonus_amount(net_price: Column) -> Column:
    """BONUS of a sale at the tier joined by :func:`with_tier` (0 when none is reached)."""
    return F.coalesce(
        commission(net_price, F.col("bonus_rate"), F.col("bonus_amount_per_unit")),
        F.lit(0).cast(MONEY),
    )
