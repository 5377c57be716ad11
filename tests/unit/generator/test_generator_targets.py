"""Targets are aimed so attainment lands where intended (below, at and above each tier)."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from settlement.generator.targets import AIMS, aim_target

BANDS = {
    "below": lambda a: a < Fraction(9, 10),
    "at_0.9": lambda a: a == Fraction(9, 10),
    "just_below_1": lambda a: Fraction(9, 10) < a < 1,
    "at_1.0": lambda a: a == 1,
    "just_above_1": lambda a: 1 < a < Fraction(11, 10),
    "at_1.1": lambda a: a == Fraction(11, 10),
    "above": lambda a: a > Fraction(12, 10),
}


@given(aim=st.sampled_from(AIMS), units=st.integers(min_value=0, max_value=5_000))
def test_reached_aim_matches_the_attainment(aim: str, units: int) -> None:
    # GIVEN any aim and any count of net units WHEN the target is chosen
    reached, target = aim_target(aim, units)
    # THEN no-target aims give no row or 0, and every other target puts attainment in its band
    if aim == "none":
        assert target is None
    elif aim == "zero":
        assert target == 0
    else:
        assert target is not None
        assert target > 0
        assert BANDS[reached](Fraction(units, target))


def test_divisible_units_reach_the_exact_tiers() -> None:
    # GIVEN 99 net units (a multiple of 9 and 11) THEN the exact-tier aims are reachable
    assert aim_target("at_0.9", 99) == ("at_0.9", 110)
    assert aim_target("at_1.1", 99) == ("at_1.1", 90)
    assert aim_target("at_1.0", 99) == ("at_1.0", 99)


def test_unreachable_aims_fall_back() -> None:
    # GIVEN 10 units, not a multiple of 9 WHEN aiming at exactly 0.9 THEN just below 1.0 instead
    assert aim_target("at_0.9", 10) == ("just_below_1", 11)
    # GIVEN a dealer with no sales WHEN aiming above the top tier THEN attainment 0 is all we get
    assert aim_target("above", 0)[0] == "below"
