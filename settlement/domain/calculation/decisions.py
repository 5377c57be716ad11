"""The few rows decided after the first pass (duplicates, cancellations), joined back by key.

Every input row carries its row-rule ``reason`` and its ``rate_reason`` from the first pass. The
rows that needed the whole run to decide (DUPLICATE_TRANSACTION, and every cancellation with its
clawback or its reject) are two small frames keyed by (batch_id, line_number); joining them back
gives each row its final reason in spec §2's order: row rules, duplicates, then the rate and
cancellation rules.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)

from settlement.domain.calculation.rows import ROW_KEY, is_cancellation


def decide(rows: DataFrame, duplicates: DataFrame, cancellations: DataFrame) -> DataFrame:
    """``rows`` with ``decided_reason``, ``decided_detail``, ``clawback_base`` and
    ``clawback_bonus``: from ``duplicates`` (DUPLICATE_TRANSACTION rows) or from the resolved
    ``cancellations`` (a settled one has a null reason and its clawbacks); null elsewhere.

    The two sets are disjoint (a duplicate is never resolved as a cancellation). Only
    cancellation rows look up the cancellations: for every other row the lookup key is null,
    so the join skips it instead of probing the hash map once per input row.
    """
    duplicate = _prefixed(duplicates, "duplicate_")
    resolved = _prefixed(cancellations, "cancellation_", keep=("clawback_base", "clawback_bonus"))
    return (
        rows.join(duplicate, _same_row(F.col, "duplicate_"), "left")
        .join(resolved, _same_row(_if_cancellation, "cancellation_"), "left")
        .withColumns(
            {
                "decided_reason": F.coalesce("duplicate_reason", "cancellation_reason"),
                "decided_detail": F.coalesce("duplicate_detail", "cancellation_detail"),
            }
        )
        .drop(*(c for c in (*duplicate.columns, *resolved.columns) if c.startswith(_PREFIXES)))
    )


_PREFIXES = ("duplicate_", "cancellation_")


def _prefixed(decided: DataFrame, prefix: str, *, keep: tuple[str, ...] = ()) -> DataFrame:
    """The row key, reason and detail of ``decided`` renamed with ``prefix``; ``keep`` as is."""
    named = (*ROW_KEY, "reason", "detail")
    return decided.select(*(F.col(c).alias(f"{prefix}{c}") for c in named), *keep)


def _if_cancellation(column: str) -> Column:
    return F.when(is_cancellation(), F.col(column))


def _same_row(own: Callable[[str], Column], prefix: str) -> Column:
    return (own("batch_id") == F.col(f"{prefix}batch_id")) & (
        own("line_number") == F.col(f"{prefix}line_number")
    )


def final_reason() -> Column:
    """The reject reason of a decided row, null when it settles."""
    return F.coalesce(F.col("reason"), F.col("decided_reason"), F.col("rate_reason"))


def final_detail() -> Column:
    return F.coalesce(F.col("detail"), F.col("decided_detail"), F.col("rate_detail"))


def settles() -> Column:
    """Decided rows no rule rejects: the settled transactions."""
    return final_reason().isNull()
