"""Turning one raw cell (CSV text or an Excel value) into a typed value, or a reason it can't.

Tolerant of what spreadsheets do (surrounding spaces, number cells, date cells); strict about
everything else. Excel stores numbers as binary floats: a numeric cell is converted through its
shortest round-trip text (``repr``), never through float arithmetic.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

from settlement.domain.reference.reading import Cell, ErrorValue, Formula

# ASCII digits only: Python's \d also matches Arabic-Indic or full-width digits, which a
# period would keep as written (and never match a run's 2026-10).
DECIMAL_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
MAX_INTEGER_DIGITS = 19  # as many as a signed 64-bit integer (the database column) has
DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
PERIOD_TEXT = re.compile(r"([0-9]{4})-([0-9]{2})")


class CellError(ValueError):
    """A cell's value is not acceptable; the message is the reason shown to the user."""


def is_blank(cell: Cell) -> bool:
    if type(cell) is str:  # the common case first: this runs for every cell
        return not cell or cell.isspace()
    return cell is None


def text(cell: Cell) -> str:
    """A text value: trimmed; whole-number cells read as their digits (a series ``3``)."""
    if type(cell) is str:
        return cell.strip()
    _refuse_formula(cell)
    if isinstance(cell, bool):
        raise CellError(f"expected text, got a boolean ({cell})")
    if isinstance(cell, float):
        if not cell.is_integer():
            raise CellError(f"expected text, got the number {cell!r}")
        return str(int(cell))
    if isinstance(cell, datetime | date):
        raise CellError(f"expected text, got a date ({cell.isoformat()})")
    return str(cell).strip()


def decimal(cell: Cell) -> Decimal:
    """An exact decimal from text (``.`` separator) or a numeric cell."""
    if type(cell) is str:
        raw = cell.strip()
        if not DECIMAL_TEXT.fullmatch(raw):
            raise CellError(f"not a number: {raw!r} (use digits and '.' as decimal separator)")
        return _decimal_from_text(raw)
    _refuse_formula(cell)
    if isinstance(cell, (bool, datetime | date)):
        raise CellError(f"not a number: {cell!s}")
    if isinstance(cell, int | Decimal):
        return Decimal(cell)
    if isinstance(cell, float):
        return _decimal_from_text(repr(cell))
    raw = str(cell).strip()
    if not DECIMAL_TEXT.fullmatch(raw):
        raise CellError(f"not a number: {raw!r} (use digits and '.' as decimal separator)")
    return _decimal_from_text(raw)


def integer(cell: Cell) -> int:
    """A whole number from digits or a whole-number cell."""
    if type(cell) is str and INTEGER_TEXT.fullmatch(cell.strip()):
        return _integer_from_text(cell.strip())
    _refuse_formula(cell)
    if isinstance(cell, bool):
        raise CellError(f"not a whole number: {cell}")
    if isinstance(cell, int):
        return cell
    if isinstance(cell, float) and cell.is_integer():
        return int(cell)
    raw = str(cell).strip()
    if not INTEGER_TEXT.fullmatch(raw):
        raise CellError(f"not a whole number: {raw!r}")
    return _integer_from_text(raw)


def _integer_from_text(raw: str) -> int:
    # int() refuses text of more than 4 300 digits with a ValueError of its own.
    digits = len(raw.lstrip("+-"))
    if digits > MAX_INTEGER_DIGITS:
        raise CellError(f"a whole number of {digits} digits: at most {MAX_INTEGER_DIGITS}")
    return int(raw)


def calendar_date(cell: Cell) -> date:
    """A date from ``YYYY-MM-DD`` text, a date cell or a datetime cell at midnight."""
    _refuse_formula(cell)
    if isinstance(cell, datetime):
        if cell.time() != time(0):
            raise CellError(f"expected a date, got a date and time ({cell.isoformat()})")
        return cell.date()
    if isinstance(cell, date):
        return cell
    raw = str(cell).strip()
    if not DATE_TEXT.fullmatch(raw):
        raise CellError(f"not a date: {raw!r} (use YYYY-MM-DD)")
    try:
        return date.fromisoformat(raw)
    except ValueError as error:
        raise CellError(f"not a date: {raw!r} ({error})") from error


def period(cell: Cell) -> str:
    """A calendar month ``YYYY-MM``; a date cell on the 1st (Excel's reading of it) is accepted."""
    _refuse_formula(cell)
    if isinstance(cell, datetime | date):
        day = cell.date() if isinstance(cell, datetime) else cell
        if day.day != 1 or (isinstance(cell, datetime) and cell.time() != time(0)):
            raise CellError(f"not a period: {cell.isoformat()} (use YYYY-MM)")
        return f"{day.year:04d}-{day.month:02d}"
    raw = str(cell).strip()
    match = PERIOD_TEXT.fullmatch(raw)
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1900:
        raise CellError(f"not a period: {raw!r} (use YYYY-MM)")
    return raw


def decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _decimal_from_text(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation as error:
        raise CellError(f"not a number: {raw!r}") from error
    if not value.is_finite():
        raise CellError(f"not a finite number: {raw!r}")
    return value


def _refuse_formula(cell: Cell) -> None:
    if isinstance(cell, ErrorValue):
        raise CellError(f"Excel error cell ({cell.text}): fix the value in the workbook")
    if isinstance(cell, Formula):
        raise CellError(f"formula cell ({cell.text}): paste the values, not formulas")
