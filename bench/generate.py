"""Benchmark of the synthetic data generator: wall time, rows/s and peak RSS for N rows.

Run: ``uv run python bench/generate.py --rows 10000000`` (writes to a temporary directory that is
removed afterwards unless ``--out`` is given).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from settlement.generator import generate_month


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--period", default="2026-10")
    parser.add_argument("--invalid-share", type=float, default=0.01)
    parser.add_argument("--batch-rows", type=int, default=250_000)
    parser.add_argument("--format", dest="fmt", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--out", type=Path, default=None, help="keep the output here")
    return parser.parse_args()


def peak_rss_mib() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def run(arguments: argparse.Namespace, out: Path) -> None:
    rss_before = peak_rss_mib()
    started, cpu_started = time.perf_counter(), time.process_time()
    month = generate_month(
        out,
        rows=arguments.rows,
        seed=arguments.seed,
        period=arguments.period,
        invalid_share=arguments.invalid_share,
        batch_rows=arguments.batch_rows,
        fmt=arguments.fmt,
    )
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    size = sum(batch.data_path.stat().st_size for batch in month.batches)
    print(f"rows          {month.rows:,} in {len(month.batches)} {arguments.fmt} batches")
    print(f"wall time     {seconds:.1f} s")
    print(f"throughput    {month.rows / seconds:,.0f} rows/s")
    # CPU time over all threads: on a shared machine the wall time also measures the neighbours.
    print(
        f"cpu time      {cpu_seconds:.1f} s ({month.rows / cpu_seconds:,.0f} rows per cpu-second)"
    )
    print(f"peak RSS      {peak_rss_mib():.0f} MiB (after imports: {rss_before:.0f} MiB)")
    print(f"data on disk  {size / 2**20:,.0f} MiB")


def main() -> None:
    arguments = parse_arguments()
    if arguments.out is not None:
        run(arguments, arguments.out)
        return
    with tempfile.TemporaryDirectory(prefix="settle-generate-bench-") as directory:
        run(arguments, Path(directory))


if __name__ == "__main__":
    main()
