"""λ export-snapshot: the run's matrix, targets and published ledger to Parquet (spec §1.3)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger

from settlement.adapters.transient import transient_errors_named
from settlement.bootstrap import Adapters, build_adapters
from settlement.config import Settings, load_settings
from settlement.domain.reference.service import export_snapshot

logger = Logger(service="settlement-export-snapshot")


@cache
def _adapters(settings: Settings) -> Adapters:
    return build_adapters(settings)


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """The Lambda entry point: :func:`handle` on the adapters of this environment."""
    return handle(event, _adapters(load_settings()))


@transient_errors_named
def handle(event: dict[str, Any], adapters: Adapters) -> dict[str, Any]:
    """Export ``runs/<run_id>/reference/{matrix,targets,ledger}.parquet``.

    Parameters
    ----------
    event
        ``{"run_id": str, "periods": ["YYYY-MM", …]}``; other keys are ignored.
    adapters
        The data store and database to use.

    Returns
    -------
    dict
        URIs, row counts and version ids of the snapshot (see ``export_snapshot``).
    """
    run_id = event.get("run_id")
    periods = event.get("periods")
    if not isinstance(run_id, str) or not run_id:
        raise ValueError("export-snapshot needs a run_id in its input")
    if not isinstance(periods, list) or not all(isinstance(p, str) for p in periods):
        raise ValueError(f"export-snapshot for {run_id} needs periods as a list of YYYY-MM")
    snapshot = export_snapshot(run_id, periods, store=adapters.store, database=adapters.database)
    logger.info("reference snapshot exported", extra={"snapshot": snapshot})
    return snapshot
