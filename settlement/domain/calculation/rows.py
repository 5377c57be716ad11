"""Row rules of spec §2: normalise the raw strings, parse them, and reject what fails.

:func:`parse_rows` is one projection: every row keeps its place, ``reason`` / ``detail`` hold
the first row rule it fails (null while it is good). :func:`duplicate_suspects` narrows the
transaction_ids worth a look with an aggregate of one hash per row; :func:`duplicate_rows` finds
the few DUPLICATE_TRANSACTION rows among them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)

from settlement.domain.reasons import RejectReason
from settlement.domain.schemas import (
    ALWAYS_REQUIRED_COLUMNS,
    BATCH_ROW_KEY_COLUMNS,
    CANCELLATION,
    CHANNELS,
    EVENT_TYPES,
    MONEY,
    SALE,
    TRANSACTION_COLUMNS,
)
from settlement.domain.transactions import AMOUNT_INTEGER_DIGITS

Transform = Callable[[DataFrame], DataFrame]

DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# At most AMOUNT_INTEGER_DIGITS integer digits (every amount computed from it then fits
# decimal(18,2)); at most 2 decimals; no sign.
AMOUNT_PATTERN = rf"^[0-9]{{1,{AMOUNT_INTEGER_DIGITS}}}(\.[0-9]{{1,2}})?$"
# The key of an input row: the joins of the few rows decided later (duplicates, cancellations).
ROW_KEY = ["batch_id", "line_number"]
# Parsed columns: their raw text is kept only when it differs from the value's own text.
PARSED_COLUMNS = ("event_date", "net_price")


@dataclass(frozen=True)
class Rule:
    """A reject rule: rows meeting ``condition`` fail with ``reason``, explained by ``detail``."""

    condition: Column
    reason: RejectReason
    detail: Column


def first_failing(rules: Sequence[Rule]) -> dict[str, Column]:
    """``reason`` and ``detail`` of the first rule a row fails (null when it fails none)."""
    first, *others = rules
    reason = F.when(first.condition, F.lit(first.reason.value))
    detail = F.when(first.condition, first.detail)
    for rule in others:
        reason = reason.when(rule.condition, F.lit(rule.reason.value))
        detail = detail.when(rule.condition, rule.detail)
    return {"reason": reason.cast("string"), "detail": detail.cast("string")}


def still_good() -> Column:
    """Rows no row rule has rejected."""
    return F.col("reason").isNull()


def is_sale() -> Column:
    return F.col("event_type") == SALE


def is_cancellation() -> Column:
    return F.col("event_type") == CANCELLATION


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


def _row_rules() -> list[Rule]:
    """Spec §2's per-row rules in order (a cancellation's net_price is ignored)."""
    return [
        Rule(
            _first_missing().isNotNull(),
            RejectReason.MISSING_FIELD,
            F.concat(_first_missing(), F.lit(" is empty")),
        ),
        Rule(
            F.col("parsed_date").isNull(),
            RejectReason.INVALID_DATE,
            F.concat(
                F.lit("event_date '"), F.col("event_date"), F.lit("' is not a date YYYY-MM-DD")
            ),
        ),
        Rule(
            is_sale() & F.col("parsed_price").isNull(),
            RejectReason.INVALID_AMOUNT,
            F.concat(
                F.lit("net_price '"),
                F.coalesce(F.col("net_price"), F.lit("")),
                F.lit(
                    "' is not a decimal >= 0 with at most 2 decimals"
                    f" and {AMOUNT_INTEGER_DIGITS} digits before the point"
                ),
            ),
        ),
        Rule(
            ~F.col("event_type").isin(*EVENT_TYPES),
            RejectReason.INVALID_EVENT_TYPE,
            F.concat(_quoted("event_type"), F.lit(f" is not one of {', '.join(EVENT_TYPES)}")),
        ),
        Rule(
            ~F.col("channel").isin(*CHANNELS),
            RejectReason.INVALID_CHANNEL,
            F.concat(_quoted("channel"), F.lit(f" is not one of {', '.join(CHANNELS)}")),
        ),
        Rule(
            F.date_format("parsed_date", "yyyy-MM") != F.col("period"),
            RejectReason.OUT_OF_PERIOD,
            F.concat(
                F.lit("event_date "),
                F.col("parsed_date").cast("string"),
                F.lit(" is outside the batch period "),
                F.col("period"),
            ),
        ),
    ]


def text_of(column: str) -> Column:
    """The text a stored column stands for (parsed values back in their canonical form)."""
    return F.col(column).cast("string")


def raw_text(column: str) -> Column:
    """The value of ``column`` exactly as read: the kept raw text, else the value's own text."""
    return F.coalesce(F.col(f"raw_{column}"), text_of(column))


def parse_rows(df: DataFrame) -> DataFrame:
    """Trim every value (empty becomes null), parse ``event_date`` and ``net_price``, and apply
    the row rules: MISSING_FIELD, INVALID_DATE, INVALID_AMOUNT (sales only), INVALID_EVENT_TYPE,
    INVALID_CHANNEL, OUT_OF_PERIOD, in spec §2's order.

    ``raw_<column>`` keeps a value exactly as read only where it differs from the cleaned or
    parsed value's text (surrounding spaces, an empty string, an unparsable date…), so the
    usual row carries no second copy; :func:`raw_text` gives the value as read either way.
    """
    cleaned = df.select(
        *BATCH_ROW_KEY_COLUMNS,
        *(F.col(c).alias(f"raw_{c}") for c in TRANSACTION_COLUMNS),
        *(F.when(F.trim(c) != "", F.trim(c)).alias(c) for c in TRANSACTION_COLUMNS),
    )
    date_ok = F.col("event_date").rlike(DATE_PATTERN)
    amount_ok = F.col("net_price").rlike(AMOUNT_PATTERN)
    parsed = cleaned.withColumns(
        {
            "parsed_date": F.when(date_ok, F.expr("try_cast(event_date AS DATE)")),
            "parsed_price": F.when(is_sale() & amount_ok, F.col("net_price").cast(MONEY)),
        }
    )
    checked = parsed.withColumns(first_failing(_row_rules()))
    kept_raw = {
        f"raw_{c}": F.when(~F.col(f"raw_{c}").eqNullSafe(text_of(c)), F.col(f"raw_{c}"))
        for c in TRANSACTION_COLUMNS
    }
    return (
        checked.drop(*PARSED_COLUMNS)
        .withColumnsRenamed({"parsed_date": "event_date", "parsed_price": "net_price"})
        .withColumns(kept_raw)
    )


def _id_hash() -> Column:
    return F.xxhash64("transaction_id").alias("id_hash")


def takes_its_id() -> Column:
    """A row that takes its transaction_id: it passed the row rules and has a rate (a sale
    rejected NO_RATE or CURRENCY_MISMATCH takes none). Across runs only settled rows are known
    (the ledger), so within a run a row that cannot settle must not take an id either, or the
    same inputs would publish one way in a run of both periods and another in two runs."""
    return still_good() & F.col("rate_reason").isNull()


def settled_elsewhere(ledger: DataFrame, periods: Sequence[str]) -> DataFrame:
    """Ledger rows settled for a period this run does not re-compute."""
    return ledger.filter(F.col("settled") & ~F.col("period").isin(*periods))


def duplicate_suspects(rows: DataFrame, ledger: DataFrame, periods: Sequence[str]) -> DataFrame:
    """``id_hash`` of the transaction_ids that may be duplicates: on more than one row that
    takes its id (:func:`takes_its_id`), or on one and in the ledger as settled for another
    period.

    One long per row is aggregated instead of sorting every row by its id. A hash collision
    only adds a suspect, which :func:`duplicate_rows` then clears by the id itself.
    """
    in_run = rows.filter(takes_its_id()).select(
        _id_hash(), F.lit(1).alias("run_rows"), F.lit(False).alias("in_ledger")
    )
    in_ledger = settled_elsewhere(ledger, periods).select(
        _id_hash(), F.lit(0).alias("run_rows"), F.lit(True).alias("in_ledger")
    )
    seen = (
        in_run.unionByName(in_ledger)
        .groupBy("id_hash")
        .agg(F.sum("run_rows").alias("run_rows"), F.max("in_ledger").alias("in_ledger"))
    )
    return seen.filter(
        (F.col("run_rows") > 1) | ((F.col("run_rows") == 1) & F.col("in_ledger"))
    ).select("id_hash")


def duplicate_rows(
    rows: DataFrame, ledger: DataFrame, periods: Sequence[str], suspects: DataFrame
) -> DataFrame:
    """The DUPLICATE_TRANSACTION rows of ``rows``: ``batch_id, line_number, reason, detail``.

    A transaction_id is a duplicate when a row that takes its id came earlier in the run, in the
    order (period, batch_id, line_number), or when the ledger holds it as settled for a period
    this run does not re-compute. Rows a row rule or a rate rule rejected do not count as seen.
    Only the rows and ledger entries of the ``suspects`` (:func:`duplicate_suspects`, a small
    frame) are compared, so the result is as cheap as the duplicates are few.
    """
    order = Window.partitionBy("transaction_id").orderBy("period", "batch_id", "line_number")
    candidates = (
        rows.filter(takes_its_id())
        .select("transaction_id", *BATCH_ROW_KEY_COLUMNS, _id_hash())
        .join(suspects, "id_hash", "left_semi")
        .withColumns(
            {
                "occurrence": F.row_number().over(order),
                "first_seen": F.first(F.struct("batch_id", "line_number")).over(order),
            }
        )
    )
    suspects_in_ledger = (
        settled_elsewhere(ledger, periods)
        .select("transaction_id", "period", _id_hash())
        .join(suspects, "id_hash", "left_semi")
        .select(
            F.col("transaction_id").alias("ledger_transaction_id"),
            F.col("period").alias("ledger_period"),
        )
    )
    in_run = F.col("occurrence") > 1
    in_ledger = F.col("ledger_transaction_id").isNotNull()
    detail = F.when(
        in_run,
        F.concat(
            F.lit("transaction_id first seen in batch "),
            F.col("first_seen.batch_id"),
            F.lit(" line "),
            F.col("first_seen.line_number").cast("string"),
        ),
    ).otherwise(
        F.concat(F.lit("transaction_id already settled for period "), F.col("ledger_period"))
    )
    return (
        candidates.join(
            suspects_in_ledger,
            F.col("transaction_id") == F.col("ledger_transaction_id"),
            "left",
        )
        .filter(in_run | in_ledger)
        .select(
            *ROW_KEY,
            F.lit(RejectReason.DUPLICATE_TRANSACTION.value).alias("reason"),
            detail.alias("detail"),
        )
    )
