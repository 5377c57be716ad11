"""The matrix folded into a rate plan (spec §4.1, §4.4, §4.5), decided once per run, not per sale.

Which matrix row applies to a sale depends only on its market, series, channel and event date,
and the matrix is small. So the choice is made here, in plain Python over the run's snapshot:
for every (market, series, channel) key and every stretch of dates on which the same rows are
valid (a *segment*), the plan holds the BASE row of the most specific level that has one, and
the BONUS tiers of the most specific level that has BONUS rows. The calculation then looks each
sale up with one broadcast hash join, and its tier with another, instead of searching the matrix
for every sale.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import pairwise
from typing import Any

from settlement.domain.schemas import ANY, BASE, BONUS, CHANNELS


@dataclass(frozen=True, order=True)
class MatrixEntry:
    """One row of the run's matrix snapshot (``valid_to`` exclusive, ``None`` when open)."""

    min_attainment: Decimal
    rate: Decimal
    amount_per_unit: Decimal
    currency: str
    matrix_version: str
    valid_from: date
    valid_to: date | None
    market: str
    series: str
    channel: str
    component: str

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> MatrixEntry:
        """From a snapshot row (``MATRIX_SCHEMA`` field names)."""
        return cls(**{name: record[name] for name in cls.__dataclass_fields__})

    def valid_throughout(self, start: date, end: date | None) -> bool:
        """Valid on every day of ``[start, end)`` (``end`` ``None``: open-ended)."""
        if self.valid_from > start:
            return False
        if self.valid_to is None:
            return True
        return end is not None and end <= self.valid_to

    @property
    def choice_key(self) -> tuple[Any, ...]:
        """A total order for the (invalid) case of two rows of one level valid together."""
        return (
            self.min_attainment,
            self.rate,
            self.amount_per_unit,
            self.currency,
            self.matrix_version,
            self.valid_from,
            self.valid_to is not None,
            self.valid_to or date.min,
        )


@dataclass(frozen=True)
class Tier:
    """A BONUS tier: reached when ``min_attainment ≤ attainment < next_min_attainment``."""

    min_attainment: Decimal
    next_min_attainment: Decimal | None
    rate: Decimal
    amount_per_unit: Decimal


@dataclass(frozen=True)
class PlanEntry:
    """The matrix rows that apply to sales of one key on the dates ``[valid_from, valid_to)``.

    ``bonus_plan`` names the tier ladder (:attr:`RatePlan.ladders`); ``None`` when no BONUS row
    applies. ``base`` is ``None`` when no BASE row applies (the sale is NO_RATE).
    """

    market: str
    series: str
    channel: str
    valid_from: date
    valid_to: date | None
    base: MatrixEntry | None
    bonus_plan: int | None


@dataclass(frozen=True)
class RatePlan:
    """The whole plan: entries by key and segment, and the BONUS ladders they refer to.

    ``explicit_series`` are the series named in some matrix row: a sale of any other series is
    looked up under ``*`` (only wildcard rows can apply to it).
    """

    entries: tuple[PlanEntry, ...]
    ladders: tuple[tuple[Tier, ...], ...]
    explicit_series: tuple[str, ...]


def levels(series: str, channel: str) -> list[tuple[str, str]]:
    """(series, channel) of the matrix levels from most to least specific (spec §4.1)."""
    return [(series, channel), (series, ANY), (ANY, channel), (ANY, ANY)]


def _segments(rows: Sequence[MatrixEntry]) -> list[tuple[date, date | None]]:
    """The stretches between consecutive validity boundaries, from the earliest valid_from."""
    bounds = sorted({r.valid_from for r in rows} | {r.valid_to for r in rows if r.valid_to})
    return [*pairwise(bounds), (bounds[-1], None)] if bounds else []


def _most_specific(
    valid: Sequence[MatrixEntry], series: str, channel: str, component: str
) -> list[MatrixEntry]:
    for level in levels(series, channel):
        found = [r for r in valid if r.component == component and (r.series, r.channel) == level]
        if found:
            return found
    return []


def _ladder(rows: Sequence[MatrixEntry]) -> tuple[Tier, ...]:
    best: dict[Decimal, MatrixEntry] = {}
    for row in rows:
        kept = best.get(row.min_attainment)
        if kept is None or row.choice_key > kept.choice_key:
            best[row.min_attainment] = row
    thresholds = sorted(best)
    if not thresholds:
        return ()
    return tuple(
        Tier(t, nxt, best[t].rate, best[t].amount_per_unit)
        for t, nxt in zip(thresholds, [*thresholds[1:], None], strict=True)
    )


def build_rate_plan(matrix: Iterable[MatrixEntry]) -> RatePlan:
    """Decide the BASE row and BONUS ladder of every key and segment of ``matrix``.

    Adjacent segments of a key with the same choice are merged, so an unchanging matrix gives
    one entry per key.
    """
    rows = list(matrix)
    explicit = sorted({r.series for r in rows if r.series != ANY})
    ladders: dict[tuple[Tier, ...], int] = {}
    entries: list[PlanEntry] = []
    for market in sorted({r.market for r in rows}):
        market_rows = [r for r in rows if r.market == market]
        segments = _segments(market_rows)
        for series in [*explicit, ANY]:
            for channel in CHANNELS:
                previous: PlanEntry | None = None
                for start, end in segments:
                    valid = [r for r in market_rows if r.valid_throughout(start, end)]
                    base_rows = _most_specific(valid, series, channel, BASE)
                    ladder = _ladder(_most_specific(valid, series, channel, BONUS))
                    base = max(base_rows, key=lambda r: r.choice_key) if base_rows else None
                    plan = ladders.setdefault(ladder, len(ladders)) if ladder else None
                    if base is None and plan is None:
                        previous = None
                        continue
                    if (
                        previous is not None
                        and previous.valid_to == start
                        and (previous.base, previous.bonus_plan) == (base, plan)
                    ):
                        entries[-1] = previous = PlanEntry(
                            market, series, channel, previous.valid_from, end, base, plan
                        )
                        continue
                    previous = PlanEntry(market, series, channel, start, end, base, plan)
                    entries.append(previous)
    return RatePlan(tuple(entries), tuple(ladders), tuple(explicit))
