"""One chunk of a batch: rows drawn as integer codes with numpy, then encoded as Arrow strings.

A chunk is self-contained: cancellations, duplicates and second cancellations only point at rows
of the same chunk (or at the carried-over sales of an earlier month), so chunks can be generated
and written one at a time with bounded memory, each from its own seeded random stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

from settlement.generator.catalog import (
    BAD_AMOUNTS,
    BAD_CHANNELS,
    BAD_EVENT_TYPES,
    CHANNEL_PRICE_FACTOR,
    CHANNEL_SHARE,
    CHANNELS,
    COLUMNS,
    CURRENCIES,
    CURRENCY_CODES,
    EVENT_TYPES,
    MARKETS,
    MAX_PRICE_CENTS,
    MIN_PRICE_CENTS,
    NO_RATE_MARKET,
    NO_RATE_SERIES,
    REASONS,
    SERIES,
    SERIES_LIST_PRICE,
    VIN_ALPHABET,
    VIN_WMI,
    Period,
    Roster,
    series_cumulative_share,
)

VIN_LENGTH = 17
SALE, CANCELLATION = 0, 1
EVENT_VOCAB = (*EVENT_TYPES, *BAD_EVENT_TYPES)
CHANNEL_VOCAB = (*CHANNELS, *BAD_CHANNELS)
MARKET_CURRENCY = np.array([CURRENCY_CODES.index(code) for code in CURRENCIES])
OUT_OF_PERIOD_DAYS = 20
PRICE_AS_IS, PRICE_EMPTY = -1, -2
CARRY_OVER_SAMPLE = 500
# Sort order among rows of the same day: the sale before its cancellation, before a second
# cancellation and before a re-sent duplicate, so "the first occurrence wins" means the valid one.
KIND_SALE, KIND_CANCELLATION, KIND_SECOND_CANCELLATION, KIND_DUPLICATE = 0, 1, 2, 3
REASON = {name: index for index, name in enumerate(REASONS)}
# Reasons made by spoiling one value of an otherwise valid sale.
SALE_DEFECTS = (
    "MISSING_FIELD",
    "INVALID_DATE",
    "INVALID_AMOUNT",
    "INVALID_EVENT_TYPE",
    "INVALID_CHANNEL",
    "OUT_OF_PERIOD",
    "NO_RATE",
    "CURRENCY_MISMATCH",
)


@dataclass(frozen=True)
class CarriedSale:
    """A settled-looking sale of an earlier month that a later month may cancel."""

    transaction_id: str
    market: str
    dealer_id: str
    vin: str
    series: str
    channel: str
    currency: str
    event_date: str
    net_price: str


@dataclass(frozen=True)
class ChunkPlan:
    """What one chunk must contain: its rows, valid cancellations and rejects per reason."""

    index: int
    start: int
    rows: int
    cancellations: int
    reasons: np.ndarray
    carried: tuple[CarriedSale, ...] = ()


@dataclass(frozen=True)
class Chunk:
    """A generated chunk: the table to write and what the generator knows about its rows."""

    table: pa.Table
    reason_counts: np.ndarray
    sales_per_dealer: np.ndarray
    cancellations_per_dealer: np.ndarray
    valid_sales: int
    valid_cancellations: int
    carry_over: tuple[CarriedSale, ...]


@dataclass
class _Rows:
    """Integer codes of every row of a chunk, before sorting and encoding."""

    event: np.ndarray
    dealer: np.ndarray
    market: np.ndarray
    series: np.ndarray
    channel: np.ndarray
    currency: np.ndarray
    day: np.ndarray
    date_code: np.ndarray
    cents: np.ndarray
    price_code: np.ndarray
    vin: np.ndarray
    vin_missing: np.ndarray
    original_row: np.ndarray
    original_external: np.ndarray
    id_row: np.ndarray
    kind: np.ndarray
    reason: np.ndarray

    def take(self, rows: np.ndarray) -> _Rows:
        return _Rows(**{name: value[rows] for name, value in vars(self).items()})

    @classmethod
    def concat(cls, parts: list[_Rows]) -> _Rows:
        names = vars(parts[0]).keys()
        return cls(**{name: np.concatenate([vars(part)[name] for part in parts]) for name in names})


class ChunkGenerator:
    """Generates the chunks of one month for one roster; vocabularies are built once."""

    def __init__(
        self, period: Period, roster: Roster, seed: tuple[int, ...], id_prefix: str
    ) -> None:
        self.period = period
        self.roster = roster
        self.seed = list(seed)
        self.id_prefix = id_prefix
        self.series_flat = (series_cumulative_share() + np.arange(len(MARKETS))[:, None]).ravel()
        self.day_share = _day_share(period)
        self.dates = _date_vocabulary(period)
        self.us_dealers = np.flatnonzero(roster.market_index == MARKETS.index(NO_RATE_MARKET))

    # ------------------------------------------------------------------ planning
    def generate(self, plan: ChunkPlan) -> Chunk:
        """Draw, spoil, order and encode the rows of `plan`."""
        rng = np.random.default_rng([*self.seed, self.period.ordinal(), plan.index])
        dealer_ids = list(self.roster.dealer_ids)
        external_ids = [sale.transaction_id for sale in plan.carried]
        rows, clean = self._draw(plan, rng, dealer_ids, external_ids)
        # One int64 key (day, kind, random tie-break) sorts faster than a lexsort on three.
        tie_break = rng.integers(0, 1 << 32, len(rows.day), dtype=np.int64)
        order = np.argsort((rows.day << 35) | (rows.kind << 32) | tie_break)
        rows = rows.take(order)
        remap = np.empty_like(order)
        remap[order] = np.arange(len(order))
        rows.id_row = remap[rows.id_row]
        rows.original_row = np.where(rows.original_row >= 0, remap[rows.original_row], -1)
        table = self._encode(rows, plan.start, dealer_ids, external_ids)
        return Chunk(
            table=table,
            reason_counts=np.bincount(rows.reason[rows.reason >= 0], minlength=len(REASONS)),
            sales_per_dealer=self._valid_count(rows, SALE),
            cancellations_per_dealer=self._valid_count(rows, CANCELLATION),
            valid_sales=int(np.count_nonzero((rows.reason < 0) & (rows.event == SALE))),
            valid_cancellations=int(
                np.count_nonzero((rows.reason < 0) & (rows.event == CANCELLATION))
            ),
            carry_over=_carry_over(table, remap[clean[:CARRY_OVER_SAMPLE]])
            if plan.index == 0
            else (),
        )

    def _valid_count(self, rows: _Rows, event: int) -> np.ndarray:
        chosen = rows.dealer[(rows.reason < 0) & (rows.event == event)]
        return np.bincount(chosen, minlength=self.roster.size)[: self.roster.size]

    def _draw(
        self, plan: ChunkPlan, rng: np.random.Generator, dealer_ids: list[str], external: list[str]
    ) -> tuple[_Rows, np.ndarray]:
        counts = {name: int(plan.reasons[index]) for name, index in REASON.items()}
        second = counts["ALREADY_CANCELLED"]
        cancellations = max(plan.cancellations, 1 if second else 0)
        defects = sum(counts[name] for name in SALE_DEFECTS)
        duplicates, orphans = counts["DUPLICATE_TRANSACTION"], counts["ORIGINAL_NOT_FOUND"]
        sales_count = plan.rows - cancellations - second - orphans - duplicates - len(plan.carried)
        if sales_count - cancellations - duplicates - defects < (1 if orphans else 0):
            raise ValueError(
                f"chunk of {plan.rows} rows cannot hold {cancellations} cancellations and "
                f"{defects + duplicates + orphans + second} invalid rows; use more rows"
            )
        sales = self._sales(sales_count, rng)
        shuffled = rng.permutation(sales_count)
        cancelled = shuffled[:cancellations]
        sources = shuffled[cancellations : cancellations + duplicates]
        spoiled = shuffled[cancellations + duplicates : cancellations + duplicates + defects]
        clean = shuffled[cancellations + duplicates + defects :]
        is_valid = np.ones(sales_count, dtype=bool)
        is_valid[spoiled] = False
        valid = np.flatnonzero(is_valid)
        self._spoil(sales, spoiled, counts, rng)
        first = self._cancellations(sales, cancelled, rng, base=sales_count)
        parts = [sales, first]
        next_row = sales_count + cancellations
        parts.append(self._second_cancellations(first, second, rng, base=sales_count))
        next_row += second
        parts.append(self._orphans(sales, rng.choice(valid, orphans), rng, next_row, len(external)))
        external.extend(f"{self.id_prefix}G{plan.start + row:09d}" for row in range(orphans))
        next_row += orphans
        parts.append(self._duplicates(sales, sources))
        next_row += duplicates
        parts.append(self._carried(plan.carried, rng, next_row, dealer_ids))
        return _Rows.concat(parts), clean

    # ------------------------------------------------------------------ valid rows
    def _sales(self, count: int, rng: np.random.Generator) -> _Rows:
        dealer = rng.choice(self.roster.size, count, p=self.roster.weight)
        market = self.roster.market_index[dealer]
        # Search the markets' cumulative shares laid end to end (market m spans [m, m + 1]);
        # the pick is in (0, 1], so a series with no share in a market is never chosen.
        pick = market + 1.0 - rng.random(count)
        flat = np.searchsorted(self.series_flat, pick, side="left")
        series = flat - market * len(SERIES)
        channel = np.minimum(
            np.searchsorted(np.cumsum(CHANNEL_SHARE), rng.random(count), side="right"), 2
        )
        day = rng.choice(self.period.days, count, p=self.day_share)
        list_price = SERIES_LIST_PRICE[series] * CHANNEL_PRICE_FACTOR[channel]
        cents = np.rint(list_price * rng.lognormal(0.0, 0.12, count) * 100).astype(np.int64)
        letters = VIN_ALPHABET[rng.integers(0, len(VIN_ALPHABET), (count, VIN_LENGTH - 3))]
        wmi = np.broadcast_to(np.frombuffer(VIN_WMI, dtype=np.uint8), (count, 3))
        return _Rows(
            event=np.full(count, SALE),
            dealer=dealer,
            market=market,
            series=series,
            channel=channel,
            currency=MARKET_CURRENCY[market],
            day=day,
            date_code=day.copy(),
            cents=np.clip(cents, MIN_PRICE_CENTS, MAX_PRICE_CENTS),
            price_code=np.full(count, PRICE_AS_IS),
            vin=np.hstack([wmi, letters]),
            vin_missing=np.zeros(count, dtype=bool),
            original_row=np.full(count, -1),
            original_external=np.full(count, -1),
            id_row=np.arange(count),
            kind=np.full(count, KIND_SALE),
            reason=np.full(count, -1),
        )

    def _later_day(self, day: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A day on or after `day`, inside the period."""
        later: np.ndarray = day + np.floor(rng.random(len(day)) * (self.period.days - day)).astype(
            np.int64
        )
        return later

    def _cancellations(
        self, sales: _Rows, originals: np.ndarray, rng: np.random.Generator, base: int
    ) -> _Rows:
        rows = sales.take(originals)
        rows.event[:] = CANCELLATION
        rows.day = self._later_day(rows.day, rng)
        rows.date_code = rows.day.copy()
        # net_price is ignored on a cancellation: some systems repeat it, some leave it empty.
        rows.price_code = np.where(rng.random(len(originals)) < 0.5, PRICE_EMPTY, PRICE_AS_IS)
        rows.original_row = originals
        rows.id_row = base + np.arange(len(originals))
        rows.kind[:] = KIND_CANCELLATION
        return rows

    def _second_cancellations(
        self, first: _Rows, count: int, rng: np.random.Generator, base: int
    ) -> _Rows:
        picked = np.arange(count) % max(len(first.day), 1)
        rows = first.take(picked)
        rows.day = self._later_day(rows.day, rng)
        rows.date_code = rows.day.copy()
        rows.id_row = base + len(first.day) + np.arange(count)
        rows.kind[:] = KIND_SECOND_CANCELLATION
        rows.reason[:] = REASON["ALREADY_CANCELLED"]
        return rows

    def _orphans(
        self,
        sales: _Rows,
        templates: np.ndarray,
        rng: np.random.Generator,
        base: int,
        first_external: int,
    ) -> _Rows:
        """Cancellations of sales that exist nowhere: ORIGINAL_NOT_FOUND."""
        rows = sales.take(templates)
        rows.event[:] = CANCELLATION
        rows.day = self._later_day(rows.day, rng)
        rows.date_code = rows.day.copy()
        rows.price_code[:] = PRICE_EMPTY
        rows.original_external = first_external + np.arange(len(templates))
        rows.id_row = base + np.arange(len(templates))
        rows.kind[:] = KIND_CANCELLATION
        rows.reason[:] = REASON["ORIGINAL_NOT_FOUND"]
        return rows

    def _duplicates(self, sales: _Rows, sources: np.ndarray) -> _Rows:
        """The same sale sent again, transaction_id included."""
        rows = sales.take(sources)
        rows.kind[:] = KIND_DUPLICATE
        rows.reason[:] = REASON["DUPLICATE_TRANSACTION"]
        return rows

    def _carried(
        self,
        carried: tuple[CarriedSale, ...],
        rng: np.random.Generator,
        base: int,
        dealer_ids: list[str],
    ) -> _Rows:
        """Cancellations, in this month, of sales carried over from an earlier month."""
        count = len(carried)
        dealer = np.array([_vocab_index(dealer_ids, sale.dealer_id) for sale in carried], np.int64)
        day = rng.integers(0, self.period.days, count)
        vin = np.frombuffer("".join(sale.vin for sale in carried).encode(), dtype=np.uint8)
        return _Rows(
            event=np.full(count, CANCELLATION),
            dealer=dealer,
            market=np.array([MARKETS.index(sale.market) for sale in carried], np.int64),
            series=np.array([SERIES.index(sale.series) for sale in carried], np.int64),
            channel=np.array([CHANNELS.index(sale.channel) for sale in carried], np.int64),
            currency=np.array([CURRENCY_CODES.index(sale.currency) for sale in carried], np.int64),
            day=day,
            date_code=day.copy(),
            cents=np.zeros(count, np.int64),
            price_code=np.full(count, PRICE_EMPTY),
            vin=vin.reshape(count, VIN_LENGTH),
            vin_missing=np.zeros(count, dtype=bool),
            original_row=np.full(count, -1),
            original_external=np.arange(count),
            id_row=base + np.arange(count),
            kind=np.full(count, KIND_CANCELLATION),
            reason=np.full(count, -1),
        )

    # ------------------------------------------------------------------ invalid rows
    def _spoil(
        self, sales: _Rows, spoiled: np.ndarray, counts: dict[str, int], rng: np.random.Generator
    ) -> None:
        """Give each spoiled sale exactly one defect, reason by reason."""
        offset = 0
        for name in SALE_DEFECTS:
            rows = spoiled[offset : offset + counts[name]]
            offset += counts[name]
            sales.reason[rows] = REASON[name]
            self._apply_defect(sales, rows, name, rng)

    def _apply_defect(
        self, sales: _Rows, rows: np.ndarray, name: str, rng: np.random.Generator
    ) -> None:
        cycle = np.arange(len(rows))
        if name == "MISSING_FIELD":
            sales.vin_missing[rows[cycle % 2 == 0]] = True
            sales.dealer[rows[cycle % 2 == 1]] = -1
        elif name == "INVALID_DATE":
            sales.date_code[rows] = self.dates.bad_start + cycle % self.dates.bad_count
        elif name == "INVALID_AMOUNT":
            codes = np.array([*range(len(BAD_AMOUNTS)), PRICE_EMPTY])
            sales.price_code[rows] = codes[cycle % len(codes)]
        elif name == "INVALID_EVENT_TYPE":
            sales.event[rows] = len(EVENT_TYPES) + cycle % len(BAD_EVENT_TYPES)
        elif name == "INVALID_CHANNEL":
            sales.channel[rows] = len(CHANNELS) + cycle % len(BAD_CHANNELS)
        elif name == "OUT_OF_PERIOD":
            sales.date_code[rows] = self.period.days + rng.integers(
                0, 2 * OUT_OF_PERIOD_DAYS, len(rows)
            )
        elif name == "NO_RATE":
            us = MARKETS.index(NO_RATE_MARKET)
            sales.dealer[rows] = rng.choice(self.us_dealers, len(rows))
            sales.market[rows] = us
            sales.series[rows] = SERIES.index(NO_RATE_SERIES)
            sales.currency[rows] = MARKET_CURRENCY[us]
        elif name == "CURRENCY_MISMATCH":
            shift = 1 + rng.integers(0, len(CURRENCY_CODES) - 1, len(rows))
            sales.currency[rows] = (sales.currency[rows] + shift) % len(CURRENCY_CODES)

    # ------------------------------------------------------------------ encoding
    def _encode(
        self, rows: _Rows, start: int, dealer_ids: list[str], external_ids: list[str]
    ) -> pa.Table:
        ids = _ids(self.id_prefix, start + rows.id_row)
        originals = pc.if_else(
            pa.array(rows.original_row >= 0),
            _ids(self.id_prefix, start + np.maximum(rows.original_row, 0)),
            _take(external_ids, rows.original_external, null_below=0),
        )
        prices = _prices(rows.cents)
        bad_price = rows.price_code >= 0
        prices = pc.if_else(pa.array(bad_price), _take(BAD_AMOUNTS, rows.price_code), prices)
        prices = pc.if_else(
            pa.array(rows.price_code == PRICE_EMPTY), pa.scalar(None, pa.string()), prices
        )
        vins = pc.if_else(
            pa.array(rows.vin_missing), pa.scalar(None, pa.string()), _strings(rows.vin)
        )
        columns = [
            ids,
            _take(EVENT_VOCAB, rows.event),
            _take(self.dates.values, rows.date_code),
            _take(MARKETS, rows.market),
            _take(dealer_ids, rows.dealer, null_below=0),
            vins,
            _take(SERIES, rows.series),
            _take(CHANNEL_VOCAB, rows.channel),
            prices,
            _take(CURRENCY_CODES, rows.currency),
            originals,
        ]
        return pa.Table.from_arrays(columns, names=list(COLUMNS))


@dataclass(frozen=True)
class _Dates:
    """Date strings by code: the period's days, then days around it, then unparseable dates."""

    values: tuple[str, ...]
    bad_start: int
    bad_count: int


def _date_vocabulary(period: Period) -> _Dates:
    inside = [period.day(offset).isoformat() for offset in range(period.days)]
    before = [
        (period.first_day - timedelta(days=back)).isoformat()
        for back in range(1, OUT_OF_PERIOD_DAYS + 1)
    ]
    after = [
        (period.end_exclusive + timedelta(days=ahead)).isoformat()
        for ahead in range(OUT_OF_PERIOD_DAYS)
    ]
    year, month = period.text.split("-")
    bad = [f"{period.text}-32", f"{period.text}-00", f"15.{month}.{year}", "n/a", f"{year}-13-01"]
    values = (*inside, *before, *after, *bad)
    return _Dates(values, len(values) - len(bad), len(bad))


def _day_share(period: Period) -> np.ndarray:
    """More handovers towards month end, fewer at weekends."""
    position = np.arange(period.days) / max(period.days - 1, 1)
    weekday = np.array([period.day(offset).weekday() for offset in range(period.days)])
    share = (1.0 + 1.5 * position**3) * np.where(weekday >= 5, 0.35, 1.0)
    normalised: np.ndarray = share / share.sum()
    return normalised


def _take(
    vocabulary: tuple[str, ...] | list[str], codes: np.ndarray, null_below: int = 0
) -> pa.Array:
    """Strings by code; codes below `null_below` become nulls (empty in CSV)."""
    indices = pa.array(codes, mask=codes < null_below, type=pa.int64())
    return pc.take(pa.array(vocabulary, type=pa.string()), indices)


def _digit_bytes(values: np.ndarray, width: int) -> np.ndarray:
    """ASCII digits of non-negative `values` (< 2**32), zero padded to `width`, one row each."""
    remaining = values.astype(np.uint32)
    digits = np.empty((len(values), width), dtype=np.uint8)
    for column in range(width - 1, -1, -1):
        digits[:, column] = remaining % 10
        remaining //= 10
    digits += ord("0")
    return digits


def _strings(characters: np.ndarray, keep: np.ndarray | None = None) -> pa.Array:
    """A string array from a matrix of ASCII bytes, one row per string.

    `keep` (same shape) drops characters, for strings shorter than the matrix is wide; numpy
    built the bytes, so no Python string is ever created per row.
    """
    count, width = characters.shape
    if keep is None:
        data = np.ascontiguousarray(characters)
        offsets = np.arange(0, width * (count + 1), width, dtype=np.int64)
    else:
        data = characters[keep]
        offsets = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int64)
    return pa.LargeStringArray.from_buffers(
        count, pa.py_buffer(offsets), pa.py_buffer(data.tobytes())
    ).cast(pa.string())


def _ids(prefix: str, sequence: np.ndarray) -> pa.Array:
    head = np.broadcast_to(
        np.frombuffer(prefix.encode(), dtype=np.uint8), (len(sequence), len(prefix))
    )
    return _strings(np.hstack([head, _digit_bytes(sequence, 9)]))


def _prices(cents: np.ndarray) -> pa.Array:
    """`cents` as ``12345.67``: up to 7 integer digits, no leading zeros, always 2 decimals."""
    units = _digit_bytes(cents // 100, 7)
    point = np.full((len(cents), 1), ord("."), dtype=np.uint8)
    characters = np.hstack([units, point, _digit_bytes(cents % 100, 2)])
    whole = (cents // 100)[:, None]
    significant = 7 - 1 - (whole >= 10 ** np.arange(1, 7, dtype=np.int64)).sum(axis=1)
    keep = np.ones(characters.shape, dtype=bool)
    keep[:, :7] = np.arange(7)[None, :] >= significant[:, None]
    return _strings(characters, keep)


def _vocab_index(vocabulary: list[str], value: str) -> int:
    if value not in vocabulary:
        vocabulary.append(value)
    return vocabulary.index(value)


def _carry_over(table: pa.Table, rows: np.ndarray) -> tuple[CarriedSale, ...]:
    picked = table.take(pa.array(rows, type=pa.int64())).to_pylist()
    return tuple(
        CarriedSale(**{name: str(record[name]) for name in CarriedSale.__dataclass_fields__})
        for record in picked
    )
