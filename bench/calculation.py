"""Benchmark of the calculation job on a generated month (default 1 000 000 rows).

    uv run python -m bench.calculation --rows 1000000 --duckdb

Builds the month with NumPy/PyArrow in a temp data store (CSV batches, batches.json, snapshot),
runs ``run_calculation`` on a local Spark session, and prints the wall time and the peak RSS of
the driver process tree (Python + the JVM child, sampled). ``--duckdb`` times the same core SQL
(row rules, duplicates, BASE level choice, attainment, BONUS tier, clawbacks) in DuckDB, once
aggregated to dealer totals (writes nothing) and once writing the job's outputs as Parquet.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bench.memory import PeakMemory
from settlement.adapters.storage import DataStore
from settlement.domain.snapshot import LEDGER_SCHEMA, MATRIX_SCHEMA
from settlement.domain.transactions import TRANSACTION_COLUMNS

PERIOD = "2026-10"
MARKETS = {"DE": "EUR", "FR": "EUR", "IT": "EUR", "GB": "GBP", "US": "USD", "JP": "JPY"}
SERIES = np.array(["1", "3", "5", "X1", "X3", "X5", "i4", "iX"])
CHANNELS = np.array(["PRIVATE", "FLEET", "EMPLOYEE"])
RUN_ID = "bench"


# --------------------------------------------------------------------------- the month
def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    digits = pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width=9, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _pick(choices: Sequence[str], codes: np.ndarray) -> pa.Array:
    """``choices[codes]`` as a string array, without a Python object per row."""
    indices = pa.array(codes.astype(np.int32))
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(choices))).cast(pa.string())


def _where(mask: np.ndarray, value: str, otherwise: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), pa.scalar(value), otherwise)


def build_month(rows: int, dealers: int, seed: int) -> pa.Table:
    """``rows`` transactions of October 2026 as strings: ~3% cancellations, ~0.5% bad rows."""
    rng = np.random.default_rng(seed)
    markets = list(MARKETS)
    dealer_market = rng.integers(0, len(markets), dealers)
    dealer = rng.integers(0, dealers, rows)
    cents = rng.integers(2_000_000, 12_000_000, rows)
    is_cancel = rng.random(rows) < 0.03
    cancels = np.flatnonzero(is_cancel)
    originals = rng.choice(np.flatnonzero(~is_cancel), size=len(cancels), replace=False)
    dealer[cancels] = dealer[originals]  # a cancellation comes from the original's dealer
    original_codes = np.zeros(rows, dtype=np.int64)
    original_codes[cancels] = originals
    original_ids = pc.if_else(pa.array(is_cancel), _ids("T", original_codes), pa.scalar(""))
    price = pc.binary_join_element_wise(
        pa.array(cents // 100).cast(pa.string()),
        pc.utf8_lpad(pa.array(cents % 100).cast(pa.string()), width=2, padding="0"),
        ".",
    )
    days = pc.utf8_lpad(pa.array(rng.integers(1, 32, rows)).cast(pa.string()), width=2, padding="0")
    bad = rng.random(rows) < 0.005
    kind = rng.integers(0, 4, rows)
    table = {
        "transaction_id": _ids("T", np.arange(rows)),
        "event_type": _pick(["SALE", "CANCELLATION"], is_cancel.astype(np.int32)),
        "event_date": _where(
            bad & (kind == 0), "2026-10-32", pc.binary_join_element_wise("2026-10-", days, "")
        ),
        "market": _pick(markets, dealer_market[dealer]),
        "dealer_id": _ids("D", dealer),
        "vin": _where(bad & (kind == 3), "", _ids("V", np.arange(rows))),
        "series": _pick(list(SERIES), rng.integers(0, len(SERIES), rows)),
        "channel": _where(
            bad & (kind == 2), "ONLINE", _pick(list(CHANNELS), rng.integers(0, len(CHANNELS), rows))
        ),
        "net_price": _where(is_cancel, "", _where(bad & (kind == 1), "-1.00", price)),
        "currency": _pick([MARKETS[m] for m in markets], dealer_market[dealer]),
        "original_transaction_id": original_ids,
    }
    return pa.table({c: table[c] for c in TRANSACTION_COLUMNS})


def _matrix() -> pa.Table:
    rows: list[dict[str, Any]] = []
    for market, currency in MARKETS.items():
        base = [
            ("*", "*", "0", "0.03", "100"),
            ("3", "*", "0", "0.035", "0"),
            ("X5", "FLEET", "0", "0.025", "50"),
        ]
        bonus = [
            ("*", "*", "0.9", "0.005", "0"),
            ("*", "*", "1.0", "0.01", "0"),
            ("*", "*", "1.1", "0.015", "0"),
            ("i4", "*", "0", "0.02", "0"),
        ]
        for component, entries in (("BASE", base), ("BONUS", bonus)):
            for series, channel, tier, rate, apu in entries:
                rows.append(
                    {
                        "matrix_version": "m1",
                        "market": market,
                        "series": series,
                        "channel": channel,
                        "component": component,
                        "min_attainment": Decimal(tier),
                        "rate": Decimal(rate),
                        "amount_per_unit": Decimal(apu),
                        "currency": currency,
                        "valid_from": date(2026, 1, 1),
                        "valid_to": None,
                    }
                )
    schema = MATRIX_SCHEMA
    return pa.Table.from_pylist(rows, schema)


def _targets(month: pa.Table, seed: int) -> pa.Table:
    dealers = pc.unique(month.column("dealer_id")).sort()
    per_dealer = len(month) / max(1, len(dealers))
    units = np.random.default_rng(seed + 1).integers(
        int(per_dealer * 0.8), int(per_dealer * 1.2) + 2, len(dealers)
    )
    units[::50] = 0  # some NO_TARGET dealers
    return pa.table(
        {
            "target_version": ["t1"] * len(dealers),
            "market": [""] * len(dealers),
            "dealer_id": dealers,
            "period": [PERIOD] * len(dealers),
            "target_units": pa.array(units, pa.int64()),
        }
    )


def _empty_ledger() -> pa.Table:
    return LEDGER_SCHEMA.empty_table()


def build_store(root: Path, rows: int, dealers: int, batches: int, seed: int) -> DataStore:
    """Write the month as ``batches`` CSV batches with manifests, batches.json and a snapshot."""
    store = DataStore(str(root))
    month = build_month(rows, dealers, seed)
    listed = []
    for index, start in enumerate(range(0, rows, -(-rows // batches))):
        chunk = month.slice(start, -(-rows // batches))
        batch_id = f"b{index:03d}"
        key = f"incoming/transactions/{batch_id}.csv"
        path = Path(store.path(key))
        path.parent.mkdir(parents=True, exist_ok=True)
        pacsv.write_csv(chunk, path)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        entry = {
            "batch_id": batch_id,
            "period": PERIOD,
            "key": key,
            "format": "csv",
            "sha256": sha,
            "row_count": len(chunk),
            "source": "bench",
        }
        store.write_json(
            f"incoming/transactions/{batch_id}.manifest.json", {**entry, "schema_version": 1}
        )
        listed.append(entry)
    store.write_json(
        f"runs/{RUN_ID}/input/batches.json",
        {"run_id": RUN_ID, "periods": [PERIOD], "batches": listed},
    )
    reference = Path(store.path(f"runs/{RUN_ID}/reference"))
    reference.mkdir(parents=True, exist_ok=True)
    pq.write_table(_matrix(), reference / "matrix.parquet")
    pq.write_table(_targets(month, seed), reference / "targets.parquet")
    pq.write_table(_empty_ledger(), reference / "ledger.parquet")
    return store


# --------------------------------------------------------------------------- measuring
def tree_cpu_seconds() -> float:
    """User + system CPU seconds of this process and its children (the JVM) so far."""
    me = psutil.Process()
    total = 0.0
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


# The row rules and first occurrences, as CTEs ending in ``ranked``.
DUCKDB_RANKED = """
raw AS (
  SELECT *, regexp_extract(filename, '([^/]+)\\.csv$', 1) AS batch_id
  FROM read_csv('{glob}', all_varchar = true, header = true, filename = true)
), parsed AS (
  SELECT *, TRY_CAST(event_date AS DATE) AS d, TRY_CAST(net_price AS DECIMAL(18,2)) AS price,
    CASE
      WHEN transaction_id IS NULL OR vin IS NULL OR market IS NULL OR dealer_id IS NULL THEN 'MISSING_FIELD'
      WHEN NOT regexp_matches(event_date, '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$') OR TRY_CAST(event_date AS DATE) IS NULL THEN 'INVALID_DATE'
      WHEN event_type = 'SALE' AND NOT coalesce(regexp_matches(net_price, '^[0-9]{{1,16}}(\\.[0-9]{{1,2}})?$'), false) THEN 'INVALID_AMOUNT'
      WHEN event_type NOT IN ('SALE', 'CANCELLATION') THEN 'INVALID_EVENT_TYPE'
      WHEN channel NOT IN ('PRIVATE', 'FLEET', 'EMPLOYEE') THEN 'INVALID_CHANNEL'
      WHEN strftime(TRY_CAST(event_date AS DATE), '%Y-%m') <> '{period}' THEN 'OUT_OF_PERIOD'
    END AS reason
  FROM raw
), ranked AS (
  SELECT *, row_number() OVER (PARTITION BY transaction_id ORDER BY reason IS NOT NULL, batch_id) AS occurrence
  FROM parsed
)"""  # noqa: E501

# From the ranked rows (``{ranked}``: the CTE above or a table of it) to ``lines``, one row per
# settled transaction with the columns of lines/ (no line numbers).
DUCKDB_LINES = """
good AS (SELECT * FROM {ranked} WHERE reason IS NULL AND occurrence = 1),
m AS (SELECT * FROM read_parquet('{matrix}')),
sales AS (
  SELECT g.*, b.rate AS base_rate, b.amount_per_unit AS base_apu, b.matrix_version,
    b.currency AS matrix_currency
  FROM good g
  LEFT JOIN LATERAL (
    SELECT * FROM m WHERE m.component = 'BASE' AND m.market = g.market
      AND (m.series = g.series OR m.series = '*') AND (m.channel = g.channel OR m.channel = '*')
      AND m.valid_from <= g.d AND (m.valid_to IS NULL OR g.d < m.valid_to)
    ORDER BY (m.series = '*')::INT * 2 + (m.channel = '*')::INT LIMIT 1
  ) b ON true
  WHERE g.event_type = 'SALE'
), settled_sales AS (
  SELECT *, round(price * base_rate + base_apu, 2) AS base_amount FROM sales
  WHERE base_rate IS NOT NULL AND currency = matrix_currency
), cancels AS (
  SELECT c.*, row_number() OVER (PARTITION BY c.original_transaction_id ORDER BY c.batch_id) AS nth
  FROM good c JOIN settled_sales s ON s.transaction_id = c.original_transaction_id
  WHERE c.event_type = 'CANCELLATION' AND c.currency = s.currency
), settled_cancels AS (SELECT * FROM cancels WHERE nth = 1),
units AS (
  SELECT dealer_id, sum(CASE WHEN kind = 'S' THEN 1 ELSE -1 END) AS net_units FROM (
    SELECT dealer_id, 'S' AS kind FROM settled_sales UNION ALL SELECT dealer_id, 'C' FROM settled_cancels
  ) GROUP BY dealer_id
), att AS (
  SELECT u.dealer_id, u.net_units, t.target_units,
    CASE WHEN t.target_units > 0 THEN u.net_units::DECIMAL(20,0) / t.target_units END AS attainment
  FROM units u LEFT JOIN read_parquet('{targets}') t ON t.dealer_id = u.dealer_id
), priced AS (
  SELECT s.*, a.attainment, tier.min_attainment AS bonus_tier, tier.rate AS bonus_rate,
    coalesce(round(s.price * tier.rate + tier.amount_per_unit, 2), 0) AS bonus_amount
  FROM settled_sales s JOIN att a ON a.dealer_id = s.dealer_id
  LEFT JOIN LATERAL (
    SELECT * FROM m WHERE m.component = 'BONUS' AND m.market = s.market
      AND (m.series = s.series OR m.series = '*') AND (m.channel = s.channel OR m.channel = '*')
      AND m.valid_from <= s.d AND (m.valid_to IS NULL OR s.d < m.valid_to)
      AND a.target_units > 0 AND m.min_attainment * a.target_units <= a.net_units
    ORDER BY (m.series = '*')::INT * 2 + (m.channel = '*')::INT, m.min_attainment DESC LIMIT 1
  ) tier ON true
), lines AS (
  SELECT '{period}' AS period, transaction_id, original_transaction_id, event_type,
    d AS event_date, market, dealer_id, series, channel, price AS net_price, currency, base_rate,
    base_apu AS base_amount_per_unit, attainment, bonus_tier, bonus_rate, matrix_version,
    base_amount, bonus_amount, base_amount + bonus_amount AS amount, batch_id
  FROM priced
  UNION ALL
  SELECT '{period}', c.transaction_id, c.original_transaction_id, c.event_type, c.d, c.market,
    c.dealer_id, c.series, c.channel, NULL, c.currency, NULL, NULL, p.attainment, NULL, NULL,
    NULL, -p.base_amount, -p.bonus_amount, -(p.base_amount + p.bonus_amount), c.batch_id
  FROM settled_cancels c JOIN priced p ON p.transaction_id = c.original_transaction_id
)"""  # noqa: E501

DUCKDB_SQL = (
    "WITH"
    + DUCKDB_RANKED
    + ","
    + DUCKDB_LINES.replace("{ranked}", "ranked")
    + """
SELECT dealer_id, currency, count(*) AS lines, sum(base_amount) AS base, sum(bonus_amount) AS bonus
FROM lines GROUP BY dealer_id, currency
"""
)

# The same, writing what the Spark job writes: the rows ranked once, then lines/, deltas/,
# rejects/ and dealer_summary/ as Parquet (snappy, Spark's default codec; one file each).
DUCKDB_WITH_OUTPUTS = [
    "CREATE TEMP TABLE ranked_rows AS WITH" + DUCKDB_RANKED + " SELECT * FROM ranked",
    "CREATE TEMP TABLE lines_out AS WITH"
    + DUCKDB_LINES.replace("{ranked}", "ranked_rows")
    + " SELECT * FROM lines",
    "COPY lines_out TO '{out}/lines.parquet' (FORMAT parquet, COMPRESSION snappy)",
    """COPY (
  SELECT transaction_id, period, dealer_id, currency, market, event_type, original_transaction_id,
    base_amount AS base_delta, bonus_amount AS bonus_delta, amount AS delta, base_amount,
    bonus_amount, true AS settled
  FROM lines_out
) TO '{out}/deltas.parquet' (FORMAT parquet, COMPRESSION snappy)""",
    """COPY (
  SELECT r.batch_id, r.transaction_id,
    coalesce(r.reason, CASE WHEN r.occurrence > 1 THEN 'DUPLICATE_TRANSACTION' END, 'NO_RATE')
      AS reason,
    r.transaction_id AS raw_transaction_id, r.event_type AS raw_event_type,
    r.event_date AS raw_event_date, r.market AS raw_market, r.dealer_id AS raw_dealer_id,
    r.vin AS raw_vin, r.series AS raw_series, r.channel AS raw_channel,
    r.net_price AS raw_net_price, r.currency AS raw_currency,
    r.original_transaction_id AS raw_original_transaction_id
  FROM ranked_rows r ANTI JOIN lines_out l
    ON l.transaction_id = r.transaction_id AND l.batch_id = r.batch_id AND r.occurrence = 1
) TO '{out}/rejects.parquet' (FORMAT parquet, COMPRESSION snappy)""",
    """COPY (
  SELECT period, market, dealer_id, currency,
    count(*) FILTER (WHERE event_type = 'SALE') AS sales_units,
    count(*) FILTER (WHERE event_type = 'CANCELLATION') AS cancelled_units,
    any_value(attainment) AS attainment, max(bonus_tier) AS bonus_tier,
    sum(base_amount) FILTER (WHERE event_type = 'SALE') AS base_total,
    sum(bonus_amount) FILTER (WHERE event_type = 'SALE') AS bonus_total,
    sum(amount) FILTER (WHERE event_type = 'CANCELLATION') AS clawback_total,
    sum(amount) AS total
  FROM lines_out GROUP BY ALL
) TO '{out}/dealer_summary.parquet' (FORMAT parquet, COMPRESSION snappy)""",
]


def _duckdb_fields(store: DataStore, out: str = "") -> dict[str, str]:
    reference = store.path(f"runs/{RUN_ID}/reference")
    return {
        "glob": store.path("incoming/transactions/*.csv"),
        "period": PERIOD,
        "matrix": f"{reference}/matrix.parquet",
        "targets": f"{reference}/targets.parquet",
        "out": out,
    }


def _duckdb_connection() -> Any:
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET threads = 2")
    connection.execute("SET enable_progress_bar = false")
    return connection


def time_duckdb(store: DataStore) -> tuple[float, int]:
    """Seconds and result rows of the core SQL in DuckDB over the same files, aggregated to
    dealer totals (nothing written).

    Simplification: the BONUS level choice is folded into the tier lookup's ordering.
    """
    connection = _duckdb_connection()
    started = time.perf_counter()
    rows = connection.execute(DUCKDB_SQL.format(**_duckdb_fields(store))).fetchall()
    return time.perf_counter() - started, len(rows)


def time_duckdb_with_outputs(store: DataStore) -> float:
    """Seconds of the same SQL when DuckDB also writes the job's outputs
    (:data:`DUCKDB_WITH_OUTPUTS`), the work the Spark job does."""
    connection = _duckdb_connection()
    with tempfile.TemporaryDirectory(prefix="settle-duckdb-") as out:
        fields = _duckdb_fields(store, out)
        started = time.perf_counter()
        for statement in DUCKDB_WITH_OUTPUTS:
            connection.execute(statement.format(**fields))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dealers", type=int, default=2_000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--shuffle-partitions", type=int, default=4)
    parser.add_argument("--store", type=Path, help="keep the data store here (reused if built)")
    parser.add_argument("--duckdb", action="store_true", help="also time the core SQL in DuckDB")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    for name in ("glue_jobs.job", "settlement.domain.calculation.settle"):
        logging.getLogger(name).setLevel(logging.INFO)

    root = args.store or Path(tempfile.mkdtemp(prefix="settle-bench-"))
    started = time.perf_counter()
    if (root / f"runs/{RUN_ID}/input/batches.json").exists():
        store = DataStore(str(root))
        print(f"reusing the month at {root}")
    else:
        store = build_store(root, args.rows, args.dealers, args.batches, args.seed)
        print(
            f"built {args.rows:,} rows in {args.batches} batches at {root} "
            f"in {time.perf_counter() - started:.1f}s"
        )

    from glue_jobs.job import run_calculation
    from settlement.adapters.spark import local_spark_session

    with PeakMemory(interval=0.2, children=True) as memory:
        spark = local_spark_session(
            shuffle_partitions=args.shuffle_partitions, app_name="settlement-bench"
        )
        cpu_before, started = tree_cpu_seconds(), time.perf_counter()
        result = run_calculation(spark, store_root=str(root), run_id=RUN_ID, periods=[PERIOD])
        spark_seconds = time.perf_counter() - started
        spark_cpu = tree_cpu_seconds() - cpu_before
    print(
        json.dumps(
            {
                "rows_in": result["rows_in"],
                "rows_settled": result["rows_settled"],
                "rows_rejected": result["rows_rejected"],
                "delta_records": result["deltas"]["records"],
                "spark_seconds": round(spark_seconds, 1),
                "spark_cpu_seconds": round(spark_cpu, 1),
                "peak_rss_mib": round(memory.peak / 2**20),
            }
        )
    )
    if args.duckdb:
        seconds, groups = time_duckdb(store)
        with_outputs = time_duckdb_with_outputs(store)
        print(
            json.dumps(
                {
                    "duckdb_seconds": round(seconds, 1),
                    "dealer_groups": groups,
                    "spark_over_duckdb": round(spark_seconds / seconds, 1),
                    "duckdb_with_outputs_seconds": round(with_outputs, 1),
                    "spark_over_duckdb_with_outputs": round(spark_seconds / with_outputs, 1),
                }
            )
        )


if __name__ == "__main__":
    main()
