"""Wall time of a whole month through the local runner (default 1 000 000 rows).

    uv run python -m bench.workflow --rows 1000000

Generates the month with ``settle generate``'s generator into a fresh temporary workspace,
uploads the matrix and targets, submits the batches, runs the state machine file through the
local runner (local Spark for the calculation, SQLite, the ``file://`` Core View sink) and
prints the wall time of each phase, the time per state, and the peak RSS of the process tree
(Python and the JVM). ``--rerun`` also times an unchanged re-run (it publishes nothing).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.memory import PeakMemory
from settlement.bootstrap import Adapters
from settlement.cli.workflow import submit_batch, upload
from settlement.config import load_settings
from settlement.generator import generate_month
from state_machine.local import run_workflow
from state_machine.runner import Execution, StateEvent


def settle_month(adapters: Adapters, period: str) -> tuple[Execution, dict[str, float]]:
    """Run the workflow once and return the execution with seconds per top-level state."""
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}

    def clock(event: StateEvent) -> None:
        if event.scope:
            return
        if event.kind == "entered":
            started[event.state] = time.perf_counter()
        elif event.state in started:
            seconds[event.state] = time.perf_counter() - started[event.state]

    execution = run_workflow(
        adapters, {"periods": [period], "requested_by": "bench"}, on_event=clock
    )
    if execution.status != "SUCCEEDED":
        raise SystemExit(f"run {execution.name} failed: {execution.error}: {execution.cause}")
    return execution, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--period", default="2026-10")
    parser.add_argument("--rerun", action="store_true", help="also time an unchanged re-run")
    args = parser.parse_args()
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the handlers' JSON logs
    with (
        tempfile.TemporaryDirectory(prefix="bench-workflow-") as scratch,
        PeakMemory(interval=0.2, children=True) as peak,
    ):
        adapters = Adapters(load_settings(Path(scratch) / "home"))
        began = time.perf_counter()
        month = generate_month(
            Path(scratch) / "month", rows=args.rows, seed=args.seed, period=args.period,
            invalid_share=0.01,
        )  # fmt: skip
        generated = time.perf_counter()
        upload(adapters, "matrix", month.matrix_path)
        upload(adapters, "targets", month.targets_path)
        for batch in month.batches:
            submit_batch(
                adapters, batch.data_path, period=args.period, batch_id=batch.batch_id,
                source=month.source,
            )  # fmt: skip
        submitted = time.perf_counter()
        execution, per_state = settle_month(adapters, args.period)
        finished = time.perf_counter()
        print(f"rows               {args.rows:,} in {len(month.batches)} batches")
        print(f"generate           {generated - began:8.1f} s")
        print(f"upload + submit    {submitted - generated:8.1f} s")
        print(f"workflow run       {finished - submitted:8.1f} s  ({execution.name})")
        for state, elapsed in sorted(per_state.items(), key=lambda item: -item[1]):
            print(f"  {state:<34} {elapsed:8.1f} s")
        print(f"delta records      {execution.output.get('delta_records')}")
        if args.rerun:
            rerun_began = time.perf_counter()
            again, _ = settle_month(adapters, args.period)
            print(
                f"unchanged re-run   {time.perf_counter() - rerun_began:8.1f} s  "
                f"(delta records {again.output.get('delta_records')})"
            )
    print(f"peak RSS (tree)    {peak.peak / 2**20:8.0f} MiB")


if __name__ == "__main__":
    main()
