"""The commission matrix (spec §3) that matches the generated sales.

Every market has wildcard and specific BASE rows, a 0.9/1.0/1.1 BONUS ladder at the wildcard level
and a steeper ladder for the electric series; some rows start or end mid-month. The US matrix only
has per-series BASE rows and none for series 1: a US sale of series 1 is a NO_RATE reject.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from pathlib import Path

from settlement.generator.catalog import (
    CURRENCIES,
    MARKETS,
    NO_RATE_MARKET,
    NO_RATE_SERIES,
    SERIES,
    Period,
)

MATRIX_COLUMNS: tuple[str, ...] = (
    "market",
    "series",
    "channel",
    "component",
    "min_attainment",
    "rate",
    "amount_per_unit",
    "currency",
    "valid_from",
    "valid_to",
)
OPEN_SINCE = date(2020, 1, 1)
RATE_STEP = Decimal("0.000001")
CORRECTION = Decimal("0.005")
WILDCARD_LADDER = (("0.9", "0.005"), ("1.0", "0.01"), ("1.1", "0.015"))
ELECTRIC_LADDER = (("0.8", "0.006"), ("1.0", "0.012"), ("1.2", "0.02"))
BASE_RATE = {"DE": "0.03", "FR": "0.032", "IT": "0.031", "GB": "0.029", "CH": "0.027", "SE": "0.03"}
BASE_AMOUNT = {"DE": "100", "FR": "0", "IT": "50", "GB": "0", "CH": "75", "SE": "0"}


@dataclass(frozen=True)
class MatrixRow:
    market: str
    series: str
    channel: str
    component: str
    min_attainment: str
    rate: str
    amount_per_unit: str
    currency: str
    valid_from: date
    valid_to: date | None = None

    def as_csv(self) -> list[str]:
        return [
            self.market,
            self.series,
            self.channel,
            self.component,
            self.min_attainment,
            self.rate,
            self.amount_per_unit,
            self.currency,
            self.valid_from.isoformat(),
            "" if self.valid_to is None else self.valid_to.isoformat(),
        ]


def _plus(rate: str, delta: str) -> str:
    return str((Decimal(rate) + Decimal(delta)).quantize(RATE_STEP).normalize())


def _base(market: str, series: str, channel: str, rate: str, amount: str = "0") -> MatrixRow:
    currency = CURRENCIES[MARKETS.index(market)]
    return MatrixRow(market, series, channel, "BASE", "0", rate, amount, currency, OPEN_SINCE)


def _ladder(
    market: str, series: str, channel: str, ladder: tuple[tuple[str, str], ...]
) -> list[MatrixRow]:
    currency = CURRENCIES[MARKETS.index(market)]
    return [
        MatrixRow(market, series, channel, "BONUS", tier, rate, "0", currency, OPEN_SINCE)
        for tier, rate in ladder
    ]


def _split(row: MatrixRow, on: date, new_rate: str) -> list[MatrixRow]:
    """The row until `on`, then the same key with a new rate: a mid-month rate change."""
    return [replace(row, valid_to=on), replace(row, rate=new_rate, valid_from=on)]


def _european_market(market: str, period: Period) -> Iterator[MatrixRow]:
    rate = BASE_RATE[market]
    yield _base(market, "*", "*", rate, BASE_AMOUNT[market])
    yield _base(market, "*", "FLEET", _plus(rate, "-0.005"), "50")
    yield _base(market, "*", "EMPLOYEE", _plus(rate, "-0.01"))
    yield _base(market, "3", "*", _plus(rate, "0.005"))
    yield _base(market, "X5", "*", _plus(rate, "0.003"))
    yield from _split(
        _base(market, "i4", "*", _plus(rate, "0.01")), period.day(14), _plus(rate, "0.012")
    )
    wildcard = _ladder(market, "*", "*", WILDCARD_LADDER)
    if market == "SE":  # the top tier's rate changes on the 20th
        wildcard[-1:] = _split(wildcard[-1], period.day(19), "0.0175")
    yield from wildcard
    yield from _ladder(market, "i4", "*", ELECTRIC_LADDER)
    electric = _ladder(market, "iX", "*", ELECTRIC_LADDER)
    yield from electric[:-1]
    yield replace(electric[-1], amount_per_unit="250")


def _market_specials(market: str, period: Period) -> Iterator[MatrixRow]:
    """Rows only some markets have: the worked example's row, mid-month starts and ends."""
    if market == "DE":
        yield _base(market, "3", "PRIVATE", "0.04")
        yield _base(market, "7", "PRIVATE", "0.035", "500")
    if market == "FR":
        yield replace(_base(market, "X5", "FLEET", "0.028"), valid_to=period.day(19))
    if market == "IT":
        yield replace(_base(market, "i5", "PRIVATE", "0.045"), valid_from=period.day(9))
    if market == "GB":
        yield from _ladder(market, "*", "FLEET", (("1.0", "0.008"),))


def _us_market() -> Iterator[MatrixRow]:
    for position, series in enumerate(SERIES):
        if series != NO_RATE_SERIES:
            yield _base(NO_RATE_MARKET, series, "*", _plus("0.025", f"0.00{position % 10}"))
    yield _base(NO_RATE_MARKET, "X5", "FLEET", "0.024", "150")
    yield from _ladder(NO_RATE_MARKET, "*", "*", WILDCARD_LADDER)


def matrix_rows(period: Period) -> list[MatrixRow]:
    """All rows of the matrix that covers `period` (and every date since 2020)."""
    rows: list[MatrixRow] = []
    for market in MARKETS:
        if market == NO_RATE_MARKET:
            rows.extend(_us_market())
        else:
            rows.extend(_european_market(market, period))
            rows.extend(_market_specials(market, period))
    return rows


def write_matrix(path: Path, period: Period) -> Path:
    """Write the matrix CSV for `period` to `path` (atomically) and return the path."""
    return _write_csv(path, [row.as_csv() for row in matrix_rows(period)])


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(MATRIX_COLUMNS)
        writer.writerows(rows)
    partial.replace(path)
    return path


def write_corrected_matrix(matrix_csv: Path, out: Path, *, market: str = "DE") -> Path:
    """Write a copy of a matrix whose wildcard BASE rate of one market is 0.5 points higher.

    The copy keeps every other row as is, so it passes the same upload validation; uploading it
    and re-running a period changes every sale of `market` that settles on the wildcard row.

    Parameters
    ----------
    matrix_csv : Path
        A matrix written by `generate_month` (or any matrix CSV with the spec §3 columns).
    out : Path
        Where to write the corrected matrix.
    market : str
        The market whose ``(*, *)`` BASE rate changes.

    Returns
    -------
    Path
        `out`.
    """
    with matrix_csv.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != MATRIX_COLUMNS:
            raise ValueError(f"{matrix_csv}: header must be {','.join(MATRIX_COLUMNS)}")
        records = list(reader)
    changed = 0
    for record in records:
        if (record["market"], record["series"], record["channel"], record["component"]) == (
            market, "*", "*", "BASE",
        ):  # fmt: skip
            record["rate"] = str((Decimal(record["rate"]) + CORRECTION).quantize(RATE_STEP))
            changed += 1
    if changed == 0:
        raise ValueError(f"{matrix_csv}: no (*, *) BASE row for market {market!r} to correct")
    return _write_csv(out, [[record[column] for column in MATRIX_COLUMNS] for record in records])
