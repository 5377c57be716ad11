"""render_report: one self-contained HTML page with the exact figures of the run."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from settlement.reporting import load_report_model, render_report
from settlement.reporting.model import BatchReconciliation, ReportModel, RunHeader
from tests.unit.reporting.conftest import RunFixture

NOW = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)


@pytest.fixture
def html(finished_run: RunFixture) -> str:
    """WHEN the report of the finished run is rendered."""
    return render_report(load_report_model(finished_run.store, finished_run.run_id, now=NOW))


def section(html: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}">(.*?)</section>', html, re.S)
    assert match, f"section {section_id} missing"
    return match.group(1)


def test_totals_show_exact_decimal_strings(html: str) -> None:
    totals = section(html, "totals")
    for figure in ("11512.28", "2750.01", "-2260.05", "12002.24", "500.10", "50.01", "550.11"):
        assert f">{figure}<" in totals


def test_worked_example_dealer_figures_appear(html: str) -> None:
    dealers = section(html, "dealers")
    for figure in ("9500.02", "2750.01", "-2250.00", "10000.03", "1234.56", "767.65"):
        assert f">{figure}<" in dealers


def test_published_deltas_show_computed_and_recorded_totals(html: str) -> None:
    deltas = section(html, "deltas")
    for figure in ("4000.02", "1250.01", "5250.03", "12002.24"):
        assert f">{figure}<" in deltas
    assert "Records published: 9" in deltas


def test_header_facts(html: str) -> None:
    run = section(html, "run")
    for fact in ("run-2026-10-a", "SUCCEEDED", "ops@example.com", "mx-0007", "tg-0003", "61.5 s"):
        assert fact in run
    assert "ab12ab12" in run


def test_page_is_self_contained(html: str) -> None:
    # THEN nothing is fetched from anywhere: no URL, no external script or stylesheet
    assert "http://" not in html
    assert "https://" not in html
    assert "<script" not in html
    assert "<link" not in html
    assert html.count("<svg") == 3  # rejects + one tier chart per currency (EUR, GBP)


def test_charts_carry_exact_labels(html: str) -> None:
    rejects = section(html, "rejects")
    assert "NO_RATE" in rejects
    assert "2 rows" in rejects
    tiers = section(html, "tiers")
    assert "NO_TARGET" in tiers
    assert "no tier" in tiers
    assert "10000.03 EUR" in tiers


def test_data_is_escaped(html: str) -> None:
    # GIVEN a dealer id containing markup, THEN it is shown as text
    assert "&lt;b&gt;D4&lt;/b&gt;" in html
    assert "<b>D4</b>" not in html


def test_reconciled_batches_get_a_check_mark(html: str) -> None:
    reconciliation = section(html, "reconciliation")
    assert reconciliation.count("&#10003;") == 2


def test_unbalanced_batch_is_flagged() -> None:
    # GIVEN a batch whose counts do not add up
    model = ReportModel(
        header=RunHeader(run_id="r"),
        generated_at=NOW,
        batches=(BatchReconciliation("b1", "2026-10", 10, 7, 2),),
    )
    # THEN the report says by how much
    reconciliation = section(render_report(model), "reconciliation")
    assert "&#10003;" not in reconciliation
    assert "off by 1" in reconciliation


def test_unknown_facts_show_a_dash() -> None:
    # GIVEN a model that knows only the run id
    html = render_report(ReportModel(header=RunHeader(run_id="r-min"), generated_at=NOW))
    run = section(html, "run")
    # THEN state, requester, dry run and versions read "—"
    assert re.search(r"<dt>Requested by</dt><dd>—</dd>", run)
    assert re.search(r"<dt>Dry run</dt><dd>—</dd>", run)
    assert re.search(r"<dt>Matrix versions</dt><dd>—</dd>", run)
    assert "Records published: —" in section(html, "deltas")


def test_run_that_published_nothing_says_so() -> None:
    # GIVEN a model whose deltas/ output exists but is empty
    html = render_report(ReportModel(header=RunHeader(run_id="r"), generated_at=NOW))
    # THEN the deltas section says nothing changed and the rejects section shows no rows
    assert "Nothing to publish: no transaction changed." in section(html, "deltas")
    assert "No rejected rows." in section(html, "rejects")
