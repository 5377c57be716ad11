"""Units and attainment per dealer and period (spec §4.2, §4.3)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)

from settlement.domain.schemas import ATTAINMENT

DEALER_PERIOD = ["dealer_id", "period"]


def dealer_period_stats(
    sales: DataFrame, cancellations: DataFrame, targets: DataFrame
) -> DataFrame:
    """Per (dealer_id, period): settled sales and cancellations, net units, the target and the
    attainment to report.

    ``sales`` are the settled sales; ``cancellations`` the resolved ones (null ``reason``:
    settled). A cancellation counts in the period of its own event_date, for its own dealer.
    """
    sold = sales.groupBy(*DEALER_PERIOD).agg(F.count(F.lit(1)).alias("sales_units"))
    cancelled = (
        cancellations.filter(F.col("reason").isNull())
        .groupBy(*DEALER_PERIOD)
        .agg(F.count(F.lit(1)).alias("cancelled_units"))
    )
    units = {
        c: F.coalesce(F.col(c), F.lit(0).cast("long")) for c in ("sales_units", "cancelled_units")
    }
    target = targets.select(*DEALER_PERIOD, F.col("target_units").cast("long"))
    return (
        sold.join(cancelled, DEALER_PERIOD, "full_outer")
        .withColumns(units)
        .withColumn("net_units", F.col("sales_units") - F.col("cancelled_units"))
        .join(F.broadcast(target), DEALER_PERIOD, "left")
        .withColumn("attainment", attainment_value(F.col("net_units"), F.col("target_units")))
    )


def attainment_value(net_units: Column, target_units: Column) -> Column:
    """The attainment to report, ``decimal(18,6)`` (null without a positive target).

    Reporting only: tiers are chosen by exact comparison (:func:`rates.with_tier`), never from
    this rounded value.
    """
    ratio = net_units.cast("decimal(20,0)") / target_units.cast("decimal(20,0)")
    return F.when(target_units > 0, ratio.cast(ATTAINMENT))
