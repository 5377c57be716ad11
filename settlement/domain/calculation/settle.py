"""The calculation composed: batch rows + reference snapshot -> the run's output frames.

One pass reads and classifies every input row (row rules, rate plan, BASE); that result is
materialised once (the job keeps it as Parquet, so each later step reads only the columns it
needs). Everything decided across rows is small and kept in memory: the duplicates, the
cancellations with their originals, the dealer statistics. A second pass over the classified
rows joins those back by broadcast and prices the lines; the other outputs derive from the
classified rows and the materialised lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)

from settlement.domain.calculation import outputs
from settlement.domain.calculation.attainment import dealer_period_stats
from settlement.domain.calculation.cancellations import (
    clawbacks,
    pending_cancellations,
    resolve,
    settled_sales,
)
from settlement.domain.calculation.decisions import decide
from settlement.domain.calculation.rates import attach_plan, plan_frames, reached_tiers
from settlement.domain.calculation.rows import duplicate_rows, duplicate_suspects, parse_rows

LOG = logging.getLogger(__name__)

Materialise = Callable[[DataFrame, str], DataFrame]
"""Compute a large frame once and return a frame that reads the result (``name``: which)."""

CLASSIFIED = "classified"
LINES = "lines"


# A decided-later frame up to this many rows is broadcast to the joins with the input rows.
BROADCAST_ROWS = 2_000_000


def in_memory(frame: DataFrame, name: str) -> DataFrame:
    """The default :data:`Materialise`: keep on the executors (tests, small runs).

    ``localCheckpoint`` also cuts the lineage: every later plan starts from the result instead
    of repeating (and re-analysing) the steps that made it.
    """
    del name
    return frame.localCheckpoint(eager=True)


@dataclass(frozen=True)
class SettlementFrames:
    """The outputs of one calculation (spec §6); ``lines`` is materialised, the others lazy."""

    lines: DataFrame
    dealer_summary: DataFrame
    rejects: DataFrame
    deltas: DataFrame
    ledger_updates: DataFrame
    clawbacks_elsewhere: DataFrame
    batch_counts: DataFrame
    kept: tuple[DataFrame, ...] = field(default=())

    def release(self) -> None:
        """Drop the kept intermediates once the outputs are written."""
        for frame in self.kept:
            frame.unpersist()


def _small(frame: DataFrame, step: str) -> DataFrame:
    """Compute an intermediate that is normally small, keep it, and mark it for broadcast.

    The joins that follow then ship it to every task instead of shuffling the input rows; if it
    is not small after all (a batch sent twice under two ids: every row a duplicate) it is
    joined by shuffle instead.
    """
    started = time.perf_counter()
    kept = frame.localCheckpoint(eager=True)
    rows = kept.count()
    LOG.info("calculation step %s took %.1fs (%d rows)", step, time.perf_counter() - started, rows)
    return F.broadcast(kept) if rows <= BROADCAST_ROWS else kept


def _timed_materialise(materialise: Materialise, frame: DataFrame, name: str) -> DataFrame:
    started = time.perf_counter()
    result = materialise(frame, name)
    LOG.info("calculation step %s took %.1fs", name, time.perf_counter() - started)
    return result


def settle(
    transactions: DataFrame,
    matrix: DataFrame,
    targets: DataFrame,
    ledger: DataFrame,
    *,
    periods: Sequence[str],
    run_id: str,
    materialise: Materialise = in_memory,
) -> SettlementFrames:
    """Settle the batch rows of ``periods`` against the reference snapshot.

    Parameters
    ----------
    transactions
        Rows of :data:`~settlement.domain.schemas.BATCH_ROWS_SCHEMA` (every input column a
        string; ``period`` is the batch's period, ``line_number`` its line in the file).
    matrix, targets, ledger
        The run's snapshot (``MATRIX_SCHEMA``, ``TARGETS_SCHEMA``, ``LEDGER_SCHEMA``). The
        matrix is small and read once to decide the rate plan.
    periods
        The periods the run re-computes; ledger rows of other periods are history.
    run_id
        Written into ``lines``.
    materialise
        How the two large intermediates are kept: ``"classified"`` (every input row after the
        first pass) and ``"lines"`` (the priced lines, from which the summary and the deltas
        are derived). The job writes them as Parquet; the default keeps them on the
        executors (``localCheckpoint``).

    Returns
    -------
    SettlementFrames
        ``lines`` (materialised), ``dealer_summary``, ``rejects``, ``deltas`` and
        ``batch_counts``; call :meth:`SettlementFrames.release` when done.
    """
    started = time.perf_counter()
    plan = plan_frames(transactions.sparkSession, matrix)
    LOG.info("calculation step rate plan took %.1fs", time.perf_counter() - started)
    classified = _timed_materialise(
        materialise, transactions.transform(parse_rows).transform(attach_plan(plan)), CLASSIFIED
    )
    suspects = _small(duplicate_suspects(classified, ledger, periods), "duplicate suspects")
    duplicates = _small(duplicate_rows(classified, ledger, periods, suspects), "duplicates")
    pending = _small(pending_cancellations(classified, duplicates), "pending cancellations")
    sales = settled_sales(classified, duplicates)
    cancellations = _small(resolve(pending, sales, ledger, periods), "cancellations")
    stats = _small(dealer_period_stats(sales, cancellations, targets), "dealer statistics")
    reached = _small(reached_tiers(stats, plan.tiers), "tiers reached")
    resolved = _small(clawbacks(cancellations, reached), "clawbacks")
    decided = decide(classified, duplicates, resolved)
    settled_lines = _timed_materialise(
        materialise, outputs.lines(decided, stats, reached, run_id), LINES
    )
    published = outputs.published_before(ledger, periods)
    elsewhere = outputs.clawbacks_elsewhere(ledger, published, periods)
    if published is not None:  # a re-run: computed once, then checked against the deltas
        elsewhere = _small(elsewhere, "clawbacks elsewhere")
    return SettlementFrames(
        lines=settled_lines,
        dealer_summary=outputs.dealer_summary(settled_lines, targets, ledger, periods),
        rejects=outputs.rejects(decided),
        deltas=outputs.deltas(settled_lines, published),
        ledger_updates=outputs.ledger_updates(settled_lines, published),
        clawbacks_elsewhere=elsewhere,
        batch_counts=outputs.batch_counts(decided),
        kept=(
            elsewhere,
            settled_lines,
            resolved,
            reached,
            stats,
            cancellations,
            pending,
            duplicates,
            suspects,
            classified,
        ),
    )
