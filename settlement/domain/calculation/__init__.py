"""The commission calculation as composable Spark transforms (spec §2, §4, §5, §6)."""

from settlement.domain.calculation.settle import Materialise, SettlementFrames, in_memory, settle

__all__ = ["Materialise", "SettlementFrames", "in_memory", "settle"]
