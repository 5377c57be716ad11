"""Parsing and validating matrix and targets files (spec §3)."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from settlement.domain.reference import (
    MatrixRow,
    ReferenceUploadError,
    TargetRow,
    parse_matrix,
    parse_reference,
    parse_targets,
)
from tests.unit.domain.reference.catalogue import (
    BASE_ROW,
    CATALOGUE,
    GOOD_MATRIX,
    MATRIX_COLUMNS,
    BadFile,
    excel_datetime,
    matrix_csv,
    targets_csv,
    xlsx,
)


def test_worked_example_matrix_parses_exactly() -> None:
    """GIVEN the matrix of the worked example WHEN parsed THEN five exact rows."""
    rows = parse_matrix("matrix.csv", GOOD_MATRIX)
    assert len(rows) == 5
    assert rows[1] == MatrixRow(
        "DE", "*", "*", "BASE", Decimal(0), Decimal("0.03"), Decimal(100), "EUR",
        date(2026, 1, 1), None,
    )  # fmt: skip
    assert [row.min_attainment for row in rows[2:]] == [
        Decimal("0.9"),
        Decimal("1.0"),
        Decimal("1.1"),
    ]


def test_bom_spaces_and_optional_columns_are_tolerated() -> None:
    """GIVEN a CSV with a BOM, padded cells, CRLF and no amount_per_unit/valid_to columns
    WHEN parsed THEN the values are read and the defaults apply."""
    header = " market , series,channel,component,min_attainment,rate,currency,valid_from"
    data = "\ufeff" + header + "\r\n DE , 3 ,PRIVATE, BASE ,0, 0.04 , EUR ,2026-01-01 \r\n"
    [row] = parse_matrix("m.csv", data.encode())
    assert (row.market, row.series, row.component, row.currency) == ("DE", "3", "BASE", "EUR")
    assert (row.rate, row.amount_per_unit, row.valid_to) == (Decimal("0.04"), Decimal(0), None)


def test_xlsx_number_and_date_cells_are_converted_exactly() -> None:
    """GIVEN an XLSX whose matrix sheet (not the first) has number and date cells
    WHEN parsed THEN floats become the decimals they display and datetimes at midnight dates."""
    rows: list[list[Any]] = [
        MATRIX_COLUMNS,
        [
            "DE",
            3,
            "PRIVATE",
            "BONUS",
            1.1,
            0.035,
            100.1,
            "EUR",
            excel_datetime(2026, 1, 1),
            date(2027, 1, 1),
        ],
    ]
    data = xlsx({"notes": [["ignore me"]], "matrix": rows})
    [row] = parse_matrix("m.xlsx", data)
    assert row.series == "3"
    assert (row.min_attainment, row.rate, row.amount_per_unit) == (
        Decimal("1.1"), Decimal("0.035"), Decimal("100.1"),
    )  # fmt: skip
    assert (row.valid_from, row.valid_to) == (date(2026, 1, 1), date(2027, 1, 1))


def test_xlsx_first_sheet_is_used_without_a_named_one() -> None:
    """GIVEN targets on the only sheet, with a period typed as a date by Excel WHEN parsed
    THEN the first sheet is read and the period is the month."""
    data = xlsx({"Sheet1": [["market", "dealer_id", "period", "target_units"],
                            ["DE", 1001, excel_datetime(2026, 10, 1), 4.0]]})  # fmt: skip
    assert parse_targets("t.xlsx", data) == [TargetRow("DE", "1001", "2026-10", 4)]


def test_xlsx_sheet_name_matches_whatever_its_case() -> None:
    """GIVEN a workbook whose first sheet is old notes and whose second is named "Matrix"
    WHEN parsed THEN the Matrix sheet is read (Excel's sheet names ignore case)."""
    data = xlsx({"old": [MATRIX_COLUMNS, ["DE", "*", "*", "BASE", 0, 0.02, 0, "EUR",
                                          excel_datetime(2026, 1, 1), None]],
                 "Matrix": [MATRIX_COLUMNS, BASE_ROW]})  # fmt: skip
    [row] = parse_matrix("m.xlsx", data)
    assert row.rate == Decimal("0.04")


def test_xlsx_rows_beyond_a_stale_declared_dimension_are_read() -> None:
    """GIVEN a workbook whose sheet declares the range A1:J2 (a tool wrote a stale dimension)
    but holds the five rows of the worked example WHEN parsed THEN all five are read, whole."""
    rows: list[list[Any]] = [MATRIX_COLUMNS]
    rows += (
        [c.strip() or None for c in line.split(",")] for line in GOOD_MATRIX.decode().split()[1:]
    )
    data = _with_declared_dimension(xlsx({"matrix": rows}), "A1:J2")
    parsed = parse_matrix("m.xlsx", data)
    assert parsed == parse_matrix("matrix.csv", GOOD_MATRIX)


def _with_declared_dimension(workbook: bytes, dimension: str) -> bytes:
    source, target = zipfile.ZipFile(io.BytesIO(workbook)), io.BytesIO()
    with zipfile.ZipFile(target, "w") as rewritten:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename.startswith("xl/worksheets/sheet"):
                content = re.sub(
                    rb'<dimension ref="[^"]*"', f'<dimension ref="{dimension}"'.encode(), content
                )
            rewritten.writestr(item, content)
    return target.getvalue()


def test_xlsx_datetime_with_a_time_is_refused() -> None:
    """GIVEN a valid_from cell holding a time of day WHEN parsed THEN an error names it."""
    data = xlsx({"matrix": [MATRIX_COLUMNS, [*BASE_ROW[:8], excel_datetime(2026, 1, 1, 12), None]]})
    with pytest.raises(ReferenceUploadError) as rejected:
        parse_matrix("m.xlsx", data)
    [error] = rejected.value.errors
    assert (error.row, error.column) == (2, "valid_from")
    assert "date and time" in error.reason


@pytest.mark.parametrize("bad", CATALOGUE, ids=[bad.name for bad in CATALOGUE])
def test_catalogue_of_bad_files(bad: BadFile) -> None:
    """GIVEN a bad file WHEN parsed THEN it is rejected with an error naming file, row,
    column and a clear reason."""
    with pytest.raises(ReferenceUploadError) as rejected:
        parse_reference(bad.kind, bad.file_name, bad.data)
    found = [(e.file, e.row, e.column) for e in rejected.value.errors]
    assert (bad.file_name, bad.row, bad.column) in found, rejected.value.errors
    [error] = [e for e in rejected.value.errors if (e.row, e.column) == (bad.row, bad.column)]
    assert bad.reason in error.reason


def test_a_file_without_rows_still_gets_its_column_errors() -> None:
    """GIVEN a one-line file whose only column is unknown WHEN parsed as targets THEN every
    problem: the unknown column, each missing one, and that there are no data rows."""
    with pytest.raises(ReferenceUploadError) as rejected:
        parse_targets("hello.csv", b"hello\n")
    assert [(e.row, e.column, e.reason.split(";")[0]) for e in rejected.value.errors] == [
        (1, "hello", "unknown column"),
        (1, "market", "required column is missing"),
        (1, "dealer_id", "required column is missing"),
        (1, "period", "required column is missing"),
        (1, "target_units", "required column is missing"),
        (None, None, "the file has a header but no data rows"),
    ]


def test_every_error_is_reported_not_only_the_first() -> None:
    """GIVEN a file with problems on several rows and columns WHEN parsed THEN all of them,
    in row order, including a whole-file rule alongside a row rule."""
    data = matrix_csv(
        "DE,*,*,BASE,0,2,0,EUR,2026-01-01,",
        "DE,*,*,BONUS,x,0.01,0,EUR,2026-01-01,",
        "FR,*,*,BASE,0,0.02,0,EUR,2026-01-01,",
        "FR,*,*,BASE,0,0.03,0,EUR,2026-03-01,",
        "DE,*,PRIVATE,BASE,0,0.02,0,EUR,2026-01-01,bad",
    )
    with pytest.raises(ReferenceUploadError) as rejected:
        parse_matrix("m.csv", data)
    assert [(e.row, e.column) for e in rejected.value.errors] == [
        (2, "rate"),
        (3, "min_attainment"),
        (5, "valid_from"),
        (6, "valid_to"),
    ]
    assert "m.csv rejected with 4 error(s)" in str(rejected.value)


def test_a_duplicate_target_is_reported_even_when_its_twin_has_another_error() -> None:
    """GIVEN two targets for the same dealer and month, the first with negative units
    WHEN parsed THEN both problems come in one upload, not one after the other's fix."""
    data = targets_csv("DE,D1,2026-10,-1", "DE,D1,2026-10,4", "DE,D2,2026-1x,4")
    with pytest.raises(ReferenceUploadError) as rejected:
        parse_targets("t.csv", data)
    first, second, third = rejected.value.errors
    assert (first.row, first.column, first.reason) == (
        2,
        "target_units",
        "target_units -1 is negative",
    )
    assert (second.row, second.column, second.reason) == (
        3, "dealer_id", "duplicate target for dealer D1 in 2026-10 (row 2)",
    )  # fmt: skip
    assert (third.row, third.column) == (4, "period")


def test_extra_column_still_reports_row_errors() -> None:
    """GIVEN an unknown column and a bad value WHEN parsed THEN both errors are reported."""
    data = b"market,dealer_id,period,target_units,note\nDE,D1,2026-1,4,x\n"
    with pytest.raises(ReferenceUploadError) as rejected:
        parse_targets("t.csv", data)
    assert [(e.row, e.column) for e in rejected.value.errors] == [(1, "note"), (2, "period")]


def test_adjacent_validity_is_not_an_overlap() -> None:
    """GIVEN a row ending (exclusive) on the day the next starts WHEN parsed THEN both load;
    GIVEN an open-ended row and a later one THEN the later one overlaps it."""
    adjacent = matrix_csv(
        "DE,*,*,BASE,0,0.03,0,EUR,2026-01-01,2026-07-01",
        "DE,*,*,BASE,0,0.02,0,EUR,2026-07-01,",
    )
    assert len(parse_matrix("m.csv", adjacent)) == 2
    hidden = matrix_csv(
        "DE,*,*,BASE,0,0.03,0,EUR,2026-01-01,",
        "DE,*,*,BASE,0,0.02,0,EUR,2026-02-01,2026-03-01",
        "DE,*,*,BASE,0,0.01,0,EUR,2026-05-01,2026-06-01",
    )
    with pytest.raises(ReferenceUploadError) as rejected:
        parse_matrix("m.csv", hidden)
    assert [(e.row, e.reason[:26]) for e in rejected.value.errors] == [
        (3, "validity overlaps row 2 (s"),
        (4, "validity overlaps row 2 (s"),
    ]


def test_sql_and_markup_looking_values_are_plain_text() -> None:
    """GIVEN values that look like SQL or HTML WHEN parsed THEN they are kept verbatim."""
    rows = parse_targets(
        "t.csv",
        targets_csv('DE,"\'; DROP TABLE target_rows; --",2026-10,1', "DE,<b>x</b>,2026-10,2"),
    )
    assert [row.dealer_id for row in rows] == ["'; DROP TABLE target_rows; --", "<b>x</b>"]


def test_trailing_empty_header_cells_are_ignored_but_blank_names_inside_are_not() -> None:
    """GIVEN a CSV whose lines end with a comma WHEN parsed THEN it loads;
    GIVEN a blank column name between two others THEN it is an unknown column."""
    trailing = b"market,dealer_id,period,target_units,\nDE,D1,2026-10,4,\n"
    assert parse_targets("t.csv", trailing) == [TargetRow("DE", "D1", "2026-10", 4)]
    inside = b"market,,dealer_id,period,target_units\nDE,,D1,2026-10,4\n"
    with pytest.raises(ReferenceUploadError) as rejected:
        parse_targets("t.csv", inside)
    assert [(e.row, e.column) for e in rejected.value.errors] == [(1, "(blank)")]
