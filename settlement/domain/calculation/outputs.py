"""The run outputs of spec §5/§6, derived from the priced rows (one row per input row)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce
from operator import or_

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)

from settlement.domain.calculation.decisions import final_detail, final_reason, settles
from settlement.domain.calculation.rates import bonus_amount, with_reached_tier
from settlement.domain.calculation.rows import is_cancellation, is_sale, raw_text
from settlement.domain.reasons import SUMMARY_FLAG_NO_TARGET
from settlement.domain.schemas import (
    DEALER_SUMMARY_SCHEMA,
    DELTAS_SCHEMA,
    MONEY,
    REJECTS_SCHEMA,
    column_names,
)
from settlement.domain.transactions import TRANSACTION_COLUMNS

SUMMARY_KEYS = ["period", "market", "dealer_id", "currency"]


def _money(value: Column) -> Column:
    return value.cast(MONEY)


def _zero() -> Column:
    return F.lit(0).cast(MONEY)


def lines(decided: DataFrame, stats: DataFrame, reached: DataFrame, run_id: str) -> DataFrame:
    """One row per settled transaction (``lines/``), priced.

    A sale earns its BASE and the BONUS of the tier its dealer reached over the whole period
    (retroactive tier, spec §4.5; ``reached`` from :func:`rates.reached_tiers`); a
    cancellation claws back its original's (spec §4.6).
    """
    own = stats.select(
        F.col("dealer_id").alias("own_dealer_id"),
        F.col("period").alias("own_period"),
        F.col("attainment").alias("own_attainment"),
    )
    sale = is_sale()
    priced = (
        decided.filter(settles())
        .join(
            F.broadcast(own),
            (F.col("dealer_id") == F.col("own_dealer_id"))
            & (F.col("period") == F.col("own_period")),
            "left",
        )
        .transform(
            with_reached_tier(
                reached, dealer=F.col("dealer_id"), period=F.col("period"), plan=F.col("bonus_plan")
            )
        )
        .withColumns(
            {
                "base_amount": F.when(sale, F.col("base_amount")).otherwise(F.col("clawback_base")),
                "bonus_amount": F.when(sale, bonus_amount(F.col("net_price"))).otherwise(
                    F.col("clawback_bonus")
                ),
                "attainment": F.col("own_attainment"),
            }
        )
    )
    return priced.select(
        F.lit(run_id).alias("run_id"),
        "period",
        "transaction_id",
        "original_transaction_id",
        "event_type",
        "event_date",
        "market",
        "dealer_id",
        "series",
        "channel",
        "net_price",
        "currency",
        "base_rate",
        "base_amount_per_unit",
        "attainment",
        "bonus_tier",
        "bonus_rate",
        "matrix_version",
        "base_amount",
        "bonus_amount",
        _money(F.col("base_amount") + F.col("bonus_amount")).alias("amount"),
        "batch_id",
        "line_number",
    )


def rejects(decided: DataFrame) -> DataFrame:
    """One row per rejected input row, with the raw row as read (``rejects/``)."""
    frame = decided.filter(~settles()).select(
        "batch_id",
        "period",
        "line_number",
        raw_text("transaction_id").alias("transaction_id"),
        final_reason().alias("reason"),
        final_detail().alias("detail"),
        *(raw_text(c).alias(f"raw_{c}") for c in TRANSACTION_COLUMNS),
    )
    return frame.select(*column_names(REJECTS_SCHEMA))


def batch_counts(decided: DataFrame) -> DataFrame:
    """rows_in, rows_settled and rows_rejected per batch (``batch_counts/``)."""
    return decided.groupBy("batch_id", "period").agg(
        F.count(F.lit(1)).alias("rows_in"),
        F.sum(settles().cast("long")).alias("rows_settled"),
        F.sum((~settles()).cast("long")).alias("rows_rejected"),
    )


def _published(ledger: DataFrame, periods: Sequence[str]) -> DataFrame:
    return ledger.filter(F.col("period").isin(*periods))


def dealer_summary(
    settled_lines: DataFrame, targets: DataFrame, ledger: DataFrame, periods: Sequence[str]
) -> DataFrame:
    """Per (period, market, dealer_id, currency): units, attainment, tier, totals, and what
    was published before for it (``dealer_summary/``).

    ``bonus_tier`` is the highest tier any sale of the group reached (tiers can differ by series
    when the matrix has series-level BONUS rows). Dealers that had published lines but settle
    nothing now appear with zero totals, so their negative delta shows; their target comes from
    the ``targets`` snapshot all the same (attainment 0, not NO_TARGET, when they have one).

    Units are the group's own; ``attainment`` is the dealer's over all its groups of the period
    (a dealer selling in two markets or currencies reaches one attainment, spec §4.2-4.3), the
    figure its tiers were chosen by.
    """
    sale, cancellation = is_sale(), is_cancellation()
    current = settled_lines.groupBy(*SUMMARY_KEYS).agg(
        F.sum(sale.cast("long")).alias("sales_units"),
        F.sum(cancellation.cast("long")).alias("cancelled_units"),
        F.max(F.when(sale, F.col("bonus_tier"))).alias("bonus_tier"),
        F.sum(F.when(sale, F.col("base_amount"))).alias("base_total"),
        F.sum(F.when(sale, F.col("bonus_amount"))).alias("bonus_total"),
        F.sum(F.when(cancellation, F.col("amount"))).alias("clawback_total"),
    )
    previous = (
        _published(ledger, periods)
        .filter(F.col("settled"))
        .groupBy(*SUMMARY_KEYS)
        .agg(F.sum(F.col("base_amount") + F.col("bonus_amount")).alias("previously_published"))
    )
    target = targets.select("dealer_id", "period", F.col("target_units").cast("long"))
    joined = current.join(previous, SUMMARY_KEYS, "full_outer").join(
        F.broadcast(target), ["dealer_id", "period"], "left"
    )
    units = {
        c: F.coalesce(F.col(c), F.lit(0).cast("long")) for c in ("sales_units", "cancelled_units")
    }
    money = {
        c: _money(F.coalesce(F.col(c), _zero()))
        for c in ("base_total", "bonus_total", "clawback_total", "previously_published")
    }
    has_target = F.col("target_units") > 0
    net_units = F.col("sales_units") - F.col("cancelled_units")
    total = F.col("base_total") + F.col("bonus_total") + F.col("clawback_total")
    return (
        joined.withColumns({**units, **money})
        .withColumns(
            {
                "net_units": net_units,
                "attainment": F.when(
                    has_target,
                    (
                        F.sum(net_units)
                        .over(Window.partitionBy("period", "dealer_id"))
                        .cast("decimal(20,0)")
                        / F.col("target_units").cast("decimal(20,0)")
                    ).cast(DEALER_SUMMARY_SCHEMA["attainment"].dataType),
                ),
                "flag": F.when(has_target, F.lit("")).otherwise(F.lit(SUMMARY_FLAG_NO_TARGET)),
                "total": _money(total),
            }
        )
        .withColumn("delta", _money(F.col("total") - F.col("previously_published")))
        .select(*column_names(DEALER_SUMMARY_SCHEMA))
    )


# Core View books a record under these: a transaction whose line now has another of them is
# reversed where it was published and published whole where it now is.
BOOKED_UNDER = ("period", "dealer_id", "currency")


# What the ledger keeps of a transaction besides where it is booked and its amounts: read by
# later runs (a cancellation's original decides ALREADY_CANCELLED and its clawback).
RESTAMPED = ("market", "event_type", "original_transaction_id")
_IDENTITY = (*BOOKED_UNDER, *RESTAMPED)


def published_before(ledger: DataFrame, periods: Sequence[str]) -> DataFrame | None:
    """The ledger rows of the run's periods, or None on a first run of them (asked once: on a
    large ledger the emptiness check is a scan)."""
    published = _published(ledger, periods)
    return None if published.isEmpty() else published


def deltas(settled_lines: DataFrame, published: DataFrame | None) -> DataFrame:
    """What to publish (spec §5): new lines against the ledger rows of the run's periods.

    A record goes out when the transaction is new to the ledger, when its settled status
    changes, or when its BASE or BONUS changes. A published transaction that no longer settles
    gets the reversing delta and new values 0. A ledger row already reversed counts as 0.

    A transaction that now settles under another period, dealer or currency
    (:data:`BOOKED_UNDER`) than it was published under (a multi-period run where its batch
    moved it) gets two records: the reversal of what was published, booked where it was
    (``ledger_entry`` false: the ledger row follows the second record), then its new line
    whole. A single record would net the two under the new place only.
    """
    if published is None:
        # A first run of its periods publishes every line whole: no join needed.
        return (
            _new_lines(settled_lines)
            .select(
                "transaction_id",
                *_IDENTITY,
                F.col("base_amount").alias("base_delta"),
                F.col("bonus_amount").alias("bonus_delta"),
                _money(F.col("base_amount") + F.col("bonus_amount")).alias("delta"),
                "base_amount",
                "bonus_amount",
                "settled",
                F.lit(True).alias("ledger_entry"),
            )
            .select(*column_names(DELTAS_SCHEMA))
        )
    records = _records(settled_lines, published)
    return records.filter(F.col("publish")).select(*column_names(DELTAS_SCHEMA))


def ledger_updates(settled_lines: DataFrame, published: DataFrame | None) -> DataFrame:
    """Ledger rows to rewrite without publishing anything (``ledger_updates/``).

    A transaction whose amounts and booking are unchanged publishes nothing, yet what the
    ledger keeps of it may have changed (:data:`RESTAMPED`: a cancellation now reversing
    another sale of the same amounts, say). Later runs read the ledger for duplicates and
    clawbacks, so it must say what now settles. The rows of ``deltas/``'s schema, deltas 0.
    Only cancellations are compared (a few % of the lines: a cheap second join): a sale whose
    market alone changed, with the same dealer, currency and amounts, is not rewritten.
    """
    if published is None:
        return settled_lines.sparkSession.createDataFrame([], DELTAS_SCHEMA)
    records = _records(settled_lines.filter(is_cancellation()), published.filter(is_cancellation()))
    restamped = ~F.col("publish") & F.col("restamped")
    return records.filter(restamped).select(*column_names(DELTAS_SCHEMA))


def clawbacks_elsewhere(
    ledger: DataFrame, published: DataFrame | None, periods: Sequence[str]
) -> DataFrame:
    """Published cancellations of other periods that reverse a sale published for the run's
    periods (``transaction_id, period, original_transaction_id``): few, and none on a first
    run of the periods. See :func:`later_clawbacks`."""
    if published is None:
        return ledger.sparkSession.createDataFrame(
            [], "transaction_id string, period string, original_transaction_id string"
        )
    sales_here = published.select(F.col("transaction_id").alias("original_transaction_id"))
    return (
        ledger.filter(F.col("settled") & is_cancellation() & ~F.col("period").isin(*periods))
        .join(sales_here, "original_transaction_id", "left_semi")
        .select("transaction_id", "period", "original_transaction_id")
    )


def later_clawbacks(deltas: DataFrame, clawbacks: DataFrame) -> DataFrame:
    """Per other period: how many published cancellations (``clawbacks``, from
    :func:`clawbacks_elsewhere`) reverse a sale whose BASE or BONUS the ``deltas`` change
    (``period, records``).

    Such a clawback was priced from the sale as published then (spec §4.6), so it stays as it
    is until its own period is re-computed: the operator is told which periods to re-run. The
    deltas are only read when there is such a clawback at all (then broadcast against them,
    see ``settle``).
    """
    if clawbacks.isEmpty():
        return clawbacks.sparkSession.createDataFrame([], "period string, records long")
    changed = deltas.filter((F.col("base_delta") != 0) | (F.col("bonus_delta") != 0)).select(
        F.col("transaction_id").alias("original_transaction_id")
    )
    # A moved transaction has two delta records: count each clawback once.
    return (
        changed.join(clawbacks, "original_transaction_id")
        .groupBy("period")
        .agg(F.countDistinct("transaction_id").alias("records"))
    )


def _new_lines(settled_lines: DataFrame) -> DataFrame:
    return settled_lines.select(
        "transaction_id", *_IDENTITY, "base_amount", "bonus_amount", F.lit(True).alias("settled")
    )


def _records(settled_lines: DataFrame, published: DataFrame) -> DataFrame:
    """Every candidate record of the new lines against the published ones, with ``publish``
    and ``restamped``."""
    old = published.select(
        F.col("transaction_id").alias("old_transaction_id"),
        *(F.col(c).alias(f"old_{c}") for c in _IDENTITY),
        F.col("settled").alias("old_settled"),
        F.when(F.col("settled"), F.col("base_amount")).otherwise(_zero()).alias("old_base"),
        F.when(F.col("settled"), F.col("bonus_amount")).otherwise(_zero()).alias("old_bonus"),
    )
    new = _new_lines(settled_lines)
    joined = new.join(old, F.col("transaction_id") == F.col("old_transaction_id"), "full_outer")
    moved = F.col("settled").isNotNull() & F.col("old_transaction_id").isNotNull()
    moved = moved & reduce(or_, [F.col(c) != F.col(f"old_{c}") for c in BOOKED_UNDER])
    records = F.when(moved, F.array(_reversal_of_old(_IDENTITY), _new_line_whole(_IDENTITY)))
    return joined.select(F.inline(records.otherwise(F.array(_net_change(_IDENTITY)))))


def _delta_record(
    transaction_id: Column,
    identity: dict[str, Column],
    new_amounts: tuple[Column, Column],
    old_amounts: tuple[Column, Column],
    *,
    settled: Column,
    ledger_entry: bool,
    publish: Column,
    restamped: Column | None = None,
) -> Column:
    base_delta = _money(new_amounts[0] - old_amounts[0])
    bonus_delta = _money(new_amounts[1] - old_amounts[1])
    changed = (base_delta != 0) | (bonus_delta != 0)
    return F.struct(
        transaction_id.alias("transaction_id"),
        *(value.alias(name) for name, value in identity.items()),
        base_delta.alias("base_delta"),
        bonus_delta.alias("bonus_delta"),
        _money(base_delta + bonus_delta).alias("delta"),
        _money(new_amounts[0]).alias("base_amount"),
        _money(new_amounts[1]).alias("bonus_amount"),
        settled.alias("settled"),
        F.lit(ledger_entry).alias("ledger_entry"),
        (publish | changed).alias("publish"),
        (F.lit(False) if restamped is None else restamped).alias("restamped"),
    )


def _net_change(identity: Sequence[str]) -> Column:
    """One record: the new values against what was published (either side may be absent)."""
    settled = F.col("settled").isNotNull()
    return _delta_record(
        F.coalesce("transaction_id", "old_transaction_id"),
        {c: F.coalesce(c, f"old_{c}") for c in identity},
        (F.coalesce("base_amount", _zero()), F.coalesce("bonus_amount", _zero())),
        (F.coalesce("old_base", _zero()), F.coalesce("old_bonus", _zero())),
        settled=settled,
        ledger_entry=True,
        publish=F.col("old_transaction_id").isNull() | (F.col("old_settled") != settled),
        restamped=settled
        & F.col("old_transaction_id").isNotNull()
        & reduce(or_, [~F.col(c).eqNullSafe(F.col(f"old_{c}")) for c in RESTAMPED]),
    )


def _reversal_of_old(identity: Sequence[str]) -> Column:
    return _delta_record(
        F.col("old_transaction_id"),
        {c: F.col(f"old_{c}") for c in identity},
        (_zero(), _zero()),
        (F.col("old_base"), F.col("old_bonus")),
        settled=F.lit(False),
        ledger_entry=False,
        publish=F.col("old_settled"),
    )


def _new_line_whole(identity: Sequence[str]) -> Column:
    return _delta_record(
        F.col("transaction_id"),
        {c: F.col(c) for c in identity},
        (F.col("base_amount"), F.col("bonus_amount")),
        (_zero(), _zero()),
        settled=F.lit(True),
        ledger_entry=True,
        publish=F.lit(True),
    )


__all__ = [
    "batch_counts",
    "clawbacks_elsewhere",
    "dealer_summary",
    "deltas",
    "later_clawbacks",
    "ledger_updates",
    "lines",
    "published_before",
    "rejects",
]
