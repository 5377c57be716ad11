"""Sales targets aimed at the dealers' actual net units, so attainment lands around every tier."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from settlement.generator.catalog import MARKETS, Roster

TARGET_COLUMNS = ("market", "dealer_id", "period", "target_units")
# Where a dealer's attainment is aimed: none = no target row, zero = target 0 (both NO_TARGET).
AIMS: tuple[str, ...] = (
    "none", "zero", "below", "at_0.9", "just_below_1", "at_1.0", "just_above_1", "at_1.1", "above",
)  # fmt: skip
AIM_SHARE = np.array([0.04, 0.03, 0.18, 0.08, 0.15, 0.16, 0.15, 0.06, 0.15])
FALLBACK = {
    "at_0.9": "just_below_1",
    "just_below_1": "below",
    "at_1.1": "just_above_1",
    "just_above_1": "above",
    "above": "at_1.0",
    "at_1.0": "below",
}


def _target_for(aim: str, units: int) -> int | None:
    """The target that puts `units` at `aim`, or None when no whole number does."""
    candidates = {
        "below": units * 10 // 7 + 1,
        "at_0.9": units * 10 // 9 if units > 0 and units % 9 == 0 else None,
        "just_below_1": units + 1 if units > 9 else None,
        "at_1.0": units if units > 0 else None,
        "just_above_1": units - 1 if units > 11 else None,
        "at_1.1": units * 10 // 11 if units > 0 and units % 11 == 0 else None,
        "above": units * 10 // 13 if units >= 2 else None,
    }
    return candidates[aim]


def aim_target(aim: str, units: int) -> tuple[str, int | None]:
    """The aim reached and the target units for a dealer with `units` valid net units.

    An aim no whole target reaches falls back to a neighbouring one; the target is None for a
    dealer that gets no target row at all.
    """
    if aim == "none":
        return aim, None
    if aim == "zero":
        return aim, 0
    target = _target_for(aim, units)
    while target is None or target <= 0:
        aim = FALLBACK[aim]
        target = _target_for(aim, units)
    return aim, target


def write_targets(
    path: Path,
    roster: Roster,
    net_units: np.ndarray,
    period: str,
    seed: int,
    *,
    kept: list[list[str]] | None = None,
) -> dict[str, int]:
    """Write the targets CSV and return how many dealers were aimed at each kind of attainment.

    Parameters
    ----------
    path : Path
        The CSV to write (atomically).
    roster : Roster
        The dealers; each gets an aim drawn from `AIMS` with `AIM_SHARE`.
    net_units : numpy.ndarray
        Valid net units per roster dealer in `period`.
    period : str
        The month, ``YYYY-MM``.
    seed : int
        Seeds the aims.
    kept : list of list of str, optional
        Rows (of other periods) to write first, unchanged.
    """
    rng = np.random.default_rng([seed, 11])
    aims = rng.choice(len(AIMS), roster.size, p=AIM_SHARE)
    rows: list[list[str]] = list(kept or [])
    aimed: dict[str, int] = dict.fromkeys(AIMS, 0)
    for dealer, dealer_id in enumerate(roster.dealer_ids):
        aim, target = aim_target(AIMS[int(aims[dealer])], max(int(net_units[dealer]), 0))
        aimed[aim] += 1
        if target is not None:
            market = MARKETS[int(roster.market_index[dealer])]
            rows.append([market, dealer_id, period, str(target)])
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(TARGET_COLUMNS)
        writer.writerows(rows)
    partial.replace(path)
    return aimed
