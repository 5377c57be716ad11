"""What a run report shows: plain frozen dataclasses, money as ``Decimal``.

The loader fills them from the data store; the renderer turns them into HTML. Optional facts
are ``None`` (shown as "—") so a report of a failed or partial run still renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class InputBatch:
    """One batch the run read, as recorded in ``run_report.json`` ``inputs``."""

    batch_id: str
    period: str | None
    sha256: str | None


@dataclass(frozen=True)
class RunHeader:
    """Identity, state and provenance of the run."""

    run_id: str
    periods: tuple[str, ...] = ()
    state: str | None = None
    requested_by: str | None = None
    dry_run: bool | None = None
    error: str | None = None
    timings: tuple[tuple[str, float], ...] = ()
    matrix_versions: tuple[str, ...] = ()
    target_versions: tuple[str, ...] = ()
    inputs: tuple[InputBatch, ...] = ()
    periods_without_batches: tuple[str, ...] = ()


@dataclass(frozen=True)
class CurrencyTotals:
    """Settled amounts of one currency (spec §4.7: sums of rounded lines)."""

    currency: str
    base_total: Decimal
    bonus_total: Decimal
    clawback_total: Decimal
    total: Decimal


@dataclass(frozen=True)
class BatchReconciliation:
    """Row counts of one batch; every row is settled or rejected (spec §2)."""

    batch_id: str
    period: str | None
    rows_in: int
    rows_settled: int
    rows_rejected: int

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.rows_settled + self.rows_rejected


@dataclass(frozen=True)
class ReasonCount:
    """How many rows were rejected for one reason code."""

    reason: str
    rows: int


@dataclass(frozen=True)
class TierPayout:
    """Payout of the dealers that ended a period in one bonus tier, in one currency."""

    currency: str
    tier: str
    dealers: int
    total: Decimal


@dataclass(frozen=True)
class DealerRow:
    """One line of ``dealer_summary`` as shown in the top-dealers table."""

    period: str
    market: str
    dealer_id: str
    currency: str
    net_units: int | None
    target_units: int | None
    attainment: Decimal | None
    tier: str
    base_total: Decimal
    bonus_total: Decimal
    clawback_total: Decimal
    total: Decimal


@dataclass(frozen=True)
class DeltaTotals:
    """Sums of the ``deltas/`` lines of one currency: what the run publishes (or would)."""

    currency: str
    records: int
    base_delta: Decimal
    bonus_delta: Decimal
    delta: Decimal


@dataclass(frozen=True)
class PublishedTotal:
    """Delta total per currency as recorded in ``run_report.json`` ``published``."""

    currency: str
    delta: Decimal


@dataclass(frozen=True)
class ReportModel:
    """Everything the HTML report of one run shows."""

    header: RunHeader
    generated_at: datetime
    totals: tuple[CurrencyTotals, ...] = ()
    totals_source: str = "run_report.json"
    batches: tuple[BatchReconciliation, ...] = ()
    rejects_by_reason: tuple[ReasonCount, ...] = ()
    tier_payouts: tuple[TierPayout, ...] = ()
    top_dealers: tuple[DealerRow, ...] = ()
    delta_totals: tuple[DeltaTotals, ...] = ()
    published: tuple[PublishedTotal, ...] = ()
    published_records: int | None = None
    missing: tuple[str, ...] = field(default=())
    """Outputs that were absent from the run's directory (listed in the report)."""
