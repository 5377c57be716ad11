"""Publishing deltas to Core View (spec §5, §7): announce, publish parts, commit.

Pure against ports: the Core View client and the acknowledgement store are Protocols, so the
same use-case runs against the HTTP client, the ``file://`` sink and in-memory fakes.

Exactly-once rests on two properties. A part's records are split into batches
deterministically (same records -> same batches -> same seq numbers and byte-identical bodies),
and every acknowledged batch is recorded. A re-drive therefore skips what was acknowledged and
re-sends the rest to the same addresses with the same bodies, which Core View answers as replays.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from itertools import compress
from json.encoder import encode_basestring_ascii
from typing import Any, Protocol, overload

from settlement.domain.ports import PublishAckStore

MAX_BATCH_RECORDS = 5000
DEFAULT_MAX_BATCH_BYTES = 5_000_000
MONEY_FIELDS = ("base_delta", "bonus_delta", "delta", "base_amount", "bonus_amount")
TEXT_FIELDS = ("transaction_id", "period", "dealer_id", "currency")
RECORD_FIELDS = ("transaction_id", "period", "dealer_id", "currency", *MONEY_FIELDS)


# --------------------------------------------------------------------------- errors
class CoreViewError(Exception):
    """Core View could not take a request (raised by every Core View client)."""


class CoreViewRejectedError(CoreViewError):
    """Core View refused a request with a non-retryable 4xx: the step fails at once.

    The message is Core View's own; it never contains the bearer token.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"Core View answered {status} {code}: {message}")


class CoreViewConflictError(CoreViewRejectedError):
    """409: a different body was sent to an address Core View already holds."""


class CoreViewUnavailableError(CoreViewError):
    """Retries exhausted on 429 / 5xx / timeouts / dropped connections."""


class CommitMismatchError(Exception):
    """Core View's figures at commit differ from ours: the run fails."""


class PublishDriftError(Exception):
    """A part's records no longer produce the body already acknowledged for a batch.

    Sending it would put a different body to an acknowledged address, so publishing stops.
    """


class InvalidDeltaRecordError(ValueError):
    """A delta record (from a file or a request body) is malformed."""


# --------------------------------------------------------------------------- values
@dataclass(frozen=True, slots=True)
class DeltaRecord:
    """One published line: the ``deltas/`` columns of spec §6 (money as ``Decimal``)."""

    transaction_id: str
    period: str
    dealer_id: str
    currency: str
    base_delta: Decimal
    bonus_delta: Decimal
    delta: Decimal
    base_amount: Decimal
    bonus_amount: Decimal

    def to_payload(self) -> dict[str, str]:
        """The record as JSON-ready strings (money as decimal strings)."""
        return {name: str(getattr(self, name)) for name in RECORD_FIELDS}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], *, where: str = "record") -> DeltaRecord:
        """Parse a JSON object, naming ``where`` and the field on bad input."""
        if not isinstance(payload, Mapping):
            raise InvalidDeltaRecordError(f"{where}: expected an object")
        unknown = set(payload) - set(RECORD_FIELDS)
        if unknown:
            raise InvalidDeltaRecordError(f"{where}: unknown fields {sorted(unknown)}")
        values: dict[str, Any] = {}
        for name in TEXT_FIELDS:
            text = payload.get(name)
            if not isinstance(text, str) or not text:
                raise InvalidDeltaRecordError(f"{where}: field {name} must be a non-empty string")
            values[name] = text
        for name in MONEY_FIELDS:
            values[name] = parse_money(payload.get(name), where=f"{where}: field {name}")
        return cls(**values)


def parse_money(value: object, *, where: str) -> Decimal:
    """A decimal string with at most 2 decimals -> ``Decimal`` (never a float)."""
    if not isinstance(value, str):
        raise InvalidDeltaRecordError(f"{where} must be a decimal string")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise InvalidDeltaRecordError(f"{where} is not a decimal: {value!r}") from None
    exponent = amount.as_tuple().exponent
    if not amount.is_finite() or not isinstance(exponent, int) or exponent < -2:
        raise InvalidDeltaRecordError(f"{where} must be finite with at most 2 decimals: {value!r}")
    return amount


@dataclass(frozen=True)
class CurrencyTotals:
    """Sums of the published deltas in one currency."""

    currency: str
    base_delta: Decimal = Decimal("0.00")
    bonus_delta: Decimal = Decimal("0.00")
    delta: Decimal = Decimal("0.00")

    def to_payload(self) -> dict[str, str]:
        return {
            "currency": self.currency,
            "base_delta": str(self.base_delta),
            "bonus_delta": str(self.bonus_delta),
            "delta": str(self.delta),
        }


@dataclass(frozen=True)
class RunFigures:
    """Record count and totals per currency (sorted by currency, so equality is exact)."""

    records: int
    totals: tuple[CurrencyTotals, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "totals", tuple(sorted(self.totals, key=lambda t: t.currency)))

    def to_payload(self) -> dict[str, Any]:
        return {"records": self.records, "totals": [t.to_payload() for t in self.totals]}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], *, where: str = "figures") -> RunFigures:
        """Parse ``{"records": n, "totals": [{currency, base_delta, bonus_delta, delta}]}``."""
        records = payload.get("records")
        if not isinstance(records, int) or isinstance(records, bool) or records < 0:
            raise InvalidDeltaRecordError(f"{where}: records must be an integer >= 0")
        totals = payload.get("totals", [])
        if not isinstance(totals, list):
            raise InvalidDeltaRecordError(f"{where}: totals must be a list")
        parsed = [
            _parse_totals(entry, where=f"{where}: totals[{i}]") for i, entry in enumerate(totals)
        ]
        if len({t.currency for t in parsed}) != len(parsed):
            raise InvalidDeltaRecordError(f"{where}: a currency appears twice in totals")
        return cls(records=records, totals=tuple(parsed))


def _parse_totals(entry: object, *, where: str) -> CurrencyTotals:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("currency"), str):
        raise InvalidDeltaRecordError(f"{where}: expected an object with a currency")
    return CurrencyTotals(
        currency=entry["currency"],
        **{
            name: parse_money(entry.get(name), where=f"{where}: field {name}")
            for name in ("base_delta", "bonus_delta", "delta")
        },
    )


class TotalsAccumulator:
    """Running count and per-currency sums of delta records (exact ``Decimal``)."""

    def __init__(self) -> None:
        self.records = 0
        self._sums: dict[str, list[Decimal]] = {}

    def add(self, record: DeltaRecord) -> None:
        self.add_values(record.currency, record.base_delta, record.bonus_delta, record.delta)

    def add_values(self, currency: str, base: Decimal, bonus: Decimal, delta: Decimal) -> None:
        self.records += 1
        sums = self._sums.setdefault(currency, [Decimal("0.00")] * 3)
        sums[0] += base
        sums[1] += bonus
        sums[2] += delta

    def merge(self, figures: RunFigures) -> None:
        self.records += figures.records
        for totals in figures.totals:
            sums = self._sums.setdefault(totals.currency, [Decimal("0.00")] * 3)
            sums[0] += totals.base_delta
            sums[1] += totals.bonus_delta
            sums[2] += totals.delta

    def figures(self) -> RunFigures:
        return RunFigures(
            records=self.records,
            totals=tuple(CurrencyTotals(c, *sums) for c, sums in self._sums.items()),
        )


def figures_of(records: Iterable[DeltaRecord]) -> RunFigures:
    """Count and totals of ``records`` (what a commit must match)."""
    accumulator = TotalsAccumulator()
    for record in records:
        accumulator.add(record)
    return accumulator.figures()


def figures_of_payloads(records: Sequence[Mapping[str, str]]) -> RunFigures:
    """Count and totals of one batch's JSON records, summed column by column.

    The records must already be valid (money as decimal strings): ``map``/``compress`` keep
    the loop in C, several times faster than a :class:`DeltaRecord` per record, which is what
    lets a commit total a million stored records in seconds.
    """
    currencies = [r["currency"] for r in records]
    columns = [[r[name] for r in records] for name in ("base_delta", "bonus_delta", "delta")]
    totals = []
    for currency in sorted(set(currencies)):
        mask = [c == currency for c in currencies]
        sums = [sum(map(Decimal, compress(column, mask)), Decimal("0.00")) for column in columns]
        totals.append(CurrencyTotals(currency, *sums))
    return RunFigures(len(records), tuple(totals))


@dataclass(frozen=True)
class RunHeader:
    """What ``PUT /v1/runs/{run_id}`` announces: periods and the expected figures."""

    periods: tuple[str, ...]
    expected: RunFigures

    def to_payload(self) -> dict[str, Any]:
        return {"periods": list(self.periods), "expected": self.expected.to_payload()}


@dataclass(frozen=True)
class CommitReceipt:
    """Core View's answer to a commit: its own figures, from what it stored."""

    run_id: str
    figures: RunFigures


@dataclass(frozen=True)
class PartResult:
    """What publishing one part did (a re-drive shows ``skipped`` > 0)."""

    run_id: str
    part: int
    batches: int
    sent: int
    skipped: int
    records: int

    def to_payload(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "part": self.part,
            "batches": self.batches,
            "sent": self.sent,
            "skipped": self.skipped,
            "records": self.records,
        }


# --------------------------------------------------------------------------- batches
def encode_record(record: DeltaRecord) -> bytes:
    """Canonical JSON of one record: fixed key order, no spaces (what every client sends)."""
    esc = encode_basestring_ascii
    return (
        f'{{"transaction_id":{esc(record.transaction_id)},"period":{esc(record.period)},'
        f'"dealer_id":{esc(record.dealer_id)},"currency":{esc(record.currency)},'
        f'"base_delta":"{record.base_delta!s}","bonus_delta":"{record.bonus_delta!s}",'
        f'"delta":"{record.delta!s}","base_amount":"{record.base_amount!s}",'
        f'"bonus_amount":"{record.bonus_amount!s}"}}'
    ).encode("ascii")


@dataclass(frozen=True, eq=False)
class Batch(Sequence[DeltaRecord]):
    """A sequence of records that remembers its canonical body and the body's sha256."""

    seq: int
    records: tuple[DeltaRecord, ...]
    body: bytes
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.body).hexdigest())

    @overload
    def __getitem__(self, index: int) -> DeltaRecord: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[DeltaRecord]: ...
    def __getitem__(self, index: int | slice) -> DeltaRecord | Sequence[DeltaRecord]:
        return self.records[index]

    def __len__(self) -> int:
        return len(self.records)


_EMPTY_BODY_BYTES = len(b'{"records":[]}')


def _join_body(encoded: Sequence[bytes]) -> bytes:
    return b'{"records":[' + b",".join(encoded) + b"]}"


def encode_batch(records: Sequence[DeltaRecord]) -> bytes:
    """The canonical body ``{"records": [...]}`` (reused when ``records`` is a ``Batch``)."""
    if isinstance(records, Batch):
        return records.body
    return _join_body([encode_record(record) for record in records])


def split_into_batches(
    records: Iterable[DeltaRecord],
    *,
    batch_size: int = MAX_BATCH_RECORDS,
    max_bytes: int = DEFAULT_MAX_BATCH_BYTES,
) -> Iterator[Batch]:
    """Cut ``records`` into batches of at most ``batch_size`` records and ``max_bytes`` bytes.

    Deterministic: the same records in the same order give the same batches, seq numbers and
    bodies. Streams: only the batch being filled is held.
    """
    if not 1 <= batch_size <= MAX_BATCH_RECORDS:
        raise ValueError(f"batch_size must be in 1..{MAX_BATCH_RECORDS}, got {batch_size}")
    seq = 0
    held: list[DeltaRecord] = []
    encoded: list[bytes] = []
    size = _EMPTY_BODY_BYTES
    for record in records:
        line = encode_record(record)
        if held and (len(held) == batch_size or size + 1 + len(line) > max_bytes):
            yield Batch(seq, tuple(held), _join_body(encoded))
            seq, held, encoded, size = seq + 1, [], [], _EMPTY_BODY_BYTES
        size += len(line) + (1 if held else 0)  # the comma before every record but the first
        held.append(record)
        encoded.append(line)
    if held:
        yield Batch(seq, tuple(held), _join_body(encoded))


# --------------------------------------------------------------------------- the port
class CoreViewClient(Protocol):
    """Core View as the publishing use-case sees it (HTTP API or ``file://`` sink)."""

    @property
    def max_in_flight(self) -> int:
        """How many batches of one part may be in flight at once."""

    def put_run(self, run_id: str, header: RunHeader) -> None:
        """Announce the run (idempotent; a different header raises ``CoreViewConflictError``)."""

    def put_batch(self, run_id: str, part: int, seq: int, records: Sequence[DeltaRecord]) -> None:
        """Store one batch at its address (idempotent; another body: ``CoreViewConflictError``)."""

    def commit(self, run_id: str, summary: RunFigures) -> CommitReceipt:
        """Close the run; Core View answers its own figures."""

    def committed_figures(self, run_id: str) -> RunFigures | None:
        """Core View's answer to the run's commit; None when it holds no commit of the run."""


# --------------------------------------------------------------------------- use-cases
def announce_run(
    run_id: str, periods: Sequence[str], expected: RunFigures, client: CoreViewClient
) -> RunHeader:
    """Tell Core View a run is coming, with what it will hold at commit.

    Returns
    -------
    RunHeader
        The header sent (idempotent: re-announcing the same header is a no-op).
    """
    header = RunHeader(periods=tuple(periods), expected=expected)
    client.put_run(run_id, header)
    return header


def publish_part(
    run_id: str,
    part: int,
    records: Iterable[DeltaRecord],
    *,
    client: CoreViewClient,
    acks: PublishAckStore,
    batch_size: int = MAX_BATCH_RECORDS,
    max_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    max_in_flight: int | None = None,
) -> PartResult:
    """Publish one part's records, resuming after whatever Core View already acknowledged.

    Parameters
    ----------
    records
        The part's delta records, in a stable order (streamed; never held whole).
    acks
        Remembers acknowledged batches; consulted first so a re-drive skips them.
    max_in_flight
        Batches sent concurrently (default: the client's own bound).

    Raises
    ------
    PublishDriftError
        An acknowledged address would get a different body (the part's records changed).
    CoreViewError
        Core View refused a batch or stayed unavailable; acknowledged batches stay recorded.
    """
    acknowledged = acks.acknowledged(run_id, part)
    window = max(1, max_in_flight or client.max_in_flight)
    batches = sent = skipped = count = 0
    pending: deque[tuple[Batch, Future[None]]] = deque()
    with ThreadPoolExecutor(max_workers=window, thread_name_prefix="publish") as pool:
        try:
            for batch in split_into_batches(records, batch_size=batch_size, max_bytes=max_bytes):
                batches, count = batches + 1, count + len(batch)
                if _already_acknowledged(run_id, part, batch, acknowledged):
                    skipped += 1
                    continue
                future = pool.submit(client.put_batch, run_id, part, batch.seq, batch)
                pending.append((batch, future))
                while len(pending) >= window:
                    _record_oldest(run_id, part, pending, acks)
                    sent += 1
            while pending:
                _record_oldest(run_id, part, pending, acks)
                sent += 1
        except BaseException:
            for _, future in pending:
                future.cancel()
            raise
    return PartResult(run_id, part, batches=batches, sent=sent, skipped=skipped, records=count)


def _already_acknowledged(
    run_id: str, part: int, batch: Batch, acknowledged: dict[int, str]
) -> bool:
    previous = acknowledged.get(batch.seq)
    if previous is None:
        return False
    if previous != batch.sha256:
        raise PublishDriftError(
            f"run {run_id} part {part} batch {batch.seq}: the records differ from the batch "
            "Core View acknowledged; refusing to send a different body to the same address"
        )
    return True


def _record_oldest(
    run_id: str, part: int, pending: deque[tuple[Batch, Future[None]]], acks: PublishAckStore
) -> None:
    batch, future = pending.popleft()
    future.result()
    acks.record_ack(run_id, part, batch.seq, len(batch), batch.sha256)


def commit_run(run_id: str, expected: RunFigures, client: CoreViewClient) -> CommitReceipt:
    """Commit the run and check Core View's figures against ours.

    Raises
    ------
    CommitMismatchError
        Core View holds a different record count or different totals.
    """
    receipt = client.commit(run_id, expected)
    differences = describe_differences(expected, receipt.figures)
    if differences:
        raise CommitMismatchError(
            f"run {run_id}: Core View's figures differ from ours: {'; '.join(differences)}"
        )
    return receipt


def describe_differences(ours: RunFigures, theirs: RunFigures) -> list[str]:
    """Human-readable differences between two sets of figures (empty when equal)."""
    differences = []
    if ours.records != theirs.records:
        differences.append(f"records ours {ours.records} theirs {theirs.records}")
    ours_by_currency = {t.currency: t for t in ours.totals}
    theirs_by_currency = {t.currency: t for t in theirs.totals}
    for currency in sorted(ours_by_currency.keys() | theirs_by_currency.keys()):
        mine = ours_by_currency.get(currency, CurrencyTotals(currency))
        other = theirs_by_currency.get(currency, CurrencyTotals(currency))
        for name in ("base_delta", "bonus_delta", "delta"):
            if getattr(mine, name) != getattr(other, name):
                differences.append(
                    f"{currency} {name} ours {getattr(mine, name)} theirs {getattr(other, name)}"
                )
    return differences
