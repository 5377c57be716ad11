"""Benchmark: publish N delta records to the local Core View running in its own process.

    uv run python bench/publish.py --records 1000000

Prints records/s over announce + all parts + commit, and the publisher's RSS sampled every
50 ms (peak, and at 25/50/75/100 % of the records) to show memory stays flat.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import psutil

from bench.memory import PeakMemory
from settlement.adapters.coreview import HttpCoreViewClient, TokenSource
from settlement.domain.publishing import (
    DeltaRecord,
    RunFigures,
    TotalsAccumulator,
    announce_run,
    commit_run,
    publish_part,
)

TOKEN = "bench-token"
CURRENCIES = ("EUR", "GBP", "USD", "SEK")
AMOUNTS = [Decimal(v).scaleb(-2) for v in range(-49_937, 150_000, 397)]


def synthetic_records(count: int, start: int) -> Iterator[DeltaRecord]:
    """Cheap deterministic records (arithmetic, no RNG) so the bench measures publishing."""
    amounts, n = AMOUNTS, len(AMOUNTS)
    for i in range(start, start + count):
        base, bonus = amounts[i % n], amounts[(i * 7) % n]
        yield DeltaRecord(
            transaction_id=f"T{i:010d}",
            period=f"2026-{i % 12 + 1:02d}",
            dealer_id=f"D{i % 997:04d}",
            currency=CURRENCIES[i % 4],
            base_delta=base,
            bonus_delta=bonus,
            delta=base + bonus,
            base_amount=base,
            bonus_amount=bonus,
        )


def expected_figures(records: int, part_size: int) -> RunFigures:
    totals = TotalsAccumulator()
    for start in range(0, records, part_size):
        for record in synthetic_records(min(part_size, records - start), start):
            totals.add(record)
    return totals.figures()


def start_server(db: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-c", "from settlement.cli.app import main; main()", "coreview", "serve",
        "--home", str(db.parent), "--port", str(port), "--db", str(db), "--token", TOKEN,
    ]  # fmt: skip
    server = subprocess.Popen(command, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError("the local Core View did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--part-size", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--gzip-level", type=int, default=1)
    args = parser.parse_args()

    expected = expected_figures(args.records, args.part_size)
    with tempfile.TemporaryDirectory() as workdir:
        server, url = start_server(Path(workdir) / "coreview.db")
        try:
            run(args, url, expected, psutil.Process(server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)


def run(args: argparse.Namespace, url: str, expected: RunFigures, server: psutil.Process) -> None:
    client = HttpCoreViewClient(
        url, TokenSource(TOKEN), max_in_flight=args.in_flight, gzip_level=args.gzip_level
    )
    acks = _Acks()
    publisher = psutil.Process()
    marks: list[str] = []
    with PeakMemory() as sampler:
        cpu_before = (publisher.cpu_times(), server.cpu_times())
        started = time.perf_counter()
        announce_run("bench", ["2026-10"], expected, client)
        for start in range(0, args.records, args.part_size):
            count = min(args.part_size, args.records - start)
            records = synthetic_records(count, start)
            publish_part("bench", start // args.part_size, records, client=client, acks=acks,
                         batch_size=args.batch_size)  # fmt: skip
            progress = (start + count) * 100 // args.records
            marks.append(f"{progress}%: {sampler.current() / 2**20:.0f} MiB")
        receipt = commit_run("bench", expected, client)
        elapsed = time.perf_counter() - started
        client_cpu, server_cpu = (
            sum(after[:2]) - sum(before[:2])
            for before, after in zip(
                cpu_before, (publisher.cpu_times(), server.cpu_times()), strict=True
            )
        )
    client.close()

    assert receipt.figures == expected, "Core View's figures differ"
    print(f"records            {args.records:,}")
    print(f"batch/in-flight/gz {args.batch_size} / {args.in_flight} / {args.gzip_level}")
    print(f"elapsed            {elapsed:.2f} s")
    print(f"throughput         {args.records / elapsed:,.0f} records/s")
    rss = f"start {sampler.start / 2**20:.0f} MiB, peak {sampler.peak / 2**20:.0f} MiB"
    print(f"publisher RSS      {rss}")
    print(f"CPU seconds        publisher {client_cpu:.2f}, Core View {server_cpu:.2f}")
    print(f"load average       {' '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores)")
    print(f"RSS by progress    {'; '.join(marks)}")
    print(f"currencies         {', '.join(t.currency for t in receipt.figures.totals)}")


class _Acks:
    """In-memory ack store (the bench measures Core View publishing, not the database)."""

    def __init__(self) -> None:
        self.acks: dict[tuple[str, int], dict[int, str]] = {}

    def acknowledged(self, run_id: str, part: int) -> dict[int, str]:
        return dict(self.acks.get((run_id, part), {}))

    def record_ack(self, run_id: str, part: int, seq: int, records: int, body_sha256: str) -> None:
        self.acks.setdefault((run_id, part), {})[seq] = body_sha256


if __name__ == "__main__":
    main()
