"""``runs/<run_id>/run_report.json`` (spec §6): what a run read, computed, published and how long
each step took. Pure: the Lambdas gather the pieces, this module shapes the document.

Keys: run_id, periods, state, requested_by, dry_run, error, inputs [{batch_id, period, sha256,
row_count, source}], periods_without_batches, matrix_versions {market: version},
target_versions [version], batches [{batch_id, period, rows_in, rows_settled, rows_rejected}],
rows {in, settled, rejected}, totals [{currency, base_total, bonus_total, clawback_total, total}],
published [{currency, delta}], records (delta records; 0 on a dry run or a failure before
commit), computed_delta_records and computed_delta_totals [{currency, delta, …}] (what the
calculation computed, published or not: on a dry run, what would be published),
published_to_core_view (bool), timings {step: seconds}, created_at, finished_at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from settlement.domain.ports import RunRecord


class TransientError(Exception):
    """A failure worth retrying (the state machine's Retry matches this class name)."""


@dataclass(frozen=True)
class RunFacts:
    """Everything known about a run when it ends; any piece may be missing after a failure."""

    run_id: str
    state: str
    run: RunRecord | None = None
    batches: Mapping[str, Any] | None = None
    calculation: Mapping[str, Any] | None = None
    matrix_versions: Mapping[str, str] = field(default_factory=dict)
    target_versions: Sequence[str] = ()
    published: bool = False
    acknowledged: tuple[int, int] = (0, 0)
    """(batches, records) Core View acknowledged for the run, committed or not."""
    error: str | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    finished_at: datetime | None = None


def build_run_report(facts: RunFacts) -> dict[str, Any]:
    """The run report document for ``facts``.

    Parameters
    ----------
    facts
        What the run read and produced; absent pieces give empty sections.

    Returns
    -------
    dict
        JSON-ready; money as decimal strings, exactly as the calculation wrote them.
    """
    run, batches, calculation = facts.run, facts.batches or {}, facts.calculation or {}
    deltas = calculation.get("deltas") or {}
    inputs = list(batches.get("batches", []))
    periods = list(run.periods if run else batches.get("periods", []))
    return {
        "run_id": facts.run_id,
        "periods": periods,
        "state": facts.state,
        "requested_by": run.requested_by if run else None,
        "dry_run": run.dry_run if run else None,
        "error": facts.error,
        "created_at": run.created_at.isoformat() if run else None,
        "finished_at": facts.finished_at.isoformat() if facts.finished_at else None,
        "inputs": [
            {key: batch.get(key) for key in ("batch_id", "period", "sha256", "row_count", "source")}
            for batch in inputs
        ],
        "periods_without_batches": sorted(set(periods) - {batch.get("period") for batch in inputs}),
        "matrix_versions": dict(sorted(facts.matrix_versions.items())),
        "target_versions": sorted(facts.target_versions),
        "batches": [
            {
                key: batch.get(key)
                for key in ("batch_id", "period", "rows_in", "rows_settled", "rows_rejected")
            }
            for batch in calculation.get("batches", [])
        ],
        "rows": {
            "in": calculation.get("rows_in"),
            "settled": calculation.get("rows_settled"),
            "rejected": calculation.get("rows_rejected"),
        },
        "totals": list(calculation.get("totals", [])),
        "published": list(deltas.get("totals", [])) if facts.published else [],
        "records": int(deltas.get("records", 0)) if facts.published else 0,
        "computed_delta_records": deltas.get("records"),
        "computed_delta_totals": list(deltas.get("totals", [])),
        # Periods outside the run whose published clawbacks reverse sales it changed.
        "periods_to_recompute": list(calculation.get("later_clawbacks", [])),
        "published_to_core_view": facts.published,
        # Batches Core View holds for the run; booked only if the run was committed.
        "acknowledged_by_core_view": {
            "batches": facts.acknowledged[0],
            "records": facts.acknowledged[1],
        },
        "timings": {step: round(seconds, 3) for step, seconds in facts.timings.items()},
    }


def run_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """The small summary kept with the run in the database (``settle runs`` shows it)."""
    return {
        "rows": report.get("rows"),
        "totals": report.get("totals"),
        "records": report.get("records"),
        "published_to_core_view": report.get("published_to_core_view"),
    }


def timings_from_history(events: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Seconds per state from a Step Functions execution history (``GetExecutionHistory``).

    A state entered several times (a Map's inner state, a retried step) spans from its first
    entry to its last exit.
    """
    entered: dict[str, datetime] = {}
    exited: dict[str, datetime] = {}
    for event in events:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            entered.setdefault(name, event["timestamp"])
        elif kind.endswith("StateExited"):
            exited[event["stateExitedEventDetails"]["name"]] = event["timestamp"]
    return {
        name: (exited[name] - start).total_seconds()
        for name, start in entered.items()
        if name in exited
    }
