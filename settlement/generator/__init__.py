"""Deterministic synthetic transaction batches, commission matrix and sales targets (issue 2)."""

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
