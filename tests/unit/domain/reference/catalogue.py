"""Reference files for the tests: good ones, and a catalogue of bad ones with their error."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openpyxl import Workbook

from settlement.domain.reference.models import ReferenceKind

MATRIX_HEADER = (
    "market,series,channel,component,min_attainment,rate,amount_per_unit,currency,"
    "valid_from,valid_to"
)
# The worked example of spec §4.
GOOD_MATRIX = f"""{MATRIX_HEADER}
DE,3,PRIVATE,BASE,0,0.04,0,EUR,2026-01-01,
DE,*,*,BASE,0,0.03,100,EUR,2026-01-01,
DE,*,*,BONUS,0.9,0.005,0,EUR,2026-01-01,
DE,*,*,BONUS,1.0,0.01,0,EUR,2026-01-01,
DE,*,*,BONUS,1.1,0.015,0,EUR,2026-01-01,
""".encode()
GOOD_TARGETS = b"market,dealer_id,period,target_units\nDE,D1,2026-10,4\nDE,D2,2026-10,0\n"


def matrix_csv(*rows: str, header: str = MATRIX_HEADER) -> bytes:
    return "\n".join((header, *rows, "")).encode()


def targets_csv(*rows: str) -> bytes:
    return "\n".join(("market,dealer_id,period,target_units", *rows, "")).encode()


def xlsx(sheets: dict[str, list[list[Any]]]) -> bytes:
    """A workbook with the given sheets (cells starting with '=' become formulas)."""
    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def with_member(workbook: bytes, member: str, content: bytes) -> bytes:
    """``workbook`` with one zip member's content replaced (a file corrupted inside the zip)."""
    source = zipfile.ZipFile(io.BytesIO(workbook))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            target.writestr(info, content if info.filename == member else source.read(info))
    return buffer.getvalue()


def excel_datetime(year: int, month: int, day: int, hour: int = 0) -> datetime:
    """What openpyxl gives for a date cell: a naive datetime (Excel has no time zones)."""
    return datetime(year, month, day, hour)  # noqa: DTZ001


MATRIX_COLUMNS = MATRIX_HEADER.split(",")
BASE_ROW: list[Any] = [
    "DE",
    "3",
    "PRIVATE",
    "BASE",
    0,
    0.04,
    0,
    "EUR",
    excel_datetime(2026, 1, 1),
    None,
]


@dataclass(frozen=True)
class BadFile:
    """A rejected upload and the error it must give (row None: the whole file)."""

    name: str
    kind: ReferenceKind
    file_name: str
    data: bytes
    row: int | None
    column: str | None
    reason: str


CATALOGUE = [
    BadFile(
        "wrong encoding", "targets", "t.csv",
        "market,dealer_id,period,target_units\nCH,Zürich-1,2026-10,4\n".encode("latin-1"),
        None, None, "not valid UTF-8",
    ),
    BadFile("0-byte file", "matrix", "m.csv", b"", None, None, "empty (0 bytes)"),
    BadFile("header only", "matrix", "m.csv", matrix_csv(), None, None, "no data rows"),
    BadFile("blank file", "targets", "t.csv", b"\n\n", None, None, "no header row"),
    BadFile(
        "no sheet of the kind's name", "matrix", "m.xlsx", xlsx({"notes": [["hello"], ["x"]]}),
        1, "market", "missing in sheet 'notes' (the workbook has no sheet 'matrix')",
    ),
    BadFile(
        "missing sheet (empty workbook sheet)", "matrix", "m.xlsx", xlsx({"Sheet1": []}),
        None, None, "is empty",
    ),
    BadFile(
        "not a workbook", "matrix", "m.xlsx", b"PK\x03\x04 broken", None, None,
        "not a readable XLSX",
    ),
    BadFile(
        "a workbook whose sheet XML is broken", "targets", "t.xlsx",
        with_member(xlsx({"targets": [["market"]]}), "xl/worksheets/sheet1.xml", b"<<garbage"),
        None, None, "not a readable XLSX workbook (ParseError",
    ),
    BadFile(
        "a workbook whose styles XML is broken", "matrix", "m.xlsx",
        with_member(xlsx({"matrix": [["market"]]}), "xl/styles.xml", b"<<garbage"),
        None, None, "not a readable XLSX workbook",
    ),
    BadFile("unsupported type", "matrix", "m.txt", b"plain text", None, None, "unsupported file"),
    BadFile(
        "missing column", "matrix", "m.csv",
        matrix_csv(
            "DE,*,*,BASE,0,100,EUR,2026-01-01,",
            header=MATRIX_HEADER.replace("rate,", ""),
        ),
        1, "rate", "required column is missing",
    ),
    BadFile(
        "unknown column", "targets", "t.csv",
        b"market,dealer_id,period,target_units,bonus\nDE,D1,2026-10,4,x\n",
        1, "bonus", "unknown column",
    ),
    BadFile(
        "bad number", "matrix", "m.csv", matrix_csv("DE,*,*,BASE,0,\"0,03\",0,EUR,2026-01-01,"),
        2, "rate", "not a number",
    ),
    BadFile(
        "bad date", "matrix", "m.csv", matrix_csv("DE,*,*,BASE,0,0.03,0,EUR,01.01.2026,"),
        2, "valid_from", "not a date",
    ),
    BadFile(
        "rate above 1", "matrix", "m.csv", matrix_csv("DE,*,*,BASE,0,1.5,0,EUR,2026-01-01,"),
        2, "rate", "outside [0, 1]",
    ),
    BadFile(
        "rate with 7 decimals", "matrix", "m.csv",
        matrix_csv("DE,*,*,BASE,0,0.0000001,0,EUR,2026-01-01,"),
        2, "rate", "rate 0.0000001 has more than 6 decimals",
    ),
    BadFile(
        "amount with 3 decimals", "matrix", "m.csv",
        matrix_csv("DE,*,*,BASE,0,0.03,1.005,EUR,2026-01-01,"),
        2, "amount_per_unit", "more than 2 decimals",
    ),
    BadFile(
        "amount per unit of 13 digits", "matrix", "m.csv",
        matrix_csv("DE,*,*,BASE,0,0.03,1000000000000,EUR,2026-01-01,"),
        2, "amount_per_unit", "too large (at most 12 digits before the point)",
    ),
    BadFile(
        "negative amount", "matrix", "m.csv", matrix_csv("DE,*,*,BASE,0,0.03,-1,EUR,2026-01-01,"),
        2, "amount_per_unit", "negative",
    ),
    BadFile(
        "BASE with a tier", "matrix", "m.csv", matrix_csv("DE,*,*,BASE,0.9,0.03,0,EUR,2026-01-01,"),
        2, "min_attainment", "must be 0 for a BASE row",
    ),
    BadFile(
        "unknown component", "matrix", "m.csv",
        matrix_csv("DE,*,*,BONUSS,0.9,0.03,0,EUR,2026-01-01,"),
        2, "component", "not one of BASE, BONUS",
    ),
    BadFile(
        "valid_to before valid_from", "matrix", "m.csv",
        matrix_csv("DE,*,*,BASE,0,0.03,0,EUR,2026-06-01,2026-01-01"),
        2, "valid_to", "must be after valid_from",
    ),
    BadFile(
        "overlapping validity", "matrix", "m.csv",
        matrix_csv(
            "DE,*,*,BONUS,1.0,0.01,0,EUR,2026-01-01,2026-07-01",
            "DE,*,*,BONUS,1.00,0.02,0,EUR,2026-06-01,",
        ),
        3, "valid_from", "overlaps row 2",
    ),
    BadFile(
        "currency not ISO-shaped", "matrix", "m.csv",
        matrix_csv("DE,*,*,BASE,0,0.03,0,Euro,2026-01-01,"),
        2, "currency", "not an ISO 4217 code",
    ),
    BadFile(
        "two currencies in a market", "matrix", "m.csv",
        matrix_csv(
            "DE,*,*,BASE,0,0.03,0,EUR,2026-01-01,",
            "DE,3,*,BASE,0,0.03,0,USD,2026-01-01,",
        ),
        3, "currency", "differs from EUR",
    ),
    BadFile(
        "formula cell", "matrix", "m.xlsx",
        xlsx({"matrix": [MATRIX_COLUMNS, [*BASE_ROW[:5], "=0.02*2", *BASE_ROW[6:]]]}),
        2, "rate", "formula cell",
    ),
    BadFile(
        "empty required value", "targets", "t.csv", targets_csv("DE,,2026-10,4"),
        2, "dealer_id", "required value is empty",
    ),
    BadFile(
        "fractional target", "targets", "t.csv", targets_csv("DE,D1,2026-10,2.5"),
        2, "target_units", "not a whole number",
    ),
    BadFile(
        "negative target", "targets", "t.csv", targets_csv("DE,D1,2026-10,-3"),
        2, "target_units", "is negative",
    ),
    BadFile(
        "target of 5 000 digits", "targets", "t.csv", targets_csv("DE,D1,2026-10," + "9" * 5000),
        2, "target_units", "a whole number of 5000 digits: at most 19",
    ),
    BadFile(
        "bad period", "targets", "t.csv", targets_csv("DE,D1,2026-13,4"),
        2, "period", "not a period",
    ),
    BadFile(
        "duplicate target row", "targets", "t.csv",
        targets_csv("DE,D1,2026-10,4", "DE,D2,2026-10,5", "DE,D1,2026-10,6"),
        4, "dealer_id", "duplicate target for dealer D1 in 2026-10 (row 2)",
    ),
    BadFile(
        "ragged row", "targets", "t.csv", targets_csv("DE,D1,2026-10,4,extra"),
        2, None, "row has 5 fields, header has 4",
    ),
    BadFile(
        "broken quoting", "matrix", "m.csv",
        matrix_csv('DE,"3"x,PRIVATE,BASE,0,0.04,0,EUR,2026-01-01,'),
        2, None, "malformed CSV",
    ),
    BadFile(
        "period in non-ASCII digits", "targets", "t.csv", targets_csv("DE,D1,٢٠٢٦-١٠,4"),
        2, "period", "not a period",
    ),
    BadFile(
        "Excel error cell", "targets", "t.xlsx",
        xlsx({"targets": [["market", "dealer_id", "period", "target_units"],
                          ["DE", "#N/A", "2026-10", 4]]}),
        2, "dealer_id", "Excel error cell (#N/A)",
    ),
]  # fmt: skip
