"""Reading an uploaded CSV or XLSX file into a header and raw cell values.

Only the shape of the file is checked here (readable, a sheet, a header); the columns, the
presence of data rows and the values are judged by :mod:`settlement.domain.reference.parsing`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from openpyxl import load_workbook

from settlement.domain.reference.errors import UploadError

CSV_SUFFIXES = (".csv",)
XLSX_SUFFIXES = (".xlsx", ".xlsm")


@dataclass(frozen=True)
class Formula:
    """A cell holding a formula: refused, because its cached value may be stale or missing."""

    text: str


@dataclass(frozen=True)
class ErrorValue:
    """An Excel error cell (``#N/A``, ``#REF!``…): refused, it is not a value."""

    text: str


Cell = str | int | float | Decimal | date | datetime | bool | Formula | ErrorValue | None


@dataclass
class Table:
    """The header and the data rows of one file, with their 1-based row numbers."""

    header: list[str]
    rows: list[tuple[int, list[Cell]]] = field(default_factory=list)
    where: str = ""
    """For a workbook, which sheet was read (``" in sheet 'notes'"``), else empty."""


class UnreadableFileError(Exception):
    """The file cannot be read as a table at all."""

    def __init__(self, error: UploadError) -> None:
        self.error = error
        super().__init__(str(error))


def read_table(file_name: str, data: bytes, *, sheet: str) -> Table:
    """Read ``data`` as CSV or XLSX, judged by the file name's suffix.

    Parameters
    ----------
    file_name
        The uploaded file's name (used in errors and to pick the format).
    data
        The file's bytes.
    sheet
        For XLSX, the preferred sheet name; the first sheet is used when absent.

    Raises
    ------
    UnreadableFileError
        When the file is empty, undecodable, of an unknown type or has no header.
    """
    if not data:
        raise _unreadable(file_name, "the file is empty (0 bytes)")
    suffix = file_name.lower().rsplit("/", 1)[-1]
    if suffix.endswith(CSV_SUFFIXES):
        table = _read_csv(file_name, data)
    elif suffix.endswith(XLSX_SUFFIXES):
        table = _read_xlsx(file_name, data, sheet)
    else:
        raise _unreadable(file_name, "unsupported file type: upload a .csv or .xlsx file")
    if not any(name for name in table.header):
        raise _unreadable(file_name, f"the file has no header row{table.where}")
    return table


def _unreadable(file_name: str, reason: str, *, row: int | None = None) -> UnreadableFileError:
    return UnreadableFileError(UploadError(file_name, row, None, reason))


def _read_csv(file_name: str, data: bytes) -> Table:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _unreadable(
            file_name,
            f"not valid UTF-8 (byte {error.start}): save the file as CSV UTF-8",
        ) from error
    if "\x00" in text:
        raise _unreadable(file_name, "the file contains NUL bytes: not a text CSV file")
    records = csv.reader(io.StringIO(text, newline=""), strict=True)
    numbered: list[tuple[int, list[str]]] = []
    try:
        for record in records:
            numbered.append((len(numbered) + 1, record))
    except csv.Error as error:
        # The parser cannot say what follows a broken quote: this row is the one error.
        row = len(numbered) + 1
        raise _unreadable(file_name, f"malformed CSV: {error}", row=row) from error
    if not numbered:
        raise _unreadable(file_name, "the file contains no rows")
    header = _without_trailing_blanks([name.strip() for name in numbered[0][1]])
    rows: list[tuple[int, list[Cell]]] = [
        (number, list[Cell](record)) for number, record in numbered[1:] if _csv_has_content(record)
    ]
    return Table(header, rows)


def _read_xlsx(file_name: str, data: bytes, sheet: str) -> Table:
    try:
        return _read_workbook(file_name, data, sheet)
    except UnreadableFileError:
        raise
    except Exception as error:
        # A zip that holds broken XML fails deep inside openpyxl (ParseError, KeyError,
        # TypeError… while the workbook loads or its rows stream): it is an unreadable file.
        raise _unreadable(
            file_name, f"not a readable XLSX workbook ({type(error).__name__}: {error})"
        ) from error


def _read_workbook(file_name: str, data: bytes, sheet: str) -> Table:
    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    try:
        if not workbook.sheetnames:
            raise _unreadable(file_name, "the workbook has no sheet")
        # Excel's sheet names are case-insensitive: "Matrix" is the sheet named matrix.
        named = [n for n in workbook.sheetnames if n.casefold() == sheet.casefold()]
        name = named[0] if named else workbook.sheetnames[0]
        worksheet = workbook[name]
        # Read every cell, not the range the file declares: a stale <dimension> written by
        # another tool would silently cut rows or columns off.
        worksheet.reset_dimensions()
        numbered = list(_sheet_rows(worksheet))
    finally:
        workbook.close()
    if not numbered:
        raise _unreadable(file_name, f"sheet {name!r} is empty")
    header_number, header_cells = numbered[0]
    if header_number != 1:
        raise _unreadable(file_name, f"sheet {name!r}: the header must be on row 1")
    header = _without_trailing_blanks(
        ["" if cell is None else str(cell).strip() for cell in header_cells]
    )
    where = f" in sheet {name!r}" + ("" if named else f" (the workbook has no sheet {sheet!r})")
    rows = [(number, cells) for number, cells in numbered[1:] if _has_content(cells)]
    return Table(header, rows, where)


def _sheet_rows(worksheet: object) -> Iterator[tuple[int, list[Cell]]]:
    for cells in worksheet.iter_rows():  # type: ignore[attr-defined]
        values: list[Cell] = []
        number = 0
        for cell in cells:
            number = getattr(cell, "row", None) or number
            kind = getattr(cell, "data_type", None)
            if kind == "f":
                values.append(Formula(str(cell.value)))
            elif kind == "e":
                values.append(ErrorValue(str(cell.value)))
            else:
                values.append(cell.value)
        if number and _has_content(values):
            yield number, values


def _without_trailing_blanks(header: list[str]) -> list[str]:
    """Drop empty header cells at the end (a trailing comma, a formatted but empty column)."""
    while header and not header[-1]:
        header.pop()
    return header


def _has_content(cells: list[Cell]) -> bool:
    return any(cell is not None and str(cell).strip() != "" for cell in cells)


def _csv_has_content(record: list[str]) -> bool:
    return bool("".join(record).strip())
