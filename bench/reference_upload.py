"""Benchmark: upload a 100 000-row targets file and a 20 000-row matrix into PostgreSQL.

Starts a throwaway PostgreSQL (pytest-postgresql's executor on the local ``pg_ctl``), migrates
it, then times parsing + validation and the database load separately (goal: 100k targets in
under 5 s end to end), the repeated upload (sha256 hit) and the snapshot export. The same on
SQLite for comparison.

Run: ``uv run python -m bench.reference_upload [--targets 100000] [--matrix 20000]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from settlement.adapters.db import Database
from settlement.adapters.storage import DataStore
from settlement.domain.reference import parse_matrix, parse_targets
from settlement.domain.reference.service import export_snapshot, upload_reference
from tests.fixtures.postgres import database_url, throwaway_postgres

MATRIX_HEADER = (
    "market,series,channel,component,min_attainment,rate,amount_per_unit,currency,"
    "valid_from,valid_to"
)
CHANNELS = ("PRIVATE", "FLEET", "EMPLOYEE", "*")
TIERS = ("0.9", "1.0", "1.1", "1.25")


def matrix_file(rows: int) -> bytes:
    """Non-overlapping rows: markets x series x channels x (BASE + 4 BONUS tiers)."""
    lines = [MATRIX_HEADER]
    per_market = len(CHANNELS) * (1 + len(TIERS))
    for n in range(rows):
        market, rest = divmod(n, per_market * 50)
        series, rest = divmod(rest, per_market)
        channel, tier = divmod(rest, 1 + len(TIERS))
        component, threshold = ("BASE", "0") if tier == 0 else ("BONUS", TIERS[tier - 1])
        lines.append(
            f"M{market:03d},S{series:02d},{CHANNELS[channel]},{component},{threshold},"
            f"0.0{tier + 1}2345,{tier * 25}.50,EUR,2026-01-01,"
        )
    return ("\n".join(lines) + "\n").encode()


def targets_file(rows: int) -> bytes:
    """One target per dealer and month of 2026: 12 rows per dealer."""
    lines = ["market,dealer_id,period,target_units"]
    lines += [
        f"M{(n // 12) % 40:03d},D{n // 12:06d},2026-{n % 12 + 1:02d},{n % 37}" for n in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


@contextmanager
def timed(label: str, figures: dict[str, float]) -> Iterator[None]:
    started = time.perf_counter()
    yield
    figures[label] = time.perf_counter() - started


def measure(
    database: Database, store: DataStore, matrix: bytes, targets: bytes
) -> dict[str, float]:
    """Times of each step on one database (already migrated and empty)."""
    figures: dict[str, float] = {}
    with timed("targets parse+validate", figures):
        parse_targets("targets.csv", targets)
    with timed("matrix parse+validate", figures):
        parse_matrix("matrix.csv", matrix)
    upload: Callable[[str, str, bytes], Any] = lambda kind, name, data: upload_reference(  # noqa: E731
        kind,  # type: ignore[arg-type]
        name,
        data,
        uploaded_by="bench",
        repository=database.reference,
    )
    with timed("targets upload (end to end)", figures):
        upload("targets", "targets.csv", targets)
    with timed("matrix upload (end to end)", figures):
        upload("matrix", "matrix.csv", matrix)
    with timed("targets upload again (sha256 hit)", figures):
        upload("targets", "targets.csv", targets)
    with timed("export snapshot (1 period)", figures):
        export_snapshot("bench", ["2026-10"], store=store, database=database)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--matrix", type=int, default=20_000)
    arguments = parser.parse_args()
    matrix, targets = matrix_file(arguments.matrix), targets_file(arguments.targets)
    print(f"targets: {arguments.targets} rows, {len(targets) / 1e6:.1f} MB; "
          f"matrix: {arguments.matrix} rows, {len(matrix) / 1e6:.1f} MB")  # fmt: skip
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as work:
        store = DataStore(str(Path(work) / "store"))
        with throwaway_postgres() as server:
            database = Database.from_url(database_url(server, "postgres"))
            database.migrate()
            results["postgresql"] = measure(database, store, matrix, targets)
            database.dispose()
        database = Database.from_url(f"sqlite:///{Path(work) / 'bench.db'}")
        database.migrate()
        results["sqlite"] = measure(database, store, matrix, targets)
        database.dispose()
    print(f"{'step':38} {'postgresql':>11} {'sqlite':>9}")
    for step in results["postgresql"]:
        print(f"{step:38} {results['postgresql'][step]:10.2f}s {results['sqlite'][step]:8.2f}s")


if __name__ == "__main__":
    main()
