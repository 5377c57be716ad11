"""The rate plan: the matrix rows of every key and date stretch, decided once (spec §4.1, §4.5)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from settlement.domain.calculation.rate_plan import (
    PlanEntry,
    RatePlan,
    Tier,
    build_rate_plan,
)
from tests.fixtures.calculation import matrix_entry

JAN, JUL = date(2026, 1, 1), date(2026, 7, 1)


entry = matrix_entry


def find(plan: RatePlan, series: str, channel: str, day: date) -> PlanEntry | None:
    for candidate in plan.entries:
        in_range = candidate.valid_from <= day and (
            candidate.valid_to is None or day < candidate.valid_to
        )
        if (candidate.series, candidate.channel) == (series, channel) and in_range:
            return candidate
    return None


def test_the_most_specific_base_row_wins_per_key() -> None:
    # GIVEN the worked example's BASE rows: (3, PRIVATE) and (*, *)
    specific = entry("3", "PRIVATE", "BASE", "0", "0.04")
    general = entry("*", "*", "BASE", "0", "0.03", "100")
    # WHEN the plan is built
    plan = build_rate_plan([specific, general])
    # THEN series 3 PRIVATE takes the specific row, everything else the wildcard row
    day = date(2026, 10, 5)
    assert plan.explicit_series == ("3",)
    assert find(plan, "3", "PRIVATE", day).base == specific  # type: ignore[union-attr]
    assert find(plan, "3", "FLEET", day).base == general  # type: ignore[union-attr]
    assert find(plan, "*", "PRIVATE", day).base == general  # type: ignore[union-attr]


def test_levels_go_series_then_channel_then_wildcard() -> None:
    # GIVEN rows at the (3, *) and (*, FLEET) levels
    by_series = entry("3", "*", "BASE", "0", "0.02")
    by_channel = entry("*", "FLEET", "BASE", "0", "0.01")
    # WHEN the plan is built
    plan = build_rate_plan([by_series, by_channel])
    day = date(2026, 10, 5)
    # THEN (series, *) is more specific than (*, channel); keys without a row have no BASE
    assert find(plan, "3", "FLEET", day).base == by_series  # type: ignore[union-attr]
    assert find(plan, "*", "FLEET", day).base == by_channel  # type: ignore[union-attr]
    assert find(plan, "*", "PRIVATE", day) is None


def test_a_row_ending_mid_year_splits_the_key_into_segments() -> None:
    # GIVEN a specific row valid until July and a wildcard row for the whole year
    until_july = entry("3", "PRIVATE", "BASE", "0", "0.04", valid_to=JUL)
    general = entry("*", "*", "BASE", "0", "0.03")
    # WHEN the plan is built
    plan = build_rate_plan([until_july, general])
    # THEN series 3 PRIVATE uses the specific row before July and the wildcard row from July on
    assert find(plan, "3", "PRIVATE", date(2026, 6, 30)).base == until_july  # type: ignore[union-attr]
    assert find(plan, "3", "PRIVATE", date(2026, 7, 1)).base == general  # type: ignore[union-attr]
    # AND a key whose choice never changes keeps one entry (adjacent segments merged)
    fleet = [e for e in plan.entries if (e.series, e.channel) == ("3", "FLEET")]
    assert [(e.valid_from, e.valid_to) for e in fleet] == [(JAN, None)]
    # AND nothing applies before the first valid_from
    assert find(plan, "*", "FLEET", date(2025, 12, 31)) is None


def test_bonus_tiers_form_a_ladder_of_the_most_specific_level() -> None:
    # GIVEN wildcard BONUS tiers and a series-level BONUS row for i4
    tiers = [entry("*", "*", "BONUS", t, r) for t, r in (("1.0", "0.01"), ("0.9", "0.005"))]
    i4 = entry("i4", "*", "BONUS", "0", "0.02")
    base = entry("*", "*", "BASE", "0", "0.03")
    # WHEN the plan is built
    plan = build_rate_plan([*tiers, i4, base])
    day = date(2026, 10, 5)
    general, for_i4 = find(plan, "*", "PRIVATE", day), find(plan, "i4", "PRIVATE", day)
    assert general is not None
    assert for_i4 is not None
    # THEN the wildcard ladder is sorted, each tier bounded by the next threshold
    assert plan.ladders[general.bonus_plan] == (  # type: ignore[index]
        Tier(Decimal("0.9"), Decimal("1.0"), Decimal("0.005"), Decimal("0")),
        Tier(Decimal("1.0"), None, Decimal("0.01"), Decimal("0")),
    )
    # AND i4 sales use only the series-level row
    assert plan.ladders[for_i4.bonus_plan] == (  # type: ignore[index]
        Tier(Decimal("0"), None, Decimal("0.02"), Decimal("0")),
    )
    # AND keys that share a ladder share its id
    assert find(plan, "*", "FLEET", day).bonus_plan == general.bonus_plan  # type: ignore[union-attr]


def test_markets_are_planned_independently() -> None:
    # GIVEN a series named only in the French matrix
    de = entry("*", "*", "BASE", "0", "0.03", market="DE")
    fr = entry("X5", "*", "BASE", "0", "0.05", market="FR")
    # WHEN the plan is built
    plan = build_rate_plan([de, fr])
    day = date(2026, 10, 5)
    # THEN a German X5 sale still finds the German wildcard row under its own series key
    german_x5 = [
        e for e in plan.entries if (e.market, e.series, e.channel) == ("DE", "X5", "FLEET")
    ]
    assert [e.base for e in german_x5] == [de]
    assert find(plan, "X5", "FLEET", day) is not None


def test_an_empty_matrix_gives_an_empty_plan() -> None:
    assert build_rate_plan([]) == RatePlan((), (), ())
