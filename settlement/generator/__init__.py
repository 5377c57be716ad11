"""Deterministic synthetic transaction batches, commission matrix and sales targets (issue 2).

Decisions where the spec is silent:

- Batch ids are ``<period>-<source>-<nnnn>``, transaction ids ``TX-<yyyymm>-<source>-<n:09d>``:
  unique across periods and sources, so several months (or a second source for the same month)
  can share one directory.
- Parquet batches hold every column as a string with exactly the CSV's values (empty = null), so
  invalid values (``abc`` as a price, ``2026-10-32`` as a date) exist in both formats.
- Invalid rows carry exactly one defect each, cycling through the eleven reasons of spec §2;
  NO_RATE rows are US sales of series 1 (the US matrix has no BASE row for it at any level).
- Half of the cancellations repeat the original's net_price, half leave it empty (spec §2:
  ignored on a cancellation).
- ``reference/targets.csv`` keeps the rows of other periods already in it; ``matrix.csv`` is
  rewritten and covers every date since 2020-01-01 (mid-month changes fall in the last month
  generated).
"""

from __future__ import annotations

from settlement.generator.batches import WrittenBatch
from settlement.generator.catalog import COLUMNS, REASONS
from settlement.generator.chunk import CarriedSale
from settlement.generator.matrix import MATRIX_COLUMNS, write_corrected_matrix
from settlement.generator.month import GeneratedMonth, generate_month
from settlement.generator.targets import TARGET_COLUMNS

__all__ = [
    "COLUMNS",
    "MATRIX_COLUMNS",
    "REASONS",
    "TARGET_COLUMNS",
    "CarriedSale",
    "GeneratedMonth",
    "WrittenBatch",
    "generate_month",
    "write_corrected_matrix",
]
