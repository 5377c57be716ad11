"""The Glue script of the calculation job (``--run_id``, ``--periods``, ``--store_root``).

On AWS Glue the arguments come from ``getResolvedOptions`` and the session from a
``GlueContext``; anywhere else (the local runner, a shell) from ``argparse`` and a local session.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from glue_jobs.job import run_calculation

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ARGUMENTS = ("run_id", "periods", "store_root")


def parse_arguments(argv: Sequence[str]) -> dict[str, str]:
    """The job arguments, from Glue's resolver when ``awsglue`` exists, else ``argparse``."""
    try:
        from awsglue.utils import getResolvedOptions
    except ImportError:
        parser = argparse.ArgumentParser(description="Calculate the commissions of a run.")
        for name in ARGUMENTS:
            parser.add_argument(f"--{name}", required=True)
        known, _ = parser.parse_known_args(list(argv[1:]))
        return {name: str(getattr(known, name)) for name in ARGUMENTS}
    resolved: dict[str, str] = getResolvedOptions(list(argv), list(ARGUMENTS))
    return resolved


def build_session() -> SparkSession:
    """A GlueContext's session on Glue, else the shared local session."""
    try:
        from awsglue.context import GlueContext
        from pyspark.context import SparkContext
    except ImportError:
        from settlement.adapters.spark import local_spark_session

        return local_spark_session()
    session: SparkSession = GlueContext(SparkContext.getOrCreate()).spark_session
    return session


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    """Run the job and print ``calculation.json``'s counts as one JSON line."""
    arguments = parse_arguments(sys.argv if argv is None else argv)
    periods = [p.strip() for p in arguments["periods"].split(",") if p.strip()]
    result = run_calculation(
        build_session(),
        store_root=arguments["store_root"],
        run_id=arguments["run_id"],
        periods=periods,
    )
    counts = ("run_id", "rows_in", "rows_settled", "rows_rejected")
    print(json.dumps({k: result[k] for k in counts}))
    return result


if __name__ == "__main__":
    main()
