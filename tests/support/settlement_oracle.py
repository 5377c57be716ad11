"""An independent reference implementation ("oracle") of the settlement calculation.

Spec §2 (row rules) and §4 (the calculation) of ``/work/shared/spec/SETTLEMENT.md``, in plain
Python with :class:`decimal.Decimal` and :class:`fractions.Fraction`: no Spark, and nothing
imported from ``settlement.domain.calculation``, so a test can run the real job on the same
inputs and ask that both agree to the cent. It is written for clarity, not speed (a few
thousand rows), and follows the spec first; where the spec is silent it follows
``docs/decisions.md`` ("## Calculation"), each such choice cited as ``[decisions: …]``.

Inputs are what the job reads: raw batch rows (strings, with batch id, period and line number),
the matrix, targets and ledger snapshots. Outputs are the settled lines, the rejects and the
dealer summary, shaped like ``lines/``, ``rejects/`` and ``dealer_summary/`` (spec §6).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import pyarrow.parquet as pq

COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "event_type",
    "event_date",
    "market",
    "dealer_id",
    "vin",
    "series",
    "channel",
    "net_price",
    "currency",
    "original_transaction_id",
)
# net_price is judged by INVALID_AMOUNT (sales only), original_transaction_id by MISSING_FIELD
# on cancellations only (spec §2: "optional"; "required on a cancellation").
ALWAYS_REQUIRED: tuple[str, ...] = tuple(
    c for c in COLUMNS if c not in ("net_price", "original_transaction_id")
)
SALE, CANCELLATION = "SALE", "CANCELLATION"
EVENT_TYPES = (SALE, CANCELLATION)
CHANNELS = ("PRIVATE", "FLEET", "EMPLOYEE")
BASE, BONUS, ANY = "BASE", "BONUS", "*"
NO_TARGET = "NO_TARGET"
CENT = Decimal("0.01")
# [decisions: Dates] YYYY-MM-DD and a real day. [decisions: Amounts] plain decimals, no sign,
# no exponent, at most 12 integer digits and 2 decimals.
DATE_PATTERN = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
AMOUNT_PATTERN = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,2})?$")

Key = tuple[str, str, str, str]  # (period, market, dealer_id, currency): a dealer_summary row


# --------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class RawRow:
    """One batch row as read: every value a string or None (an empty CSV field)."""

    batch_id: str
    period: str
    line_number: int
    values: Mapping[str, str | None]


@dataclass(frozen=True)
class MatrixRow:
    """One row of the matrix snapshot (spec §3)."""

    market: str
    series: str
    channel: str
    component: str
    min_attainment: Decimal
    rate: Decimal
    amount_per_unit: Decimal
    currency: str
    valid_from: date
    valid_to: date | None
    version: str = "m1"

    def valid_on(self, day: date) -> bool:
        """``valid_from`` inclusive, ``valid_to`` exclusive or open-ended (spec §3)."""
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


@dataclass(frozen=True)
class Target:
    market: str
    dealer_id: str
    period: str
    target_units: int


@dataclass(frozen=True)
class LedgerEntry:
    """What was last published for a transaction (spec §5)."""

    transaction_id: str
    period: str
    event_type: str
    original_transaction_id: str | None
    dealer_id: str
    market: str
    currency: str
    base_amount: Decimal
    bonus_amount: Decimal
    settled: bool = True


# --------------------------------------------------------------------------- outputs
@dataclass(frozen=True)
class Line:
    """A settled transaction, the columns of ``lines/`` the oracle decides."""

    period: str
    transaction_id: str
    original_transaction_id: str | None
    event_type: str
    event_date: date
    market: str
    dealer_id: str
    series: str
    channel: str
    net_price: Decimal | None
    currency: str
    base_rate: Decimal | None
    base_amount_per_unit: Decimal | None
    attainment: Decimal | None
    bonus_tier: Decimal | None
    bonus_rate: Decimal | None
    base_amount: Decimal
    bonus_amount: Decimal
    amount: Decimal
    batch_id: str
    line_number: int


@dataclass(frozen=True)
class Reject:
    batch_id: str
    line_number: int
    transaction_id: str | None
    reason: str


@dataclass(frozen=True)
class SummaryRow:
    """One ``dealer_summary/`` row (without the published delta, which needs ``deltas/``)."""

    period: str
    market: str
    dealer_id: str
    currency: str
    sales_units: int
    cancelled_units: int
    net_units: int
    target_units: int | None
    attainment: Decimal | None
    bonus_tier: Decimal | None
    flag: str
    base_total: Decimal
    bonus_total: Decimal
    clawback_total: Decimal
    total: Decimal
    previously_published: Decimal


@dataclass(frozen=True)
class Outcome:
    """What the oracle computed for a run."""

    lines: dict[str, Line]
    rejects: list[Reject]
    summary: dict[Key, SummaryRow]

    @property
    def reject_keys(self) -> set[tuple[str, int, str]]:
        """The rejects as ``(batch_id, line_number, reason)``."""
        return {(r.batch_id, r.line_number, r.reason) for r in self.rejects}


# --------------------------------------------------------------------------- arithmetic
def round_half_up(value: Decimal | Fraction, places: int) -> Decimal:
    """``value`` rounded half away from zero to ``places`` decimals, exactly.

    Fractions are rounded with integer arithmetic, so no intermediate precision can decide a
    tie (``Decimal`` division would first round to 28 digits).
    """
    if isinstance(value, Decimal):
        return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    scaled = value * 10**places
    magnitude = abs(scaled)
    whole = magnitude.numerator // magnitude.denominator
    if (magnitude - whole) * 2 >= 1:
        whole += 1
    signed = whole if scaled >= 0 else -whole
    return Decimal(signed).scaleb(-places)


def _trimmed(value: str | None) -> str | None:
    """[decisions: Values are trimmed] of spaces only (a tab is data); empty means missing."""
    if value is None:
        return None
    stripped = value.strip(" ")
    return stripped or None


def _parse_date(text: str) -> date | None:
    if not DATE_PATTERN.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------- row rules
@dataclass
class _Row:
    """A batch row with its trimmed values and what the rules made of it so far."""

    raw: RawRow
    values: dict[str, str | None]
    day: date | None = None
    price: Decimal | None = None
    reason: str | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.raw.period, self.raw.batch_id, self.raw.line_number)

    @property
    def transaction_id(self) -> str:
        value = self.values["transaction_id"]
        assert value is not None
        return value

    @property
    def event_type(self) -> str | None:
        return self.values["event_type"]

    def text(self, column: str) -> str:
        value = self.values[column]
        assert value is not None, column
        return value


def row_rule(row: _Row) -> str | None:
    """The first of spec §2's per-row rules that fails, or None.

    [decisions: Order of the row rules] MISSING_FIELD, INVALID_DATE, INVALID_AMOUNT,
    INVALID_EVENT_TYPE, INVALID_CHANNEL, OUT_OF_PERIOD; an empty net_price on a sale is
    INVALID_AMOUNT, an empty original_transaction_id on a cancellation MISSING_FIELD.
    """
    values = row.values
    event_type = values["event_type"]
    if any(values[c] is None for c in ALWAYS_REQUIRED):
        return "MISSING_FIELD"
    if event_type == CANCELLATION and values["original_transaction_id"] is None:
        return "MISSING_FIELD"
    row.day = _parse_date(row.text("event_date"))
    if row.day is None:
        return "INVALID_DATE"
    if event_type == SALE:  # spec §2: "net_price of a sale"; ignored on a cancellation
        price = values["net_price"]
        if price is None or not AMOUNT_PATTERN.match(price):
            return "INVALID_AMOUNT"
        row.price = Decimal(price)
    if event_type not in EVENT_TYPES:  # [decisions: enumerations are case-sensitive]
        return "INVALID_EVENT_TYPE"
    if values["channel"] not in CHANNELS:
        return "INVALID_CHANNEL"
    if row.day.strftime("%Y-%m") != row.raw.period:
        return "OUT_OF_PERIOD"
    return None


# --------------------------------------------------------------------------- matrix
@dataclass(frozen=True)
class Matrix:
    """The matrix snapshot, searched the way spec §4.1 and §4.5 say."""

    rows: Sequence[MatrixRow]
    _by_market: dict[str, list[MatrixRow]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_market: dict[str, list[MatrixRow]] = defaultdict(list)
        for row in self.rows:
            by_market[row.market].append(row)
        object.__setattr__(self, "_by_market", dict(by_market))

    def most_specific(
        self, component: str, market: str, series: str, channel: str, day: date
    ) -> list[MatrixRow]:
        """The rows of ``component`` valid on ``day`` at the most specific level that has any:
        (series, channel), (series, *), (*, channel), (*, *) — spec §4.1 and §4.5."""
        candidates = [
            r
            for r in self._by_market.get(market, ())
            if r.component == component and r.valid_on(day)
        ]
        for level in ((series, channel), (series, ANY), (ANY, channel), (ANY, ANY)):
            found = [r for r in candidates if (r.series, r.channel) == level]
            if found:
                return found
        return []

    def base_row(self, market: str, series: str, channel: str, day: date) -> MatrixRow | None:
        """The BASE row of a sale, or None (NO_RATE).

        [decisions: BASE uniqueness] should a level hold two valid BASE rows, the one with the
        highest (rate, amount_per_unit) is taken.
        """
        rows = self.most_specific(BASE, market, series, channel, day)
        return max(rows, key=lambda r: (r.rate, r.amount_per_unit)) if rows else None


# --------------------------------------------------------------------------- the run
@dataclass
class _Settled:
    """A settled sale or cancellation while the run is being decided."""

    row: _Row
    base_row: MatrixRow | None = None
    original: str | None = None  # a cancellation's original transaction id
    clawback: tuple[Decimal, Decimal] | None = None  # a cancellation's published amounts


def settle(
    rows: Iterable[RawRow],
    matrix: Sequence[MatrixRow],
    targets: Iterable[Target],
    ledger: Iterable[LedgerEntry],
    periods: Sequence[str],
) -> Outcome:
    """Settle ``rows`` for ``periods`` against the snapshot; see the module docstring."""
    table = Matrix(matrix)
    run_periods = set(periods)
    # [decisions: Duplicates] the first occurrence in (period, batch_id, line_number) order.
    ordered = sorted(
        (_Row(raw, {c: _trimmed(raw.values.get(c)) for c in COLUMNS}) for raw in rows),
        key=lambda r: r.key,
    )
    ledger_entries = list(ledger)
    # [decisions: Duplicates] a ledger row counts when it is settled and its period is not being
    # re-computed; ledger rows of re-computed periods are replaced by this run.
    earlier = {
        e.transaction_id: e for e in ledger_entries if e.settled and e.period not in run_periods
    }

    good: list[_Row] = []
    for row in ordered:
        row.reason = row_rule(row)
        if row.reason is None:
            good.append(row)

    # Sales: NO_RATE, then CURRENCY_MISMATCH against the matching BASE row (spec §2, §4.1).
    # [decisions: Duplicates] decided before duplicates: a sale that cannot settle for its rate
    # takes no transaction id.
    base_rows: dict[int, MatrixRow] = {}
    priced: list[_Row] = []
    for row in good:
        if row.event_type == SALE:
            assert row.day is not None
            market, series, channel = row.text("market"), row.text("series"), row.text("channel")
            base = table.base_row(market, series, channel, row.day)
            if base is None:
                row.reason = "NO_RATE"
                continue
            if base.currency != row.text("currency"):
                row.reason = "CURRENCY_MISMATCH"
                continue
            base_rows[id(row)] = base
        priced.append(row)

    # DUPLICATE_TRANSACTION. [decisions: Duplicates] only rows that passed the row rules and
    # have a rate count as seen; the first occurrence of those wins.
    seen: set[str] = set()
    candidates: list[_Row] = []
    for row in priced:
        if row.transaction_id in seen or row.transaction_id in earlier:
            row.reason = "DUPLICATE_TRANSACTION"
        else:
            seen.add(row.transaction_id)
            candidates.append(row)
    settled: dict[str, _Settled] = {
        row.transaction_id: _Settled(row, base_row=base_rows[id(row)])
        for row in candidates
        if row.event_type == SALE
    }

    # Cancellations, in run order: ORIGINAL_NOT_FOUND, CURRENCY_MISMATCH, ALREADY_CANCELLED.
    # [decisions: Cancellations] the original must be a *sale* settled in this run (any of its
    # periods, before or after the cancellation) or a sale the ledger holds as settled for a
    # period not re-computed; a published cancellation wins over all, then the first valid
    # cancellation of the run.
    cancelled = {
        e.original_transaction_id
        for e in earlier.values()
        if e.event_type == CANCELLATION and e.original_transaction_id is not None
    }
    sales_in_run = dict(settled)
    for row in candidates:
        if row.event_type != CANCELLATION:
            continue
        original = row.text("original_transaction_id")
        in_run = sales_in_run.get(original)
        published = earlier.get(original)
        if in_run is not None:
            original_currency = in_run.row.text("currency")
        elif published is not None and published.event_type == SALE:
            original_currency = published.currency
        else:
            row.reason = "ORIGINAL_NOT_FOUND"
            continue
        if original_currency != row.text("currency"):
            row.reason = "CURRENCY_MISMATCH"
        elif original in cancelled:
            row.reason = "ALREADY_CANCELLED"
        else:
            cancelled.add(original)
            clawback = None
            if in_run is None:
                assert published is not None
                clawback = (published.base_amount, published.bonus_amount)
            settled[row.transaction_id] = _Settled(row, original=original, clawback=clawback)

    return _amounts(ordered, settled, table, targets, ledger_entries, run_periods)


def _amounts(
    ordered: Sequence[_Row],
    settled: Mapping[str, _Settled],
    table: Matrix,
    targets: Iterable[Target],
    ledger: Sequence[LedgerEntry],
    run_periods: set[str],
) -> Outcome:
    """Units, attainment, BASE, BONUS, clawbacks (spec §4.2-§4.7) and the dealer summary."""
    # Spec §4.2: net units per dealer and period over all its markets and currencies.
    # [decisions: A cancellation … counts, for net_units, in the period of its own event_date
    # for its own dealer] (its batch's period: OUT_OF_PERIOD guarantees they are the same).
    net: dict[tuple[str, str], int] = defaultdict(int)
    for entry in settled.values():
        row = entry.row
        step = 1 if row.event_type == SALE else -1
        net[(row.text("dealer_id"), row.raw.period)] += step
    # [decisions: Targets] join on (dealer_id, period); the target's market is not compared.
    target_of = {(t.dealer_id, t.period): t.target_units for t in targets}

    def has_target(dealer: str, period: str) -> bool:
        units = target_of.get((dealer, period))
        return units is not None and units > 0  # spec §4.3: none or 0 is NO_TARGET

    def reported_attainment(dealer: str, period: str) -> Decimal | None:
        """[decisions: Attainment] net / target rounded half-up to 6 decimals."""
        if not has_target(dealer, period):
            return None
        return round_half_up(Fraction(net[(dealer, period)], target_of[(dealer, period)]), 6)

    def tier(entry: _Settled) -> MatrixRow | None:
        """Spec §4.5 at the most specific level with BONUS rows valid on the event date: the
        highest ``min_attainment <= attainment``. [decisions: Attainment] compared exactly as
        ``min_attainment × target_units <= net_units``."""
        row = entry.row
        dealer, period = row.text("dealer_id"), row.raw.period
        if not has_target(dealer, period):
            return None
        assert row.day is not None
        ladder = table.most_specific(
            BONUS, row.text("market"), row.text("series"), row.text("channel"), row.day
        )
        units, target = net[(dealer, period)], target_of[(dealer, period)]
        reached = [r for r in ladder if r.min_attainment * target <= units]
        return max(reached, key=lambda r: r.min_attainment) if reached else None

    lines: dict[str, Line] = {}
    amounts: dict[str, tuple[Decimal, Decimal]] = {}
    for transaction_id, entry in settled.items():
        if entry.row.event_type != SALE:
            continue
        base_row, price = entry.base_row, entry.row.price
        assert base_row is not None
        assert price is not None
        # Spec §4.4 and §4.5: round_half_up(net_price × rate + amount_per_unit, 2).
        base = round_half_up(price * base_row.rate + base_row.amount_per_unit, 2)
        bonus_row = tier(entry)
        bonus = (
            round_half_up(price * bonus_row.rate + bonus_row.amount_per_unit, 2)
            if bonus_row is not None
            else Decimal("0.00")
        )
        amounts[transaction_id] = (base, bonus)
        lines[transaction_id] = _line(
            entry.row,
            net_price=price,
            base_rate=base_row.rate,
            base_amount_per_unit=base_row.amount_per_unit,
            attainment=reported_attainment(entry.row.text("dealer_id"), entry.row.raw.period),
            bonus_row=bonus_row,
            base=base,
            bonus=bonus,
        )
    for transaction_id, entry in settled.items():
        if entry.row.event_type != CANCELLATION:
            continue
        # Spec §4.6: the negative of the original's BASE and BONUS, as computed in this run
        # (at the tier of the original's own dealer and period), else as published.
        assert entry.original is not None
        base, bonus = entry.clawback or amounts[entry.original]
        # [decisions: Cancellation lines carry no rate, tier, matrix version or net_price;
        # attainment is that of the cancellation's dealer and period]
        lines[transaction_id] = _line(
            entry.row,
            net_price=None,
            base_rate=None,
            base_amount_per_unit=None,
            attainment=reported_attainment(entry.row.text("dealer_id"), entry.row.raw.period),
            bonus_row=None,
            base=-base,
            bonus=-bonus,
        )

    rejects = [
        Reject(r.raw.batch_id, r.raw.line_number, r.values["transaction_id"], r.reason)
        for r in ordered
        if r.reason is not None
    ]
    summary = _summary(lines, ledger, run_periods, target_of, reported_attainment)
    return Outcome(lines=lines, rejects=rejects, summary=summary)


def _line(
    row: _Row,
    *,
    net_price: Decimal | None,
    base_rate: Decimal | None,
    base_amount_per_unit: Decimal | None,
    attainment: Decimal | None,
    bonus_row: MatrixRow | None,
    base: Decimal,
    bonus: Decimal,
) -> Line:
    assert row.day is not None
    assert row.event_type is not None
    return Line(
        period=row.raw.period,
        transaction_id=row.transaction_id,
        # Spec §6 lists the column without saying what a sale that names one carries: the
        # line echoes the row's (trimmed) value, as for every other input column.
        original_transaction_id=row.values["original_transaction_id"],
        event_type=row.event_type,
        event_date=row.day,
        market=row.text("market"),
        dealer_id=row.text("dealer_id"),
        series=row.text("series"),
        channel=row.text("channel"),
        net_price=net_price,
        currency=row.text("currency"),
        base_rate=base_rate,
        base_amount_per_unit=base_amount_per_unit,
        attainment=attainment,
        bonus_tier=None if bonus_row is None else bonus_row.min_attainment,
        bonus_rate=None if bonus_row is None else bonus_row.rate,
        base_amount=base,
        bonus_amount=bonus,
        amount=base + bonus,  # spec §4.7: sums of the rounded amounts
        batch_id=row.raw.batch_id,
        line_number=row.raw.line_number,
    )


@dataclass
class _Group:
    sales: int = 0
    cancellations: int = 0
    base: Decimal = Decimal("0.00")
    bonus: Decimal = Decimal("0.00")
    clawback: Decimal = Decimal("0.00")
    tiers: list[Decimal] = field(default_factory=list)
    published: Decimal = Decimal("0.00")


def _summary(
    lines: Mapping[str, Line],
    ledger: Sequence[LedgerEntry],
    run_periods: set[str],
    target_of: Mapping[tuple[str, str], int],
    attainment: Callable[[str, str], Decimal | None],
) -> dict[Key, SummaryRow]:
    """``dealer_summary/`` per (period, market, dealer_id, currency) (spec §6).

    [decisions: dealer_summary] base/bonus totals over sales, clawback over cancellations;
    ``bonus_tier`` the highest tier any sale of the group reached; a group with published lines
    (settled ledger rows of a re-computed period) but no line now appears with zero totals;
    ``previously_published`` sums those ledger rows' BASE + BONUS; ``attainment`` is the
    dealer's over all its groups of the period.
    """
    groups: dict[Key, _Group] = defaultdict(_Group)
    for line in lines.values():
        group = groups[(line.period, line.market, line.dealer_id, line.currency)]
        if line.event_type == SALE:
            group.sales += 1
            group.base += line.base_amount
            group.bonus += line.bonus_amount
            if line.bonus_tier is not None:
                group.tiers.append(line.bonus_tier)
        else:
            group.cancellations += 1
            group.clawback += line.amount
    for entry in ledger:
        if entry.settled and entry.period in run_periods:
            key = (entry.period, entry.market, entry.dealer_id, entry.currency)
            groups[key].published += entry.base_amount + entry.bonus_amount
    summary: dict[Key, SummaryRow] = {}
    for key, group in groups.items():
        period, market, dealer, currency = key
        target = target_of.get((dealer, period))
        summary[key] = SummaryRow(
            period=period,
            market=market,
            dealer_id=dealer,
            currency=currency,
            sales_units=group.sales,
            cancelled_units=group.cancellations,
            net_units=group.sales - group.cancellations,
            target_units=target,
            attainment=attainment(dealer, period),
            bonus_tier=max(group.tiers) if group.tiers else None,
            flag="" if target else NO_TARGET,
            base_total=group.base,
            bonus_total=group.bonus,
            clawback_total=group.clawback,
            total=group.base + group.bonus + group.clawback,
            previously_published=group.published,
        )
    return summary


# --------------------------------------------------------------------------- readers
def read_csv_batch(path: Path, batch_id: str, period: str) -> Iterator[RawRow]:
    """The rows of a CSV batch. [decisions: Line numbers] the file's line, header = line 1;
    blank lines are not rows. An empty field is None (as Spark's CSV reader gives it)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader)]
        for record in reader:
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            values = {
                name: (value if value != "" else None)
                for name, value in zip(header, record, strict=True)
            }
            yield RawRow(batch_id, period, reader.line_num, values)


def read_parquet_batch(path: Path, batch_id: str, period: str) -> Iterator[RawRow]:
    """The rows of a Parquet batch of string columns. [decisions: Line numbers] the row's
    0-based position in the file + 2."""
    for position, record in enumerate(pq.read_table(path).to_pylist()):
        values = {c: None if record[c] is None else str(record[c]) for c in COLUMNS}
        yield RawRow(batch_id, period, position + 2, values)


def read_matrix_csv(path: Path, *, version: str = "m1") -> list[MatrixRow]:
    """A matrix CSV with the spec §3 columns."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            MatrixRow(
                market=r["market"],
                series=r["series"],
                channel=r["channel"],
                component=r["component"],
                min_attainment=Decimal(r["min_attainment"]),
                rate=Decimal(r["rate"]),
                amount_per_unit=Decimal(r["amount_per_unit"] or "0"),
                currency=r["currency"],
                valid_from=date.fromisoformat(r["valid_from"]),
                valid_to=date.fromisoformat(r["valid_to"]) if r["valid_to"] else None,
                version=version,
            )
            for r in csv.DictReader(handle)
        ]


def read_targets_csv(path: Path) -> list[Target]:
    """A targets CSV (``market, dealer_id, period, target_units``); the last row of a
    (dealer_id, period) wins, as the latest upload does."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            Target(r["market"], r["dealer_id"], r["period"], int(r["target_units"]))
            for r in csv.DictReader(handle)
        ]
