"""What the synthetic dealer network sells, where, and the rejects it can be asked to contain."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from settlement.domain.transactions import TRANSACTION_COLUMNS

PERIOD_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

COLUMNS = TRANSACTION_COLUMNS

MARKETS: tuple[str, ...] = ("DE", "FR", "IT", "GB", "CH", "SE", "US")
CURRENCIES: tuple[str, ...] = ("EUR", "EUR", "EUR", "GBP", "CHF", "SEK", "USD")
# Share of the roster per market: a big home market, a long tail.
MARKET_DEALER_SHARE = np.array([0.30, 0.15, 0.12, 0.15, 0.04, 0.06, 0.18])

SERIES: tuple[str, ...] = (
    "1", "2", "3", "4", "5", "7", "X1", "X3", "X5", "X7", "i4", "i5", "i7", "iX",
)  # fmt: skip
SERIES_SHARE = np.array(
    [0.08, 0.06, 0.15, 0.07, 0.09, 0.03, 0.11, 0.12, 0.09, 0.03, 0.06, 0.04, 0.02, 0.05]
)
SERIES_LIST_PRICE = np.array(
    [32_000, 38_000, 48_000, 55_000, 62_000, 110_000, 42_000, 55_000, 78_000, 105_000,
     58_000, 75_000, 120_000, 95_000],
    dtype=np.float64,
)  # fmt: skip
# Series "1" is not sold in the US: the US matrix has no BASE row for it, which is how NO_RATE
# rows are made (a US sale of series 1).
NOT_SOLD: dict[str, tuple[str, ...]] = {"US": ("1",)}
NO_RATE_MARKET = "US"
NO_RATE_SERIES = "1"

CHANNELS: tuple[str, ...] = ("PRIVATE", "FLEET", "EMPLOYEE")
CURRENCY_CODES: tuple[str, ...] = ("EUR", "GBP", "CHF", "SEK", "USD")
CHANNEL_SHARE = np.array([0.62, 0.30, 0.08])
CHANNEL_PRICE_FACTOR = np.array([1.0, 0.92, 0.85])

MIN_PRICE_CENTS = 2_000_000
MAX_PRICE_CENTS = 15_000_000
CANCELLATION_SHARE = 0.03
MAX_DEALERS = 2_000
ROWS_PER_DEALER = 20  # scales the roster down for small generations

EVENT_TYPES: tuple[str, ...] = ("SALE", "CANCELLATION")
BAD_EVENT_TYPES: tuple[str, ...] = ("RETURN", "LEASE", "REFUND")
BAD_CHANNELS: tuple[str, ...] = ("RETAIL", "DEMO", "RENTAL")
# Plus an empty net_price on a sale, which is also INVALID_AMOUNT (spec §2).
BAD_AMOUNTS: tuple[str, ...] = ("-1500.00", "abc", "45000.125")
VIN_ALPHABET = np.frombuffer(b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789", dtype=np.uint8)
VIN_WMI = b"WBA"

REASONS: tuple[str, ...] = (
    "MISSING_FIELD",
    "INVALID_DATE",
    "INVALID_AMOUNT",
    "INVALID_EVENT_TYPE",
    "INVALID_CHANNEL",
    "OUT_OF_PERIOD",
    "DUPLICATE_TRANSACTION",
    "NO_RATE",
    "CURRENCY_MISMATCH",
    "ORIGINAL_NOT_FOUND",
    "ALREADY_CANCELLED",
)
MAX_INVALID_SHARE = 0.5


@dataclass(frozen=True)
class Period:
    """A calendar month and the date strings the generator draws from."""

    text: str
    first_day: date
    days: int

    @classmethod
    def parse(cls, text: str) -> Period:
        match = PERIOD_PATTERN.match(text)
        if match is None:
            raise ValueError(f"period must be YYYY-MM, got {text!r}")
        year, month = int(match.group(1)), int(match.group(2))
        return cls(text, date(year, month, 1), calendar.monthrange(year, month)[1])

    @property
    def end_exclusive(self) -> date:
        return self.first_day + timedelta(days=self.days)

    def day(self, offset: int) -> date:
        return self.first_day + timedelta(days=offset)

    def ordinal(self) -> int:
        return self.first_day.year * 12 + self.first_day.month - 1

    def compact(self) -> str:
        return self.text.replace("-", "")


@dataclass(frozen=True)
class Roster:
    """The dealers active in a generation: id, market index and share of the sales."""

    dealer_ids: tuple[str, ...]
    market_index: np.ndarray
    weight: np.ndarray

    @property
    def size(self) -> int:
        return len(self.dealer_ids)


def dealer_count(rows: int) -> int:
    """About 2,000 dealers, fewer when there are few rows, at least two per market."""
    return int(min(MAX_DEALERS, max(2 * len(MARKETS), rows // ROWS_PER_DEALER)))


def build_roster(rows: int, seed: int) -> Roster:
    """Spread the dealers over the markets; ids depend only on the count, shares on the seed.

    Parameters
    ----------
    rows : int
        Rows of the generation; sets the roster size (see `dealer_count`).
    seed : int
        Seeds the skewed (Pareto) activity of the dealers.
    """
    total = dealer_count(rows)
    per_market = np.maximum(2, np.floor(MARKET_DEALER_SHARE * total).astype(np.int64))
    ids: list[str] = []
    markets: list[int] = []
    for market_index, count in enumerate(per_market.tolist()):
        ids.extend(f"{MARKETS[market_index]}{number:05d}" for number in range(1, count + 1))
        markets.extend([market_index] * count)
    rng = np.random.default_rng([seed, 7])
    activity = rng.pareto(2.5, size=len(ids)) + 0.2
    return Roster(tuple(ids), np.array(markets, dtype=np.int64), activity / activity.sum())


def series_cumulative_share() -> np.ndarray:
    """Per market, the cumulative share of each series (0 for series a market does not sell)."""
    shares = np.tile(SERIES_SHARE, (len(MARKETS), 1))
    for market, excluded in NOT_SOLD.items():
        for series in excluded:
            shares[MARKETS.index(market), SERIES.index(series)] = 0.0
    shares /= shares.sum(axis=1, keepdims=True)
    cumulative: np.ndarray = np.cumsum(shares, axis=1)
    cumulative[:, -1] = 1.0
    return cumulative
