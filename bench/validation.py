"""Benchmark: validate the batches of a month (the ValidateBatches step), time and memory.

Generates a month with ``settle generate``'s generator (``--batch-rows`` decides the file
sizes), moves its batches under ``incoming/transactions/`` of a temporary data store, and runs
``collect_batches`` for the period: sha256, header and row count of every data file. Prints the
wall time and how far the process RSS rose above where it started (sampled every 10 ms).

Run: ``uv run python -m bench.validation --rows 10000000 --batch-rows 10000000``
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from bench.memory import PeakMemory
from settlement.adapters.storage import DataStore
from settlement.domain.batches import INCOMING_PREFIX, collect_batches
from settlement.generator import generate_month

PERIOD = "2026-10"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--batch-rows", type=int, default=10_000_000)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-validation-") as work:
        month = generate_month(
            Path(work) / "generated",
            rows=arguments.rows,
            seed=11,
            period=PERIOD,
            batch_rows=arguments.batch_rows,
            fmt=arguments.format,
        )
        incoming = Path(work) / "store" / INCOMING_PREFIX
        incoming.mkdir(parents=True)
        sizes = []
        for batch in month.batches:
            sizes.append(batch.data_path.stat().st_size)
            shutil.move(batch.data_path, incoming / batch.data_path.name)
            shutil.move(batch.manifest_path, incoming / batch.manifest_path.name)
        with PeakMemory(interval=0.01) as memory:
            started = time.perf_counter()
            batches = collect_batches(DataStore(str(Path(work) / "store")), [PERIOD])
            elapsed = time.perf_counter() - started
    rows = sum(batch.row_count for batch in batches)
    print(f"batches            {len(batches)} {arguments.format}, {sum(sizes) / 1e6:,.0f} MB "
          f"(largest {max(sizes) / 1e6:,.0f} MB)")  # fmt: skip
    print(f"rows               {rows:,}")
    print(f"wall               {elapsed:.2f} s ({sum(sizes) / 1e6 / elapsed:,.0f} MB/s)")
    print(f"peak RSS increase  {memory.increase_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
