"""Text of the figures in the report: exact decimals, "—" for what is unknown."""

from __future__ import annotations

from decimal import Decimal

UNKNOWN = "—"


def money(value: Decimal | None) -> str:
    """The exact decimal text of ``value`` (fixed notation, no rounding, no grouping).

    ``Decimal("10000.03")`` → ``"10000.03"``; ``Decimal("-2250.00")`` → ``"-2250.00"``.
    """
    if value is None:
        return UNKNOWN
    return format(value, "f")


def ratio(value: Decimal | None) -> str:
    """Attainment and similar ratios, exact, trailing zeros dropped."""
    if value is None:
        return UNKNOWN
    normalized = value.normalize()
    return format(normalized, "f")


def optional(value: object) -> str:
    """Any optional fact as text; ``None`` and ``""`` become "—"."""
    if value is None or value == "":
        return UNKNOWN
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def seconds(value: float) -> str:
    """A step duration (timings are floats by nature; they are not money)."""
    return f"{value:.1f} s" if value < 600 else f"{value / 60:.1f} min"


def count(value: int | None) -> str:
    """A row count with thousands separators (counts are integers, grouping is safe)."""
    return UNKNOWN if value is None else f"{value:,}"
