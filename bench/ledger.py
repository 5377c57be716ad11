"""Benchmark: the published ledger at scale, applied (Finalise) and exported (the snapshot).

The ledger grows by every settled transaction of every month, so both Lambdas that touch it
must stream. On a throwaway PostgreSQL (pytest-postgresql's executor on the local ``pg_ctl``)
and on SQLite: applies N deltas through ``LedgerRepository.apply_deltas`` (what Finalise does
with a run's deltas), then times ``export_snapshot``; the process RSS is sampled every 20 ms.

Run: ``uv run python -m bench.ledger [--rows 1000000]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from bench.memory import PeakMemory
from settlement.adapters.db import Database
from settlement.domain.ports import LedgerEntry
from tests.fixtures.postgres import database_url, throwaway_postgres

CENT = Decimal("0.01")


def ledger_entries(count: int) -> Iterator[LedgerEntry]:
    """Published sales and cancellations over 12 periods, ~2 000 dealers, 4 currencies."""
    for n in range(count):
        cancellation = n % 33 == 0 and n > 0
        yield LedgerEntry(
            transaction_id=f"TX-{n:012d}",
            period=f"2026-{n % 12 + 1:02d}",
            event_type="CANCELLATION" if cancellation else "SALE",
            original_transaction_id=f"TX-{n - 1:012d}" if cancellation else None,
            dealer_id=f"D{n % 2000:06d}",
            market=("DE", "FR", "GB", "US")[n % 4],
            currency=("EUR", "EUR", "GBP", "USD")[n % 4],
            base_amount=(Decimal(n % 150_000) * CENT) * (-1 if cancellation else 1),
            bonus_amount=Decimal(n % 7_000) * CENT,
            settled=n % 97 != 0,
        )


@dataclass(frozen=True)
class Figures:
    rows: int
    apply_seconds: float
    apply_mib: float
    export_seconds: float
    export_mib: float


def measure(database: Database, target: Path, rows: int) -> Figures:
    """Apply ``rows`` deltas to an empty ledger, then export it; time and RSS rise of each."""
    with PeakMemory(interval=0.02) as applying:
        started = time.perf_counter()
        applied = database.ledger.apply_deltas("bench", ledger_entries(rows))
        apply_seconds = time.perf_counter() - started
    assert applied == rows
    with PeakMemory(interval=0.02) as exporting:
        started = time.perf_counter()
        written = database.ledger.export_snapshot(str(target))
        export_seconds = time.perf_counter() - started
    assert written == rows == pq.read_metadata(target).num_rows
    return Figures(
        rows, apply_seconds, applying.increase_mib, export_seconds, exporting.increase_mib
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    arguments = parser.parse_args()
    results: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory() as work:
        with throwaway_postgres() as server:
            database = Database.from_url(database_url(server, "postgres"))
            database.migrate()
            results["postgresql"] = measure(database, Path(work) / "pg.parquet", arguments.rows)
            database.dispose()
        database = Database.from_url(f"sqlite:///{Path(work) / 'bench.db'}")
        database.migrate()
        results["sqlite"] = measure(database, Path(work) / "sqlite.parquet", arguments.rows)
        database.dispose()
    print(f"{'database':11} {'rows':>10}  {'apply (Finalise)':>28}  {'export (snapshot)':>28}")
    for name, f in results.items():
        print(
            f"{name:11} {f.rows:10d}  {f.apply_seconds:7.2f}s {f.rows / f.apply_seconds:8.0f}/s "
            f"+{f.apply_mib:5.0f} MiB  {f.export_seconds:7.2f}s "
            f"{f.rows / f.export_seconds:8.0f}/s +{f.export_mib:5.0f} MiB"
        )


if __name__ == "__main__":
    main()
