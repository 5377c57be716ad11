"""Validating an uploaded matrix or targets file (spec §3), collecting every error.

Each row is checked on its own first (types, ranges, required values), then the file as a
whole (currency per market, overlapping validity, duplicate targets). Nothing stops at the
first error: the user gets the full list in one go.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol, TypeVar

from settlement.domain.reference import cells
from settlement.domain.reference.errors import ReferenceUploadError, UploadError
from settlement.domain.reference.models import (
    CHANNELS,
    COMPONENTS,
    MATRIX_OPTIONAL,
    MATRIX_REQUIRED,
    TARGETS_REQUIRED,
    MatrixRow,
    ReferenceKind,
    TargetRow,
)
from settlement.domain.reference.reading import Cell, Table, UnreadableFileError, read_table
from settlement.domain.transactions import AMOUNT_INTEGER_DIGITS

CURRENCY_CODE = re.compile(r"[A-Z]{3}")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
MAX_TEXT_LENGTH = 200
MAX_RATE_PLACES = 6
MAX_AMOUNT_PLACES = 2
MAX_MIN_ATTAINMENT = Decimal("1000000")  # decimal(12,6)
MAX_AMOUNT = Decimal(10) ** AMOUNT_INTEGER_DIGITS  # as a net price (every amount fits MONEY)
MAX_TARGET_UNITS = 2**63 - 1

T = TypeVar("T")


def parse_reference(
    kind: ReferenceKind, file_name: str, data: bytes
) -> list[MatrixRow] | list[TargetRow]:
    """Parse ``data`` as the given kind of reference file; see :func:`parse_matrix`."""
    if kind == "matrix":
        return parse_matrix(file_name, data)
    if kind == "targets":
        return parse_targets(file_name, data)
    raise ValueError(f"unknown reference kind {kind!r}: use matrix or targets")


def parse_matrix(file_name: str, data: bytes) -> list[MatrixRow]:
    """Parse and validate a commission matrix file (CSV, or XLSX sheet ``matrix``/first).

    Parameters
    ----------
    file_name
        The uploaded file's name, used in every error and to pick CSV or XLSX.
    data
        The file's bytes.

    Returns
    -------
    list[MatrixRow]
        The rows, in file order.

    Raises
    ------
    ReferenceUploadError
        Carrying every error found, each with file, row, column and reason.
    """
    table = _table_or_raise(file_name, data, sheet="matrix")
    column_errors = _check_columns(file_name, table, MATRIX_REQUIRED, MATRIX_OPTIONAL)
    reader = _RowReader(file_name, table.header, MATRIX_REQUIRED)
    parsed: list[tuple[int, MatrixRow]] = []
    for number, values in table.rows:
        row = reader.matrix_row(number, values)
        if row is not None:
            parsed.append((number, row))
    # The whole-file rules run over the rows that are valid on their own, so one upload
    # reports both kinds of problem at once.
    file_errors = _currency_errors(file_name, parsed) + _overlap_errors(file_name, parsed)
    errors = column_errors + sorted(reader.errors + file_errors, key=lambda error: error.row or 0)
    if errors:
        raise ReferenceUploadError(file_name, errors)
    return [row for _, row in parsed]


def parse_targets(file_name: str, data: bytes) -> list[TargetRow]:
    """Parse and validate a sales targets file (CSV, or XLSX sheet ``targets``/first).

    Raises
    ------
    ReferenceUploadError
        Carrying every error found, including duplicate (dealer_id, period) rows.
    """
    table = _table_or_raise(file_name, data, sheet="targets")
    column_errors = _check_columns(file_name, table, TARGETS_REQUIRED, ())
    reader = _RowReader(file_name, table.header, TARGETS_REQUIRED)
    parsed: list[TargetRow] = []
    # Every row whose dealer and period read takes part in the duplicate check, even with an
    # error elsewhere (its units, say): the clash is reported now, not after that fix.
    keyed: list[tuple[int, tuple[str, str]]] = []
    for number, values in table.rows:
        row = reader.target_row(number, values)
        if row is not None:
            parsed.append(row)
            keyed.append((number, (row.dealer_id, row.period)))
        elif (key := reader.target_key(number, values)) is not None:
            keyed.append((number, key))
    errors = column_errors + sorted(
        reader.errors + _duplicate_target_errors(file_name, keyed),
        key=lambda error: error.row or 0,
    )
    if errors:
        raise ReferenceUploadError(file_name, errors)
    return parsed


# --------------------------------------------------------------------------- file shape
def _table_or_raise(file_name: str, data: bytes, *, sheet: str) -> Table:
    try:
        return read_table(file_name, data, sheet=sheet)
    except UnreadableFileError as error:
        raise ReferenceUploadError(file_name, [error.error]) from error


def _check_columns(
    file_name: str, table: Table, required: Iterable[str], optional: Iterable[str]
) -> list[UploadError]:
    known = (*required, *optional)
    errors: list[UploadError] = []
    seen: set[str] = set()
    for name in table.header:
        if name in seen:
            errors.append(UploadError(file_name, 1, name, "column appears twice in the header"))
        seen.add(name)
        if name not in known:
            shown = name or "(blank)"
            errors.append(
                UploadError(file_name, 1, shown, f"unknown column; expected {', '.join(known)}")
            )
    errors += [
        UploadError(file_name, 1, name, f"required column is missing{table.where}")
        for name in required
        if name not in seen
    ]
    if not table.rows:
        errors.append(
            UploadError(
                file_name, None, None, f"the file has a header but no data rows{table.where}"
            )
        )
    width = len(table.header)
    errors += [
        UploadError(file_name, number, None, f"row has {len(values)} fields, header has {width}")
        for number, values in table.rows
        if len(values) > width and any(not cells.is_blank(v) for v in values[width:])
    ]
    return errors


# --------------------------------------------------------------------------- one row
@dataclass
class _RowReader:
    """Reads typed values out of one row, recording an error per bad cell."""

    file_name: str
    header: list[str]
    required: tuple[str, ...]

    def __post_init__(self) -> None:
        self.errors: list[UploadError] = []
        self._index = {name: position for position, name in enumerate(self.header)}
        # Missing columns are reported once, on the header; their rows cannot be complete.
        self._incomplete = any(name not in self._index for name in self.required)

    def matrix_row(self, number: int, values: list[Cell]) -> MatrixRow | None:
        before = len(self.errors)
        get = self._getter(number, values)
        market = get("market", _short_text)
        series = get("series", _short_text)
        channel = get("channel", _one_of(CHANNELS))
        component = get("component", _one_of(COMPONENTS))
        min_attainment = get("min_attainment", _min_attainment)
        rate = get("rate", _rate)
        amount_per_unit = get("amount_per_unit", _amount, optional=True)
        currency = get("currency", _currency)
        valid_from = get("valid_from", cells.calendar_date)
        valid_to = get("valid_to", cells.calendar_date, optional=True)
        if component == "BASE" and min_attainment is not None and min_attainment != 0:
            self._error(number, "min_attainment", "must be 0 for a BASE row (tiers are BONUS)")
        if valid_from is not None and valid_to is not None and valid_to <= valid_from:
            self._error(number, "valid_to", f"must be after valid_from ({valid_from})")
        if len(self.errors) > before or self._incomplete:
            return None
        assert market
        assert series
        assert channel
        assert component
        assert currency
        assert valid_from
        assert min_attainment is not None
        assert rate is not None
        return MatrixRow(
            market=market,
            series=series,
            channel=channel,
            component=component,
            min_attainment=min_attainment,
            rate=rate,
            amount_per_unit=amount_per_unit if amount_per_unit is not None else Decimal("0.00"),
            currency=currency,
            valid_from=valid_from,
            valid_to=valid_to,
        )

    def target_row(self, number: int, values: list[Cell]) -> TargetRow | None:
        before = len(self.errors)
        get = self._getter(number, values)
        market = get("market", _short_text)
        dealer_id = get("dealer_id", _short_text)
        period = get("period", cells.period)
        target_units = get("target_units", _target_units)
        if len(self.errors) > before or self._incomplete:
            return None
        assert market
        assert dealer_id
        assert period
        assert target_units is not None
        return TargetRow(market, dealer_id, period, target_units)

    def target_key(self, number: int, values: list[Cell]) -> tuple[str, str] | None:
        """(dealer_id, period) of a row whose other cells failed, when both read.

        ``target_row`` has already recorded the row's errors: none are recorded again.
        """
        get = self._getter(number, values, errors=[])
        dealer_id, period = get("dealer_id", _short_text), get("period", cells.period)
        return (dealer_id, period) if dealer_id and period else None

    def _getter(
        self, number: int, values: list[Cell], *, errors: list[UploadError] | None = None
    ) -> _Getter:
        """Reads cells of one row; a bad cell's error goes to ``errors`` (default: the file's)."""
        found = self.errors if errors is None else errors

        def get(column: str, convert: Callable[[Cell], T], *, optional: bool = False) -> T | None:
            position = self._index.get(column)
            if position is None:
                return None
            cell = values[position] if position < len(values) else None
            if cells.is_blank(cell):
                if not optional:
                    found.append(
                        UploadError(self.file_name, number, column, "required value is empty")
                    )
                return None
            try:
                return convert(cell)
            except cells.CellError as error:
                found.append(UploadError(self.file_name, number, column, str(error)))
                return None

        return get

    def _error(self, number: int, column: str, reason: str) -> None:
        self.errors.append(UploadError(self.file_name, number, column, reason))


class _Getter(Protocol):
    def __call__(
        self, column: str, convert: Callable[[Cell], T], *, optional: bool = False
    ) -> T | None: ...


# --------------------------------------------------------------------------- value rules
def _short_text(cell: Cell) -> str:
    value = cells.text(cell)
    if len(value) > MAX_TEXT_LENGTH:
        raise cells.CellError(f"longer than {MAX_TEXT_LENGTH} characters")
    if CONTROL_CHARACTERS.search(value):
        raise cells.CellError("contains control characters (line breaks, tabs)")
    return value


def _one_of(allowed: tuple[str, ...]) -> Callable[[Cell], str]:
    def convert(cell: Cell) -> str:
        value = cells.text(cell)
        if value not in allowed:
            raise cells.CellError(f"{value!r} is not one of {', '.join(allowed)}")
        return value

    return convert


def _currency(cell: Cell) -> str:
    value = cells.text(cell)
    if not CURRENCY_CODE.fullmatch(value):
        raise cells.CellError(f"{value!r} is not an ISO 4217 code (three capital letters)")
    return value


def _rate(cell: Cell) -> Decimal:
    value = cells.decimal(cell)
    if not Decimal(0) <= value <= Decimal(1):
        raise cells.CellError(f"rate {value:f} is outside [0, 1]")
    if cells.decimal_places(value) > MAX_RATE_PLACES:
        raise cells.CellError(f"rate {value:f} has more than {MAX_RATE_PLACES} decimals")
    return value


def _min_attainment(cell: Cell) -> Decimal:
    value = cells.decimal(cell)
    if value < 0 or value >= MAX_MIN_ATTAINMENT:
        raise cells.CellError(f"min_attainment {value:f} must be ≥ 0 (and below 1000000)")
    if cells.decimal_places(value) > MAX_RATE_PLACES:
        raise cells.CellError(f"min_attainment {value:f} has more than {MAX_RATE_PLACES} decimals")
    return value


def _amount(cell: Cell) -> Decimal:
    value = cells.decimal(cell)
    if value < 0:
        raise cells.CellError(f"amount_per_unit {value:f} is negative")
    if value >= MAX_AMOUNT:
        raise cells.CellError(
            f"amount_per_unit {value:f} is too large (at most {AMOUNT_INTEGER_DIGITS} digits "
            "before the point)"
        )
    if cells.decimal_places(value) > MAX_AMOUNT_PLACES:
        raise cells.CellError(
            f"amount_per_unit {value:f} has more than {MAX_AMOUNT_PLACES} decimals"
        )
    return value


def _target_units(cell: Cell) -> int:
    value = cells.integer(cell)
    if value < 0:
        raise cells.CellError(f"target_units {value} is negative")
    if value > MAX_TARGET_UNITS:
        raise cells.CellError(f"target_units {value} is too large")
    return value


# --------------------------------------------------------------------------- whole file
def _currency_errors(file_name: str, rows: list[tuple[int, MatrixRow]]) -> list[UploadError]:
    first_seen: dict[str, tuple[int, str]] = {}
    errors: list[UploadError] = []
    for number, row in rows:
        first_number, currency = first_seen.setdefault(row.market, (number, row.currency))
        if row.currency != currency:
            reason = (
                f"currency {row.currency} differs from {currency} used for market "
                f"{row.market} on row {first_number}"
            )
            errors.append(UploadError(file_name, number, "currency", reason))
    return errors


def _overlap_errors(file_name: str, rows: list[tuple[int, MatrixRow]]) -> list[UploadError]:
    groups: dict[tuple[str, str, str, str, Decimal], list[tuple[int, MatrixRow]]] = {}
    for number, row in rows:
        key = (row.market, row.series, row.channel, row.component, row.min_attainment)
        groups.setdefault(key, []).append((number, row))
    errors: list[UploadError] = []
    for group in groups.values():
        ordered = sorted(group, key=lambda item: (item[1].valid_from, item[0]))
        # The row reaching furthest so far: every later start before its end overlaps it.
        furthest: tuple[int, MatrixRow] | None = None
        for number, row in ordered:
            if furthest is not None and _ends_after(furthest[1], row.valid_from):
                reason = (
                    f"validity overlaps row {furthest[0]} (same market, series, channel, "
                    f"component and min_attainment)"
                )
                errors.append(UploadError(file_name, number, "valid_from", reason))
            if furthest is None or _reaches_further(row, furthest[1]):
                furthest = (number, row)
    return sorted(errors, key=lambda error: error.row or 0)


def _ends_after(row: MatrixRow, day: date) -> bool:
    return row.valid_to is None or day < row.valid_to


def _reaches_further(row: MatrixRow, other: MatrixRow) -> bool:
    if other.valid_to is None:
        return False
    return row.valid_to is None or row.valid_to > other.valid_to


def _duplicate_target_errors(
    file_name: str, keys: list[tuple[int, tuple[str, str]]]
) -> list[UploadError]:
    first_seen: dict[tuple[str, str], int] = {}
    errors: list[UploadError] = []
    for number, (dealer_id, period) in keys:
        first = first_seen.setdefault((dealer_id, period), number)
        if first != number:
            reason = f"duplicate target for dealer {dealer_id} in {period} (row {first})"
            errors.append(UploadError(file_name, number, "dealer_id", reason))
    return errors
