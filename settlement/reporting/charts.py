"""Inline SVG bar charts, generated in Python so the report needs no script and no network.

Bar lengths are floats (pixels); the figures printed next to the bars are the caller's exact
text, so money shown in a chart is never a float.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

_LABEL_WIDTH = 190
_BAR_AREA = 360
_VALUE_WIDTH = 170
_ROW_HEIGHT = 26
_BAR_HEIGHT = 18


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its size (any sign) and the exact text shown beside it."""

    label: str
    size: Decimal | int
    text: str


def bar_chart(bars: Sequence[Bar], *, title: str) -> str:
    """A horizontal bar chart as inline ``<svg>`` markup (labels and texts escaped).

    Parameters
    ----------
    bars
        The bars, drawn top to bottom in the given order. Negative sizes are drawn with the
        ``negative`` class, with the length of their absolute value.
    title
        Accessible title of the chart.

    Returns
    -------
    str
        ``<svg …>…</svg>``; an empty string when there are no bars.
    """
    if not bars:
        return ""
    largest = max(abs(float(bar.size)) for bar in bars) or 1.0
    width = _LABEL_WIDTH + _BAR_AREA + _VALUE_WIDTH
    height = _ROW_HEIGHT * len(bars) + 4
    rows = [_row(index, bar, largest) for index, bar in enumerate(bars)]
    return (
        f'<svg class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>{"".join(rows)}</svg>'
    )


def _row(index: int, bar: Bar, largest: float) -> str:
    top = index * _ROW_HEIGHT + 2
    length = abs(float(bar.size)) / largest * _BAR_AREA
    # A non-zero value always gets a visible sliver.
    length = max(length, 2.0) if bar.size else 0.0
    middle = top + _BAR_HEIGHT / 2 + 4
    css = "bar negative" if bar.size < 0 else "bar"
    return (
        f'<text class="label" x="{_LABEL_WIDTH - 8}" y="{middle:.1f}" text-anchor="end">'
        f"{escape(bar.label)}</text>"
        f'<rect class="{css}" x="{_LABEL_WIDTH}" y="{top}" width="{length:.1f}" '
        f'height="{_BAR_HEIGHT}"><title>{escape(bar.label)}: {escape(bar.text)}</title></rect>'
        f'<text class="value" x="{_LABEL_WIDTH + length + 6:.1f}" y="{middle:.1f}">'
        f"{escape(bar.text)}</text>"
    )
