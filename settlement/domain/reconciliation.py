"""Reconciliation of a run's calculation before anything is published (spec §2, §6).

The checks: every input row is settled or rejected (per batch, and against the manifest's row
count); the dealer summary adds up to the lines, per currency; the job's own totals agree with
both; the deltas add up to what the job announces, part by part, and to the dealer summary's
delta per (period, dealer, currency). Aggregation works batch by
batch over Arrow record batches, so memory does not grow with the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

ZERO = Decimal("0.00")


class CalculationMissingError(Exception):
    """``calculation.json`` is absent: the calculation did not complete."""


class ReconciliationError(Exception):
    """The run's figures do not add up; nothing may be published.

    Attributes
    ----------
    mismatches
        Every mismatch found, each a readable sentence.
    """

    def __init__(self, run_id: str, mismatches: Sequence[str]) -> None:
        self.mismatches = list(mismatches)
        super().__init__(
            f"run {run_id} does not reconcile ({len(self.mismatches)} mismatch(es)): "
            + "; ".join(self.mismatches)
        )


@dataclass
class CurrencyTotals:
    """Money totals of one currency: BASE and BONUS over sales, clawbacks, and the total."""

    base_total: Decimal = ZERO
    bonus_total: Decimal = ZERO
    clawback_total: Decimal = ZERO
    total: Decimal = ZERO

    def as_json(self) -> dict[str, str]:
        return {
            "base_total": str(self.base_total),
            "bonus_total": str(self.bonus_total),
            "clawback_total": str(self.clawback_total),
            "total": str(self.total),
        }


Booking = tuple[str, str, str]
"""Where Core View books a record: (period, dealer_id, currency)."""

# A mismatch per booking is listed up to this many times, then counted.
LISTED_BOOKING_FAULTS = 20


@dataclass
class DeltaStats:
    """What ``deltas/`` holds: records, the parts present, totals per currency and per
    booking, bad rows."""

    records: int = 0
    parts: set[int] = field(default_factory=set)
    totals: dict[str, Decimal] = field(default_factory=dict)
    inconsistent_rows: int = 0
    booked: dict[Booking, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Reconciliation:
    """A run that reconciles: what the publish steps need (references and counts only)."""

    run_id: str
    parts: list[int]
    delta_records: int
    rows_in: int
    rows_settled: int
    rows_rejected: int
    totals: dict[str, CurrencyTotals]

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "parts": self.parts,
            "delta_records": self.delta_records,
            "rows_in": self.rows_in,
            "rows_settled": self.rows_settled,
            "rows_rejected": self.rows_rejected,
            "totals": [
                {"currency": currency, **totals.as_json()}
                for currency, totals in sorted(self.totals.items())
            ],
        }


# --------------------------------------------------------------------------- aggregation
def _grouped_sums(
    batch: pa.RecordBatch, keys: list[str], columns: list[str]
) -> list[dict[str, Any]]:
    table = pa.Table.from_batches([batch])
    grouped = table.group_by(keys).aggregate([(column, "sum") for column in columns])
    rows: list[dict[str, Any]] = grouped.to_pylist()
    return rows


def _money(value: Any) -> Decimal:
    return ZERO if value is None else Decimal(value).quantize(ZERO)


def line_totals(batches: Iterable[pa.RecordBatch]) -> dict[str, CurrencyTotals]:
    """Totals per currency of ``lines/`` (columns currency, event_type, amounts)."""
    totals: dict[str, CurrencyTotals] = {}
    for batch in batches:
        if batch.num_rows == 0:
            continue
        sums = _grouped_sums(
            batch, ["currency", "event_type"], ["base_amount", "bonus_amount", "amount"]
        )
        for row in sums:
            current = totals.setdefault(row["currency"], CurrencyTotals())
            amount = _money(row["amount_sum"])
            if row["event_type"] == "CANCELLATION":
                current.clawback_total += amount
            else:
                current.base_total += _money(row["base_amount_sum"])
                current.bonus_total += _money(row["bonus_amount_sum"])
            current.total += amount
    return totals


def summary_totals(batches: Iterable[pa.RecordBatch]) -> dict[str, CurrencyTotals]:
    """Totals per currency of ``dealer_summary/``."""
    columns = ["base_total", "bonus_total", "clawback_total", "total"]
    totals: dict[str, CurrencyTotals] = {}
    for batch in batches:
        if batch.num_rows == 0:
            continue
        for row in _grouped_sums(batch, ["currency"], columns):
            current = totals.setdefault(row["currency"], CurrencyTotals())
            current.base_total += _money(row["base_total_sum"])
            current.bonus_total += _money(row["bonus_total_sum"])
            current.clawback_total += _money(row["clawback_total_sum"])
            current.total += _money(row["total_sum"])
    return totals


def delta_stats(batches: Iterable[tuple[int, pa.RecordBatch]]) -> DeltaStats:
    """Records, parts, totals per currency and rows where ``delta ≠ base_delta + bonus_delta``.

    Parameters
    ----------
    batches
        ``(part, record batch)`` pairs of ``deltas/part=<k>/``.
    """
    stats = DeltaStats()
    for part, batch in batches:
        stats.parts.add(part)
        stats.records += batch.num_rows
        if batch.num_rows == 0:
            continue
        parts_sum = pc.add(batch.column("base_delta"), batch.column("bonus_delta"))
        mismatched = pc.not_equal(
            pc.cast(parts_sum, batch.column("delta").type), batch.column("delta")
        )
        stats.inconsistent_rows += int(pc.sum(pc.cast(mismatched, pa.int64())).as_py() or 0)
        _add_booked(stats.booked, batch, "delta")
    for (_, _, currency), amount in stats.booked.items():
        stats.totals[currency] = stats.totals.get(currency, ZERO) + amount
    return stats


def summary_deltas(batches: Iterable[pa.RecordBatch]) -> dict[Booking, Decimal]:
    """The dealer summary's ``delta`` per (period, dealer_id, currency)."""
    booked: dict[Booking, Decimal] = {}
    for batch in batches:
        if batch.num_rows:
            _add_booked(booked, batch, "delta")
    return booked


def _add_booked(booked: dict[Booking, Decimal], batch: pa.RecordBatch, column: str) -> None:
    for row in _grouped_sums(batch, ["period", "dealer_id", "currency"], [column]):
        key = (row["period"], row["dealer_id"], row["currency"])
        booked[key] = booked.get(key, ZERO) + _money(row[f"{column}_sum"])


# --------------------------------------------------------------------------- the checks
def reconcile(
    *,
    run_id: str,
    calculation: Mapping[str, Any],
    manifest_rows: Mapping[str, int],
    lines: Mapping[str, CurrencyTotals],
    summary: Mapping[str, CurrencyTotals],
    deltas: DeltaStats,
    summary_booked: Mapping[Booking, Decimal],
) -> Reconciliation:
    """Check the calculation's outputs against each other and the manifests.

    Parameters
    ----------
    run_id
        The run.
    calculation
        ``calculation.json`` (docs/architecture.md).
    manifest_rows
        ``batch_id -> row_count`` from ``input/batches.json``.
    lines, summary
        Totals per currency of ``lines/`` and ``dealer_summary/``.
    deltas
        What ``deltas/`` holds.
    summary_booked
        The dealer summary's delta per (period, dealer_id, currency): the deltas must add up to
        it there, not only per currency, or Core View would book money under the wrong period
        or dealer.

    Raises
    ------
    ReconciliationError
        Listing every mismatch.
    """
    mismatches = [
        *_run_id_faults(run_id, calculation),
        *_count_faults(calculation, manifest_rows),
        *_total_faults("dealer_summary", summary, "lines", lines),
        *_total_faults("calculation.json", _declared_totals(calculation), "lines", lines),
        *_delta_faults(calculation, deltas),
        *_booking_faults(deltas.booked, summary_booked),
    ]
    if mismatches:
        raise ReconciliationError(run_id, mismatches)
    return Reconciliation(
        run_id=run_id,
        parts=sorted(deltas.parts) if deltas.records else [],
        delta_records=deltas.records,
        rows_in=int(calculation["rows_in"]),
        rows_settled=int(calculation["rows_settled"]),
        rows_rejected=int(calculation["rows_rejected"]),
        totals=dict(lines),
    )


def _run_id_faults(run_id: str, calculation: Mapping[str, Any]) -> list[str]:
    found = calculation.get("run_id")
    return [] if found == run_id else [f"calculation.json belongs to run {found}, not {run_id}"]


def _count_faults(calculation: Mapping[str, Any], manifest_rows: Mapping[str, int]) -> list[str]:
    faults = []
    counted = {batch["batch_id"]: batch for batch in calculation.get("batches", [])}
    for batch_id, expected in sorted(manifest_rows.items()):
        batch = counted.get(batch_id)
        if batch is None:
            faults.append(f"batch {batch_id} is missing from the calculation's counts")
            continue
        rows_in, settled, rejected = (
            int(batch[key]) for key in ("rows_in", "rows_settled", "rows_rejected")
        )
        if rows_in != expected:
            faults.append(f"batch {batch_id}: {rows_in} rows read, the manifest says {expected}")
        if rows_in != settled + rejected:
            faults.append(
                f"batch {batch_id}: rows_in {rows_in} ≠ settled {settled} + rejected {rejected}"
            )
    for batch_id in sorted(set(counted) - set(manifest_rows)):
        faults.append(f"batch {batch_id} was calculated but is not an input of the run")
    totals = [int(calculation[key]) for key in ("rows_in", "rows_settled", "rows_rejected")]
    if totals[0] != totals[1] + totals[2]:
        faults.append(f"rows_in {totals[0]} ≠ settled {totals[1]} + rejected {totals[2]}")
    if totals[0] != sum(manifest_rows.values()):
        faults.append(f"rows_in {totals[0]} ≠ {sum(manifest_rows.values())} rows in the manifests")
    return faults


def _declared_totals(calculation: Mapping[str, Any]) -> dict[str, CurrencyTotals]:
    return {
        entry["currency"]: CurrencyTotals(
            base_total=_money(entry["base_total"]),
            bonus_total=_money(entry["bonus_total"]),
            clawback_total=_money(entry["clawback_total"]),
            total=_money(entry["total"]),
        )
        for entry in calculation.get("totals", [])
    }


def _total_faults(
    name: str,
    found: Mapping[str, CurrencyTotals],
    reference_name: str,
    reference: Mapping[str, CurrencyTotals],
) -> list[str]:
    faults = []
    for currency in sorted(set(found) | set(reference)):
        mine = found.get(currency, CurrencyTotals()).as_json()
        theirs = reference.get(currency, CurrencyTotals()).as_json()
        for key in mine:
            if Decimal(mine[key]) != Decimal(theirs[key]):
                faults.append(
                    f"{currency} {key}: {name} {mine[key]} ≠ {reference_name} {theirs[key]}"
                )
    return faults


def _delta_faults(calculation: Mapping[str, Any], deltas: DeltaStats) -> list[str]:
    declared = calculation.get("deltas", {})
    faults = []
    if int(declared.get("records", -1)) != deltas.records:
        faults.append(
            f"deltas/ holds {deltas.records} records, calculation.json says "
            f"{declared.get('records')}"
        )
    declared_parts = {int(part) for part in declared.get("parts", [])}
    if deltas.records and declared_parts != deltas.parts:
        faults.append(
            f"deltas/ holds parts {sorted(deltas.parts)}, calculation.json says "
            f"{sorted(declared_parts)}"
        )
    if deltas.inconsistent_rows:
        faults.append(f"{deltas.inconsistent_rows} delta row(s) where delta ≠ base + bonus delta")
    declared_totals = {
        entry["currency"]: _money(entry["delta"]) for entry in declared.get("totals", [])
    }
    for currency in sorted(set(declared_totals) | set(deltas.totals)):
        mine, theirs = deltas.totals.get(currency, ZERO), declared_totals.get(currency, ZERO)
        if mine != theirs:
            faults.append(f"{currency} delta: deltas/ {mine} ≠ calculation.json {theirs}")
    return faults


def _booking_faults(
    booked: Mapping[Booking, Decimal], summary: Mapping[Booking, Decimal]
) -> list[str]:
    differing = [
        f"{period} {dealer} {currency} delta: deltas/ {booked.get(key, ZERO)} ≠ "
        f"dealer_summary {summary.get(key, ZERO)}"
        for key in sorted(set(booked) | set(summary))
        for period, dealer, currency in [key]
        if booked.get(key, ZERO) != summary.get(key, ZERO)
    ]
    if len(differing) > LISTED_BOOKING_FAULTS:
        more = len(differing) - LISTED_BOOKING_FAULTS
        return [*differing[:LISTED_BOOKING_FAULTS], f"and {more} more (period, dealer) deltas"]
    return differing
