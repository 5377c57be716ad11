"""The commission calculation as composable Spark transforms (spec §2, §4, §5, §6)."""

from settlement.domain.calculation.settle import SettlementFrames, classify_rows, settle

__all__ = ["SettlementFrames", "classify_rows", "settle"]
