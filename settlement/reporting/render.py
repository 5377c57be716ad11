"""Render a :class:`ReportModel` as one self-contained HTML page.

Inline CSS, inline SVG charts, no script and no external reference: the file can be mailed or
archived and opens offline. The template is autoescaped; only the generated SVG is trusted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from importlib import resources

import jinja2
from markupsafe import Markup

from settlement.reporting import formatting
from settlement.reporting.charts import Bar, bar_chart
from settlement.reporting.model import ReasonCount, ReportModel, TierPayout

_TEMPLATE = "report.html.j2"


def render_report(model: ReportModel) -> str:
    """The HTML page of one run report.

    Parameters
    ----------
    model
        The figures of the run (see :func:`settlement.reporting.load_report_model`).

    Returns
    -------
    str
        A complete HTML document with no external references.
    """
    template = _environment().get_template(_TEMPLATE)
    return template.render(
        m=model,
        rejects_chart=_rejects_chart(model.rejects_by_reason),
        rejects_total=sum(reason.rows for reason in model.rejects_by_reason),
        tier_charts=_tier_charts(model.tier_payouts),
    )


def _environment() -> jinja2.Environment:
    source = resources.files("settlement.reporting").joinpath("templates", _TEMPLATE).read_text()
    environment = jinja2.Environment(
        loader=jinja2.DictLoader({_TEMPLATE: source}),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        money=formatting.money,
        ratio=formatting.ratio,
        optional=formatting.optional,
        seconds=formatting.seconds,
        number=formatting.count,
    )
    return environment


def _rejects_chart(reasons: Sequence[ReasonCount]) -> Markup:
    bars = [Bar(r.reason, r.rows, f"{formatting.count(r.rows)} rows") for r in reasons]
    return Markup(bar_chart(bars, title="Rejected rows by reason"))  # noqa: S704 - escaped in charts


def _tier_charts(payouts: Sequence[TierPayout]) -> list[tuple[str, list[TierPayout], Markup]]:
    """One chart per currency: amounts of different currencies are not comparable."""
    by_currency: dict[str, list[TierPayout]] = defaultdict(list)
    for payout in payouts:
        by_currency[payout.currency].append(payout)
    charts = []
    for currency, tiers in sorted(by_currency.items()):
        bars = [
            Bar(tier.tier, tier.total, f"{formatting.money(tier.total)} {currency}")
            for tier in tiers
        ]
        svg = Markup(bar_chart(bars, title=f"Payout by bonus tier, {currency}"))  # noqa: S704
        charts.append((currency, tiers, svg))
    return charts
