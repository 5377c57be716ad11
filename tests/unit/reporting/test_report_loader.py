"""load_report_model: figures of a run read exactly from the data store."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from settlement.adapters.storage import DataStore
from settlement.reporting import ReportDataError, RunNotFoundError, load_report_model
from settlement.reporting.model import CurrencyTotals, DeltaTotals, ReasonCount
from tests.unit.reporting.conftest import RUN_REPORT, RunFixture, write_run


def test_header_comes_from_run_report(finished_run: RunFixture) -> None:
    # WHEN the model of a finished run is loaded
    header = load_report_model(finished_run.store, finished_run.run_id).header
    # THEN the header carries what finalise recorded
    assert header.run_id == finished_run.run_id
    assert header.periods == ("2026-10",)
    assert (header.state, header.requested_by, header.dry_run) == (
        "SUCCEEDED",
        "ops@example.com",
        False,
    )
    assert header.matrix_versions == ("mx-0007",)
    assert dict(header.timings)["Calculate commissions"] == 61.5
    assert [b.batch_id for b in header.inputs] == ["b-de-1", "b-gb-1"]


def test_totals_are_exact_decimals(finished_run: RunFixture) -> None:
    # WHEN the model is loaded
    model = load_report_model(finished_run.store, finished_run.run_id)
    # THEN the totals are the decimal strings of run_report.json, as Decimal
    assert model.totals[0] == CurrencyTotals(
        "EUR", Decimal("11512.28"), Decimal("2750.01"), Decimal("-2260.05"), Decimal("12002.24")
    )
    assert model.totals_source == "run_report.json"


def test_batches_reconcile_and_get_their_period(finished_run: RunFixture) -> None:
    model = load_report_model(finished_run.store, finished_run.run_id)
    # THEN each batch shows its counts and whether in = settled + rejected
    assert [(b.batch_id, b.rows_in, b.rows_settled, b.rows_rejected) for b in model.batches] == [
        ("b-de-1", 11, 8, 3),
        ("b-gb-1", 2, 1, 1),
    ]
    assert all(b.balanced for b in model.batches)
    assert {b.period for b in model.batches} == {"2026-10"}


def test_rejects_are_counted_by_reason_most_frequent_first(finished_run: RunFixture) -> None:
    model = load_report_model(finished_run.store, finished_run.run_id)
    assert model.rejects_by_reason == (
        ReasonCount("NO_RATE", 2),
        ReasonCount("INVALID_AMOUNT", 1),
        ReasonCount("OUT_OF_PERIOD", 1),
    )


def test_payout_by_tier_separates_no_target_and_no_tier(finished_run: RunFixture) -> None:
    model = load_report_model(finished_run.store, finished_run.run_id)
    payouts = [(p.currency, p.tier, p.dealers, p.total) for p in model.tier_payouts]
    assert payouts == [
        ("EUR", "NO_TARGET", 1, Decimal("767.65")),
        ("EUR", "no tier", 1, Decimal("1234.56")),
        ("EUR", "≥ 1", 1, Decimal("10000.03")),
        ("GBP", "≥ 1", 1, Decimal("550.11")),
    ]


def test_top_dealers_are_ranked_within_each_currency(finished_run: RunFixture) -> None:
    model = load_report_model(finished_run.store, finished_run.run_id)
    assert [(r.currency, r.dealer_id) for r in model.top_dealers] == [
        ("EUR", "D1"),
        ("EUR", "D2"),
        ("EUR", "D3"),
        ("GBP", "<b>D4</b>"),
    ]
    assert model.top_dealers[0].attainment == Decimal("1")


def test_delta_totals_sum_every_part_exactly(finished_run: RunFixture) -> None:
    # GIVEN deltas spread over part=0 and part=1
    model = load_report_model(finished_run.store, finished_run.run_id)
    # THEN the sums cover both parts, exactly
    assert model.delta_totals == (
        DeltaTotals("EUR", 4, Decimal("4000.02"), Decimal("1250.01"), Decimal("5250.03")),
        DeltaTotals("GBP", 1, Decimal("500.10"), Decimal("50.01"), Decimal("550.11")),
    )
    assert model.published_records == 9
    assert [p.delta for p in model.published] == [Decimal("12002.24"), Decimal("550.11")]


def test_missing_run_is_an_error_naming_it(tmp_path: Path) -> None:
    # GIVEN an empty data store
    store = DataStore(str(tmp_path / "store"))
    # WHEN / THEN loading an unknown run fails with its id
    with pytest.raises(RunNotFoundError, match="run nope not found"):
        load_report_model(store, "nope")


def test_without_run_report_totals_come_from_dealer_summary(
    run_without_report: RunFixture,
) -> None:
    # WHEN run_report.json is absent
    model = load_report_model(run_without_report.store, run_without_report.run_id)
    # THEN the header is unknown and the totals are summed from dealer_summary
    assert model.header.state is None
    assert model.totals_source == "dealer_summary/"
    assert model.totals[0].total == Decimal("12002.24")
    assert model.totals[0].clawback_total == Decimal("-2260.05")
    assert "run_report.json" in model.missing


def test_optional_keys_may_be_absent(tmp_path: Path) -> None:
    # GIVEN a run_report.json with only the run id
    store = DataStore(str(tmp_path / "store"))
    write_run(store, "r1", run_report={"run_id": "r1"})
    # WHEN loaded
    model = load_report_model(store, "r1")
    # THEN unknown facts stay None / empty and batches come from batch_counts/
    assert model.header.requested_by is None
    assert model.header.dry_run is None
    assert model.published == ()
    assert model.published_records is None
    assert len(model.batches) == 2


def test_malformed_money_names_file_and_field(tmp_path: Path) -> None:
    # GIVEN a total that is not a decimal
    store = DataStore(str(tmp_path / "store"))
    broken = {**RUN_REPORT, "totals": [{**RUN_REPORT["totals"][0], "bonus_total": "12,5"}]}
    write_run(store, "r2", run_report=broken)
    # THEN the error names run_report.json and the field
    with pytest.raises(ReportDataError, match=r"runs/r2/run_report.json: totals\[0\].bonus_total"):
        load_report_model(store, "r2")


def test_float_money_is_refused(tmp_path: Path) -> None:
    # GIVEN a published delta written as a JSON number (a float)
    store = DataStore(str(tmp_path / "store"))
    broken = {**RUN_REPORT, "published": [{"currency": "EUR", "delta": 0.1}]}
    write_run(store, "r3", run_report=broken)
    with pytest.raises(ReportDataError, match=r"published\[0\].delta: 0.1 is a float"):
        load_report_model(store, "r3")


def test_empty_outputs_are_known_and_empty_not_missing(tmp_path: Path) -> None:
    # GIVEN a re-run that changed nothing: Spark left only _SUCCESS in deltas/ and rejects/
    store = DataStore(str(tmp_path / "store"))
    write_run(store, "r4", run_report=RUN_REPORT)
    for output in ("deltas", "rejects"):
        store.delete_prefix(f"runs/r4/{output}")
        store.write_bytes(f"runs/r4/{output}/_SUCCESS", b"")
    # WHEN loaded
    model = load_report_model(store, "r4")
    # THEN there is nothing to show, and the outputs are not reported as missing
    assert model.delta_totals == ()
    assert model.rejects_by_reason == ()
    assert "deltas/" not in model.missing
    assert "rejects/" not in model.missing
