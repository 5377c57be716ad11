"""Benchmark: export a large published ledger to the run's Parquet snapshot.

The ledger grows by every settled transaction of every month, so the export step (a Lambda on
AWS) must stream it. Fills ``published_ledger`` with N rows on a throwaway PostgreSQL
(pytest-postgresql's executor on the local ``pg_ctl``) and on SQLite, then times
``LedgerRepository.export_snapshot`` and samples the process RSS every 20 ms while it runs.

Run: ``uv run python -m bench.ledger_export [--rows 2000000]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench.memory import PeakMemory
from settlement.adapters.db import Database
from settlement.adapters.db.bulk import bulk_insert
from settlement.adapters.db.ledger_repository import batched
from settlement.adapters.db.tables import published_ledger
from tests.fixtures.postgres import database_url, throwaway_postgres

FILL_CHUNK_ROWS = 200_000


def ledger_rows(count: int) -> Iterator[dict[str, Any]]:
    """Published sales and cancellations over 12 periods, ~2 000 dealers, 4 currencies."""
    now = datetime(2026, 11, 1, tzinfo=UTC)
    for n in range(count):
        cancellation = n % 33 == 0 and n > 0
        yield {
            "transaction_id": f"TX-{n:012d}",
            "period": f"2026-{n % 12 + 1:02d}",
            "event_type": "CANCELLATION" if cancellation else "SALE",
            "original_transaction_id": f"TX-{n - 1:012d}" if cancellation else None,
            "dealer_id": f"D{n % 2000:06d}",
            "market": ("DE", "FR", "GB", "US")[n % 4],
            "currency": ("EUR", "EUR", "GBP", "USD")[n % 4],
            "base_amount": Decimal(n % 150_000) / 100 * (-1 if cancellation else 1),
            "bonus_amount": Decimal(n % 7_000) / 100,
            "settled": n % 97 != 0,
            "last_run_id": "bench",
            "updated_at": now,
        }


def fill(database: Database, rows: int) -> None:
    with database.engine.begin() as connection:
        for chunk in batched(ledger_rows(rows), FILL_CHUNK_ROWS):
            bulk_insert(connection, published_ledger, chunk)


def measure(database: Database, target: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS above the RSS at the start (MiB), rows written."""
    with PeakMemory(interval=0.02) as memory:
        started = time.perf_counter()
        written = database.ledger.export_snapshot(str(target))
        elapsed = time.perf_counter() - started
    assert pq.read_metadata(target).num_rows == written
    return elapsed, memory.increase_mib, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=2_000_000)
    arguments = parser.parse_args()
    results: dict[str, tuple[float, float, int]] = {}
    with tempfile.TemporaryDirectory() as work:
        with throwaway_postgres() as server:
            database = Database.from_url(database_url(server, "postgres"))
            database.migrate()
            fill(database, arguments.rows)
            results["postgresql"] = measure(database, Path(work) / "pg.parquet")
            database.dispose()
        database = Database.from_url(f"sqlite:///{Path(work) / 'bench.db'}")
        database.migrate()
        fill(database, arguments.rows)
        results["sqlite"] = measure(database, Path(work) / "sqlite.parquet")
        database.dispose()
    print(f"{'database':12} {'rows':>10} {'wall':>8} {'rows/s':>10} {'peak RSS increase':>18}")
    for name, (elapsed, peak_mib, written) in results.items():
        print(
            f"{name:12} {written:10d} {elapsed:7.2f}s {written / elapsed:10.0f} "
            f"{peak_mib:15.0f} MiB"
        )


if __name__ == "__main__":
    main()
