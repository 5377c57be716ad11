"""bar_chart: inline SVG with lengths proportional to the sizes and exact texts."""

from __future__ import annotations

import re
from decimal import Decimal

from settlement.reporting.charts import Bar, bar_chart


def widths(svg: str) -> list[float]:
    return [
        float(w) for w in re.findall(r'<rect class="[^"]*" x="\d+" y="\d+" width="([\d.]+)"', svg)
    ]


def test_lengths_are_proportional_to_sizes() -> None:
    # GIVEN sizes 10, 5 and 0
    svg = bar_chart([Bar("a", 10, "10"), Bar("b", 5, "5"), Bar("c", 0, "0")], title="t")
    # THEN the second bar is half the first and the zero bar has no length
    first, second, third = widths(svg)
    assert second == first / 2
    assert third == 0.0


def test_negative_sizes_are_marked_and_texts_kept_exact() -> None:
    svg = bar_chart(
        [Bar("refunds", Decimal("-2250.00"), "-2250.00 EUR"), Bar("x", Decimal("1"), "1")],
        title="t",
    )
    assert 'class="bar negative"' in svg
    assert ">-2250.00 EUR<" in svg


def test_labels_are_escaped_and_no_namespace_url_is_emitted() -> None:
    svg = bar_chart([Bar("<i>", 1, "a&b")], title="t")
    assert "&lt;i&gt;" in svg
    assert "a&amp;b" in svg
    assert "http" not in svg


def test_no_bars_no_chart() -> None:
    assert bar_chart([], title="t") == ""
