"""The generated commission matrix passes the upload rules of spec §3 and covers what it must."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from settlement.generator import MATRIX_COLUMNS, write_corrected_matrix
from settlement.generator.catalog import CURRENCIES, MARKETS, Period
from settlement.generator.matrix import write_matrix
from tests.fixtures.generator import read_csv_rows

PERIOD = Period.parse("2026-10")


def matrix_rule_errors(rows: list[dict[str, str]]) -> list[str]:
    """The spec §3 rules, written here independently of the generator."""
    errors: list[str] = []
    windows: dict[tuple[str, ...], list[tuple[date, date]]] = defaultdict(list)
    for line, row in enumerate(rows, start=2):
        rate, minimum = Decimal(row["rate"]), Decimal(row["min_attainment"])
        amount = Decimal(row["amount_per_unit"] or "0")
        start = date.fromisoformat(row["valid_from"])
        end = date.fromisoformat(row["valid_to"]) if row["valid_to"] else date.max
        if row["component"] not in {"BASE", "BONUS"}:
            errors.append(f"row {line}: component")
        if row["component"] == "BASE" and minimum != 0:
            errors.append(f"row {line}: BASE min_attainment {minimum}")
        if minimum < 0 or not Decimal(0) <= rate <= Decimal(1):
            errors.append(f"row {line}: rate or min_attainment out of range")
        if rate.as_tuple().exponent < -6 or amount < 0 or amount.as_tuple().exponent < -2:  # type: ignore[operator]
            errors.append(f"row {line}: too many decimals or negative amount")
        if end <= start:
            errors.append(f"row {line}: valid_to <= valid_from")
        if row["currency"] != CURRENCIES[MARKETS.index(row["market"])]:
            errors.append(f"row {line}: currency of market")
        key = tuple(row[c] for c in ("market", "series", "channel", "component", "min_attainment"))
        key = (*key[:4], str(minimum))
        for other_start, other_end in windows[key]:
            if start < other_end and other_start < end:
                errors.append(f"row {line}: overlaps {key}")
        windows[key].append((start, end))
    return errors


@pytest.fixture
def matrix(tmp_path: Path) -> list[dict[str, str]]:
    return read_csv_rows(write_matrix(tmp_path / "matrix.csv", PERIOD))


def test_matrix_passes_the_upload_rules(matrix: list[dict[str, str]]) -> None:
    # GIVEN the matrix generated for a period
    # WHEN the spec §3 rules are checked THEN none is broken
    assert matrix_rule_errors(matrix) == []


def test_matrix_header_is_exactly_the_spec_columns(tmp_path: Path) -> None:
    path = write_matrix(tmp_path / "matrix.csv", PERIOD)
    assert path.read_text(encoding="utf-8").splitlines()[0] == ",".join(MATRIX_COLUMNS)


def test_matrix_has_every_level_ladders_and_mid_month_changes(matrix: list[dict[str, str]]) -> None:
    # GIVEN the generated matrix THEN it exercises every lookup level and validity edge
    base_levels = {
        (row["series"] == "*", row["channel"] == "*")
        for row in matrix
        if row["component"] == "BASE"
    }
    assert base_levels == {(False, False), (False, True), (True, False), (True, True)}
    wildcard_tiers = {
        row["min_attainment"]
        for row in matrix
        if row["component"] == "BONUS" and row["series"] == "*" and row["channel"] == "*"
    }
    assert {"0.9", "1.0", "1.1"} <= wildcard_tiers
    specific_tiers = {
        row["min_attainment"]
        for row in matrix
        if row["component"] == "BONUS" and row["series"] != "*"
    }
    assert specific_tiers - wildcard_tiers, "a series has its own ladder"
    inside = {d.isoformat() for d in (PERIOD.day(offset) for offset in range(1, PERIOD.days))}
    assert any(row["valid_from"] in inside for row in matrix), "a row starts mid-month"
    assert any(row["valid_to"] in inside for row in matrix), "a row ends mid-month"
    assert any(Decimal(row["amount_per_unit"]) > 0 for row in matrix)
    assert {row["market"] for row in matrix} == set(MARKETS)


def test_us_has_no_base_row_for_series_1(matrix: list[dict[str, str]]) -> None:
    # GIVEN the US rows WHEN looking for a BASE row a US series-1 sale could match THEN none
    matching = [
        row
        for row in matrix
        if row["market"] == "US" and row["component"] == "BASE" and row["series"] in {"1", "*"}
    ]
    assert matching == []


def test_corrected_matrix_changes_only_the_wildcard_base_rate(
    tmp_path: Path, matrix: list[dict[str, str]]
) -> None:
    # GIVEN a generated matrix WHEN it is corrected for FR
    original = write_matrix(tmp_path / "matrix.csv", PERIOD)
    corrected = read_csv_rows(write_corrected_matrix(original, tmp_path / "fixed.csv", market="FR"))
    # THEN it still passes the rules and differs only in FR's (*, *) BASE rate, 0.005 higher
    assert matrix_rule_errors(corrected) == []
    changed = [(old, new) for old, new in zip(matrix, corrected, strict=True) if old != new]
    assert len(changed) == 1
    old, new = changed[0]
    assert (new["market"], new["series"], new["channel"], new["component"]) == (
        "FR",
        "*",
        "*",
        "BASE",
    )
    assert Decimal(new["rate"]) - Decimal(old["rate"]) == Decimal("0.005")


def test_corrected_matrix_refuses_an_unknown_market(tmp_path: Path) -> None:
    original = write_matrix(tmp_path / "matrix.csv", PERIOD)
    with pytest.raises(ValueError, match="no \\(\\*, \\*\\) BASE row for market 'XX'"):
        write_corrected_matrix(original, tmp_path / "fixed.csv", market="XX")
    assert not (tmp_path / "fixed.csv").exists()
