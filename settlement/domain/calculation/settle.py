"""The calculation composed: batch rows + reference snapshot -> the run's output frames."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame

from settlement.domain.calculation import outputs
from settlement.domain.calculation.attainment import apply_bonus, dealer_period_stats
from settlement.domain.calculation.cancellations import resolve_cancellations, with_resolved
from settlement.domain.calculation.rates import apply_base, attach_rates
from settlement.domain.calculation.rows import apply_row_rules, flag_duplicates, normalise

LOG = logging.getLogger(__name__)
# Used while pricing, read by no output: not kept with the priced rows.
INTERMEDIATE_COLUMNS = ("bonus_candidates", "original_in_run", "original_in_ledger")


@dataclass(frozen=True)
class SettlementFrames:
    """The outputs of one calculation (spec §6), all lazy except the cached intermediates."""

    lines: DataFrame
    dealer_summary: DataFrame
    rejects: DataFrame
    deltas: DataFrame
    batch_counts: DataFrame
    cached: tuple[DataFrame, ...] = ()

    def release(self) -> None:
        """Drop the cached intermediates once the outputs are written."""
        for frame in self.cached:
            frame.unpersist()


def classify_rows(
    transactions: DataFrame, matrix: DataFrame, ledger: DataFrame, periods: Sequence[str]
) -> DataFrame:
    """Row rules, duplicates and the matrix rows of every sale: the one pass over the input."""
    return (
        transactions.transform(normalise)
        .transform(apply_row_rules)
        .transform(flag_duplicates(ledger, periods))
        .transform(attach_rates(matrix))
        .transform(apply_base)
    )


def _materialised(frame: DataFrame, step: str) -> DataFrame:
    """Compute ``frame`` once and cut its lineage.

    Every later step reads the same intermediate; without this each one would re-plan (seconds
    of analysis for this many joins) and re-run it, and the input's line numbers (a
    partition-local row index) are computed exactly once.
    """
    started = time.perf_counter()
    materialised = frame.localCheckpoint(eager=True)
    LOG.info("calculation step %s took %.1fs", step, time.perf_counter() - started)
    return materialised


def settle(
    transactions: DataFrame,
    matrix: DataFrame,
    targets: DataFrame,
    ledger: DataFrame,
    *,
    periods: Sequence[str],
    run_id: str,
) -> SettlementFrames:
    """Settle the batch rows of ``periods`` against the reference snapshot.

    Parameters
    ----------
    transactions
        Rows of :data:`~settlement.domain.schemas.BATCH_ROWS_SCHEMA` (every input column a
        string; ``period`` is the batch's period, ``line_number`` its line in the file).
    matrix, targets, ledger
        The run's snapshot (``MATRIX_SCHEMA``, ``TARGETS_SCHEMA``, ``LEDGER_SCHEMA``).
    periods
        The periods the run re-computes; ledger rows of other periods are history.
    run_id
        Written into ``lines``.

    Returns
    -------
    SettlementFrames
        ``lines``, ``dealer_summary``, ``rejects``, ``deltas`` and ``batch_counts``. The
        classified rows, the (small) resolved cancellations, the dealer statistics and the
        priced rows are computed here, once each, and kept on the executors
        (``localCheckpoint``) so no output re-reads the input and no step runs twice; call
        :meth:`SettlementFrames.release` when done.
    """
    rows = _materialised(classify_rows(transactions, matrix, ledger, periods), "classify")
    cancellations = _materialised(resolve_cancellations(rows, ledger, periods), "cancellations")
    resolved = with_resolved(rows, cancellations)
    stats = _materialised(dealer_period_stats(resolved, targets), "dealer statistics")
    priced = _materialised(
        resolved.transform(apply_bonus(stats)).drop(*INTERMEDIATE_COLUMNS), "price"
    )
    settled_lines = outputs.lines(priced, run_id)
    return SettlementFrames(
        lines=settled_lines,
        dealer_summary=outputs.dealer_summary(settled_lines, stats, ledger, periods),
        rejects=outputs.rejects(priced),
        deltas=outputs.deltas(settled_lines, ledger, periods),
        batch_counts=outputs.batch_counts(priced),
        cached=(priced, stats, cancellations, rows),
    )
