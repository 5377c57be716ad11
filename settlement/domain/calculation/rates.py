"""Matrix rows for a sale (spec §4.1, §4.4, §4.5) with broadcast joins only, no shuffle.

The matrix is folded into *rate cards*: one row per (market, series, channel) holding the BASE
rows and BONUS rows of that key as arrays. Each sale joins the cards of its four specificity
levels on equality keys; array functions then keep the rows valid on the event date and pick the
most specific level that has any.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)

from settlement.domain.calculation.rows import Transform, is_sale, reject_when, still_good
from settlement.domain.reasons import RejectReason
from settlement.domain.schemas import ANY, BASE, BONUS, MONEY

# (series is exact, channel is exact) from most to least specific (spec §4.1).
LEVELS = ((True, True), (True, False), (False, True), (False, False))


def rate_cards(matrix: DataFrame) -> DataFrame:
    """Group the matrix by (market, series, channel) into ``base_rows`` / ``bonus_rows`` arrays.

    The struct puts ``min_attainment`` first so ``array_max`` picks the highest tier; the other
    fields make the order total, so the choice never depends on collection order.
    """
    entry = F.struct(
        "min_attainment",
        "rate",
        "amount_per_unit",
        "currency",
        "matrix_version",
        "valid_from",
        "valid_to",
    )

    def rows_of(component: str) -> Column:
        return F.filter(
            F.collect_list(F.when(F.col("component") == component, entry)), lambda r: r.isNotNull()
        )

    return matrix.groupBy("market", "series", "channel").agg(
        rows_of(BASE).alias("base_rows"), rows_of(BONUS).alias("bonus_rows")
    )


def _valid_on_event_date(rows: Column) -> Column:
    date = F.col("event_date")
    return F.filter(
        rows, lambda r: (r.valid_from <= date) & (r.valid_to.isNull() | (date < r.valid_to))
    )


def _first_non_empty(arrays: list[Column]) -> Column:
    return F.coalesce(*(F.when(F.size(a) > 0, a) for a in arrays))


def attach_rates(matrix: DataFrame) -> Transform:
    """Add ``base`` (the BASE row, or null) and ``bonus_candidates`` (BONUS rows of the most
    specific level with rows valid on the event date, or null) to every row still good."""

    def transform(df: DataFrame) -> DataFrame:
        cards = F.broadcast(rate_cards(matrix))
        joined = df
        for level, (series_exact, channel_exact) in enumerate(LEVELS):
            card = cards.filter(
                ((F.col("series") != ANY) if series_exact else (F.col("series") == ANY))
                & ((F.col("channel") != ANY) if channel_exact else (F.col("channel") == ANY))
            )
            keys = (
                ["market"]
                + (["series"] if series_exact else [])
                + (["channel"] if channel_exact else [])
            )
            card = card.select(
                *(F.col(k).alias(f"card{level}_{k}") for k in keys),
                F.col("base_rows").alias(f"base{level}"),
                F.col("bonus_rows").alias(f"bonus{level}"),
            )
            condition = [F.col(k) == F.col(f"card{level}_{k}") for k in keys]
            joined = joined.join(card, condition, "left").drop(*(f"card{level}_{k}" for k in keys))
        priced_row = is_sale() & still_good()
        levels = range(len(LEVELS))
        # Filter each level once in its own projection: the pick below reads every filtered
        # array twice, and higher-order functions are not shared as common subexpressions.
        valid = {
            f"{kind}{i}": F.when(priced_row, _valid_on_event_date(F.col(f"{kind}{i}")))
            for kind in ("base", "bonus")
            for i in levels
        }
        return (
            joined.withColumns(valid)
            .withColumns(
                {
                    "base": F.array_max(_first_non_empty([F.col(f"base{i}") for i in levels])),
                    "bonus_candidates": _first_non_empty([F.col(f"bonus{i}") for i in levels]),
                }
            )
            .drop(*valid)
        )

    return transform


def commission(net_price: Column, rate: Column, amount_per_unit: Column) -> Column:
    """``round_half_up(net_price × rate + amount_per_unit, 2)`` in exact decimal arithmetic."""
    return F.round(net_price * rate + amount_per_unit, 2).cast(MONEY)


def apply_base(df: DataFrame) -> DataFrame:
    """Reject sales without a BASE row (NO_RATE) or in another currency (CURRENCY_MISMATCH),
    and price the BASE of the others."""
    return (
        df.transform(
            reject_when(
                is_sale() & F.col("base").isNull(),
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
            )
        )
        .transform(
            reject_when(
                is_sale() & (F.col("currency") != F.col("base.currency")),
                RejectReason.CURRENCY_MISMATCH,
                F.concat_ws(
                    " ",
                    F.lit("currency"),
                    F.col("currency"),
                    F.lit("differs from the matrix row's"),
                    F.col("base.currency"),
                ),
            )
        )
        .withColumn(
            "base_amount",
            F.when(
                is_sale() & still_good(),
                commission(F.col("net_price"), F.col("base.rate"), F.col("base.amount_per_unit")),
            ),
        )
    )


def reached_tier(candidates: Column, net_units: Column, target_units: Column) -> Column:
    """The BONUS row with the highest ``min_attainment ≤ net_units / target_units``, or null.

    Compared as ``min_attainment × target_units ≤ net_units`` in exact decimals: no division, no
    rounding. Null when there is no target or the target is 0 (NO_TARGET).
    """
    target = target_units.cast("decimal(20,0)")
    units = net_units.cast("decimal(20,0)")
    reached = F.filter(candidates, lambda t: t.min_attainment * target <= units)
    return F.when(target_units > 0, F.array_max(reached))


def bonus_amount(net_price: Column, tier: Column) -> Column:
    """BONUS of a sale at ``tier`` (0 when no tier is reached)."""
    return F.coalesce(commission(net_price, tier.rate, tier.amount_per_unit), F.lit(0).cast(MONEY))
