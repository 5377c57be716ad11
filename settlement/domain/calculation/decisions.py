"""The few rows decided after the first pass (duplicates, cancellations), joined back by key.

Every input row carries its row-rule ``reason`` and its ``rate_reason`` from the first pass. The
rows that needed the whole run to decide (DUPLICATE_TRANSACTION, and every cancellation with its
clawback or its reject) are a small frame keyed by (batch_id, line_number); joining it back gives
each row its final reason in spec §2's order: row rules, duplicates, then the rate and
cancellation rules.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)

from settlement.domain.calculation.rows import ROW_KEY


def decisions(duplicates: DataFrame, cancellations: DataFrame) -> DataFrame:
    """``batch_id, line_number, decided_reason, decided_detail, clawback_base, clawback_bonus``
    of the duplicates and the resolved cancellations (settled ones with a null reason)."""
    named = {"reason": "decided_reason", "detail": "decided_detail"}
    return (
        duplicates.withColumnsRenamed(named)
        .unionByName(cancellations.withColumnsRenamed(named), allowMissingColumns=True)
        .select(*ROW_KEY, "decided_reason", "decided_detail", "clawback_base", "clawback_bonus")
    )


def decide(rows: DataFrame, decided: DataFrame) -> DataFrame:
    """``rows`` with the columns of :func:`decisions` (null where nothing was decided later)."""
    return rows.join(decided, ROW_KEY, "left")


def final_reason() -> Column:
    """The reject reason of a decided row, null when it settles."""
    return F.coalesce(F.col("reason"), F.col("decided_reason"), F.col("rate_reason"))


def final_detail() -> Column:
    return F.coalesce(F.col("detail"), F.col("decided_detail"), F.col("rate_detail"))


def settles() -> Column:
    """Decided rows no rule rejects: the settled transactions."""
    return final_reason().isNull()
