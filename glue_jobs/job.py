"""The calculation job: the I/O around :func:`settlement.domain.calculation.settle`.

Shared by the Glue script and the local runner. Reads the run's batch list, the batch files and
the reference snapshot, writes ``lines/``, ``dealer_summary/``, ``rejects/``, ``deltas/``,
``ledger_updates/`` and ``batch_counts/`` under ``runs/<run_id>/``, then ``calculation.json``
LAST: a job that fails leaves no completion marker, so no later step reads half-written output
as complete.

Outputs are deterministic: each is repartitioned on fixed keys, sorted on a unique key within its
partitions, and its files renamed to ``part-<task>.parquet``, so the same inputs give
byte-identical files.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import posixpath
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)
from pyspark.sql.types import DataType, DecimalType, DoubleType, FloatType, StructType

from settlement.adapters.storage import DataStore
from settlement.domain.calculation import SettlementFrames, settle
from settlement.domain.calculation.outputs import later_clawbacks
from settlement.domain.calculation.settle import LINES
from settlement.domain.schemas import (
    BATCH_COUNTS_SCHEMA,
    BATCH_ROWS_SCHEMA,
    DEALER_SUMMARY_SCHEMA,
    DELTAS_SCHEMA,
    LEDGER_SCHEMA,
    LINES_SCHEMA,
    MATRIX_SCHEMA,
    MONEY,
    TARGETS_SCHEMA,
    TRANSACTION_COLUMNS,
    column_names,
)

LOG = logging.getLogger(__name__)
DELTA_RECORDS_PER_PART = 200_000
# Row groups of lines/: the Reconcile Lambda (1 GiB) decodes one at a time.
LINES_ROW_GROUP_BYTES = 32 << 20
OUTPUTS = ("lines", "dealer_summary", "rejects", "deltas", "ledger_updates", "batch_counts")
READ_SPLITS_PER_CORE = 4  # see _balanced_reads
WORK = "work"  # scratch prefix of the run's intermediates, removed when the job ends
# One batch file = one input partition, never split: the row position inside a partition is
# then the row's position in its file, which gives CSV line numbers without a shuffle. Only for
# the pass that reads the batches; the later passes read the Parquet intermediates in splits.
WHOLE_FILE_READS = {
    "spark.sql.files.maxPartitionBytes": str(1 << 40),
    "spark.sql.files.openCostInBytes": str(1 << 40),
}
# RFC 4180, as the validation reads the same files: a quote inside a quoted field is doubled;
# a backslash is an ordinary character (Spark's default escape is the backslash).
CSV_OPTIONS = {"escape": '"'}
# monotonically_increasing_id: the partition index above bit 33, the row index below it.
_ROW_IN_PARTITION = (1 << 33) - 1
# Spark's file names: part-<task>-<job uuid>[-c<file of the task>][.<codec>].parquet
_SPARK_FILE = re.compile(r"^part-(\d{5})-.*?(?:-c(\d{3,}))?(?:\.\w+)?\.parquet$")


class BatchFileError(ValueError):
    """A batch file cannot be read as the contract says (names the file and what is wrong)."""


@dataclass(frozen=True)
class BatchRef:
    batch_id: str
    period: str
    key: str
    format: str
    row_count: int

    @property
    def file_name(self) -> str:
        return posixpath.basename(self.key)


def run_calculation(
    spark: SparkSession, *, store_root: str, run_id: str, periods: list[str]
) -> dict[str, Any]:
    """Run the calculation of ``run_id`` for ``periods`` and return ``calculation.json``.

    Parameters
    ----------
    spark
        A Glue or local Spark session.
    store_root
        The data store root (``s3://bucket/prefix`` or a local directory).
    run_id
        The run; its inputs are under ``runs/<run_id>/input`` and ``runs/<run_id>/reference``.
    periods
        The run's periods (``YYYY-MM``); must match ``input/batches.json``.

    Returns
    -------
    dict
        The document written to ``runs/<run_id>/calculation.json`` (docs/architecture.md).

    Raises
    ------
    BatchFileError
        A batch file has the wrong columns, or its row count differs from its manifest.
    ValueError
        ``batches.json`` is for other periods or another run.
    """
    store = DataStore(store_root)
    prefix = f"runs/{run_id}"
    store.delete(f"{prefix}/calculation.json")
    _delete_outputs(store, prefix)
    try:
        document = _calculate(spark, store, prefix, run_id=run_id, periods=periods)
    except BaseException:
        # What a failed attempt wrote (lines/ but no deltas/, say) must not look like a result.
        _delete_outputs(store, prefix)
        raise
    store.write_json(f"{prefix}/calculation.json", document)
    return document


def _delete_outputs(store: DataStore, prefix: str) -> None:
    for name in (*OUTPUTS, WORK):
        store.delete_prefix(f"{prefix}/{name}")


def _calculate(
    spark: SparkSession, store: DataStore, prefix: str, *, run_id: str, periods: list[str]
) -> dict[str, Any]:
    batches = load_batch_list(store, run_id, periods)
    with _session_conf(spark, _balanced_reads(spark)):
        with _timed("settle"):
            frames = settle(
                read_batches(spark, store, batches),
                read_snapshot(spark, store, f"{prefix}/reference/matrix.parquet", MATRIX_SCHEMA),
                read_snapshot(spark, store, f"{prefix}/reference/targets.parquet", TARGETS_SCHEMA),
                read_snapshot(spark, store, f"{prefix}/reference/ledger.parquet", LEDGER_SCHEMA),
                periods=periods,
                run_id=run_id,
                materialise=ParquetMaterialiser(spark, store, prefix),
            )
        try:
            document = _write_outputs(
                store, prefix, frames, batches=batches, run_id=run_id, periods=periods
            )
        finally:
            frames.release()
            store.delete_prefix(f"{prefix}/{WORK}")
    return document


def _balanced_reads(spark: SparkSession) -> dict[str, str]:
    """Read the Parquet intermediates in several splits per core.

    Spark's default packs up to 128 MB per split: at 10 M rows the classified files made 3
    splits for 2 cores, so the last ran alone (lines/ 24.0 s -> 18.8 s, deltas/ 13.7 -> 10.8 s
    with 4 per core). The batch files are still read whole (``WHOLE_FILE_READS`` wins).
    """
    return {
        "spark.sql.files.minPartitionNum": str(
            READ_SPLITS_PER_CORE * spark.sparkContext.defaultParallelism
        )
    }


@dataclass(frozen=True)
class ParquetMaterialiser:
    """Keeps the calculation's large intermediates as Parquet in the data store.

    ``classified`` goes to the run's scratch prefix ``work/`` (removed when the job ends);
    ``lines`` is written once, as the final output ``lines/``. Each is read back, so every
    later step reads just the columns it needs from compressed columnar files. No shuffle:
    the classified rows are written one file per batch file; ``lines/`` has one file per read
    split of those (Spark packs whole files into splits, largest first, at least
    ``READ_SPLITS_PER_CORE`` per core), rows in the order read, so the files are the same for
    the same inputs on the same cluster.
    """

    spark: SparkSession
    store: DataStore
    prefix: str

    def __call__(self, frame: DataFrame, name: str) -> DataFrame:
        if name == LINES:
            key = f"{self.prefix}/lines"
            write_deterministic(
                frame,
                self.store,
                key,
                # No sort: each task reads a split of the classified files (packed by size,
                # deterministic) and only filters and broadcast-joins their rows, in order.
                sort_by=[],
                keep_partitions=True,
                row_group_bytes=LINES_ROW_GROUP_BYTES,
            )
            return self.spark.read.schema(LINES_SCHEMA).parquet(self.store.uri(key))
        key = f"{self.prefix}/{WORK}/{name}"
        with _session_conf(self.spark, WHOLE_FILE_READS):
            # Stable names (part-<task>.parquet): the later passes pack these files into read
            # splits by size, ties by listing order, which must not vary between runs.
            _write_deterministic(frame, self.store, key, [])
        return self.spark.read.schema(frame.schema).parquet(self.store.uri(key))


# --------------------------------------------------------------------------- inputs
def load_batch_list(store: DataStore, run_id: str, periods: Sequence[str]) -> list[BatchRef]:
    """The batches of ``runs/<run_id>/input/batches.json``, sorted by (period, batch_id)."""
    key = f"runs/{run_id}/input/batches.json"
    document = store.read_json(key)
    if document.get("run_id", run_id) != run_id:
        raise ValueError(f"{key} belongs to run {document['run_id']}, not {run_id}")
    if sorted(document.get("periods", periods)) != sorted(periods):
        raise ValueError(f"{key} is for periods {document['periods']}, the job for {periods}")
    batches = [
        BatchRef(b["batch_id"], b["period"], b["key"], b["format"], int(b["row_count"]))
        for b in document["batches"]
    ]
    stray = [b.batch_id for b in batches if b.period not in periods]
    if stray:
        raise ValueError(f"{key} lists batches outside the run's periods: {stray}")
    return sorted(batches, key=lambda b: (b.period, b.batch_id))


def read_snapshot(spark: SparkSession, store: DataStore, key: str, schema: StructType) -> DataFrame:
    """A reference snapshot file cast to its contract schema."""
    frame = spark.read.parquet(store.uri(key))
    missing = [f.name for f in schema.fields if f.name not in frame.columns]
    if missing:
        raise ValueError(f"{key} lacks the columns {missing}")
    return frame.select(*(F.col(f.name).cast(f.dataType) for f in schema.fields))


def read_batches(spark: SparkSession, store: DataStore, batches: Sequence[BatchRef]) -> DataFrame:
    """All batch rows as strings with their batch, period and line number.

    CSV: the line number counts the header as line 1, so the first data row is line 2; blank
    lines are not rows. Parquet: the row's 0-based position in the file + 2, the number the same
    row would have in the CSV form of the batch.
    """
    names = [b.file_name for b in batches]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BatchFileError(f"batch files share a file name: {duplicates}")
    frames = [
        _read_csv_group(spark, store, group, header)
        for header, group in _csv_groups(store, [b for b in batches if b.format == "csv"])
    ]
    frames += _read_parquet(spark, store, [b for b in batches if b.format == "parquet"])
    unknown = [b.batch_id for b in batches if b.format not in ("csv", "parquet")]
    if unknown:
        raise BatchFileError(f"batches in an unknown format: {unknown}")
    if not frames:
        return spark.createDataFrame([], BATCH_ROWS_SCHEMA)
    combined = frames[0]
    for frame in frames[1:]:
        combined = combined.unionByName(frame)
    return combined


def _check_columns(batch: BatchRef, columns: Sequence[str]) -> None:
    missing = [c for c in TRANSACTION_COLUMNS if c not in columns]
    extra = [c for c in columns if c not in TRANSACTION_COLUMNS]
    if missing or extra or len(set(columns)) != len(columns):
        raise BatchFileError(
            f"{batch.key} (batch {batch.batch_id}): header has missing columns {missing}, "
            f"unknown columns {extra} or repeats"
        )


def _csv_header(store: DataStore, batch: BatchRef) -> tuple[str, ...]:
    with store.filesystem.open_input_stream(store.path(batch.key)) as stream:
        head = stream.read(1 << 16).decode("utf-8-sig", errors="replace")
    first_line = head.splitlines()[0] if head else ""
    header = tuple(c.strip() for c in next(csv.reader(io.StringIO(first_line)), []))
    _check_columns(batch, header)
    return header


def _csv_groups(
    store: DataStore, batches: Sequence[BatchRef]
) -> Iterator[tuple[tuple[str, ...], list[BatchRef]]]:
    groups: dict[tuple[str, ...], list[BatchRef]] = {}
    for batch in batches:
        groups.setdefault(_csv_header(store, batch), []).append(batch)
    yield from groups.items()


def _batch_map(spark: SparkSession, batches: Sequence[BatchRef]) -> DataFrame:
    return spark.createDataFrame(
        [(b.file_name, b.batch_id, b.period) for b in batches],
        "file_name string, batch_id string, period string",
    )


def _read_csv_group(
    spark: SparkSession, store: DataStore, batches: Sequence[BatchRef], header: Sequence[str]
) -> DataFrame:
    ddl = ", ".join(f"`{c}` string" for c in header)
    lines = spark.read.text([store.uri(b.key) for b in batches]).select(
        "value",
        F.col("_metadata.file_name").alias("file_name"),
        (F.monotonically_increasing_id().bitwiseAND(_ROW_IN_PARTITION) + 1).alias("line_number"),
    )
    rows = lines.filter((F.col("line_number") > 1) & (F.trim("value") != "")).select(
        "file_name", "line_number", F.from_csv("value", ddl, CSV_OPTIONS).alias("row")
    )
    return rows.join(F.broadcast(_batch_map(spark, batches)), "file_name").select(
        "batch_id",
        "period",
        "line_number",
        *(F.col(f"row.`{c}`").alias(c) for c in TRANSACTION_COLUMNS),
    )


def _read_parquet(
    spark: SparkSession, store: DataStore, batches: Sequence[BatchRef]
) -> list[DataFrame]:
    """Parquet batches as text, one frame per distinct file schema.

    A batch may type its columns (a price as a double, an id as an integer, a column of nulls
    as the null type); Spark reads several files with the schema of one of them, so files
    whose schemas differ are read apart and only then turned into text.
    """
    groups: dict[tuple[tuple[str, str], ...], list[BatchRef]] = {}
    for batch in batches:
        with store.filesystem.open_input_file(store.path(batch.key)) as handle:
            schema = pq.read_schema(handle)
        _check_columns(batch, schema.names)
        groups.setdefault(tuple((f.name, str(f.type)) for f in schema), []).append(batch)
    return [_read_parquet_group(spark, store, group) for group in groups.values()]


def _read_parquet_group(
    spark: SparkSession, store: DataStore, batches: Sequence[BatchRef]
) -> DataFrame:
    rows = spark.read.parquet(*(store.uri(b.key) for b in batches))
    types = {field.name: field.dataType for field in rows.schema.fields}
    rows = rows.select(
        F.col("_metadata.file_name").alias("file_name"),
        (F.col("_metadata.row_index") + 2).alias("line_number"),
        *(_as_text(F.col(c), types[c]).alias(c) for c in TRANSACTION_COLUMNS),
    )
    return rows.join(F.broadcast(_batch_map(spark, batches)), "file_name").select(
        *column_names(BATCH_ROWS_SCHEMA)
    )


def _as_text(column: Column, data_type: DataType) -> Column:
    """A typed Parquet value as the text the row rules read.

    Numbers with a fraction become plain decimal text without trailing zeros (Spark writes a
    double of 12 500 000 as ``1.25E7``; a ``decimal(12,3)`` 40 000.55 as ``40000.550``), so
    "at most 2 decimals" is judged on the value. A double is read through its shortest exact
    decimal form; one beyond ``decimal(38,18)`` (NaN, infinity, 1e20 and more) keeps Spark's
    text, which the rules reject naming it.
    """
    if isinstance(data_type, DecimalType):
        return _without_trailing_zeros(column.cast("string"))
    if isinstance(data_type, (FloatType, DoubleType)):
        exact = column.cast(DecimalType(38, 18)).cast("string")
        return F.coalesce(_without_trailing_zeros(exact), column.cast("string"))
    return column.cast("string")


def _without_trailing_zeros(text: Column) -> Column:
    trimmed = F.regexp_replace(text, r"(\.[0-9]*?)0+$", "$1")
    return F.regexp_replace(trimmed, r"\.$", "")


@contextmanager
def _timed(step: str) -> Iterator[None]:
    """Log how long ``step`` took (the Glue job's log shows where the time goes)."""
    started = time.perf_counter()
    yield
    LOG.info("calculation step %s took %.1fs", step, time.perf_counter() - started)


@contextmanager
def _session_conf(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


# --------------------------------------------------------------------------- outputs
def write_delta_parts(
    frame: DataFrame,
    store: DataStore,
    key: str,
    *,
    expected_records: int,
    records_per_part: int = DELTA_RECORDS_PER_PART,
) -> list[str]:
    """Write the deltas as ``part=<k>/`` directories of at most
    ``records_per_part`` records each, numbered 0, 1, … (the publish Map's items).

    Each part is a run of consecutive rows of one partition of ``frame`` (Spark's writer starts a
    new file every ``records_per_part`` rows): no shuffle, no sort; the same inputs give the same
    parts, as the frame's partitions and row order are fixed. Partitions are first merged down to
    what ``expected_records`` needs, so a small run is not split into many tiny parts. Returns the
    written files relative to ``key``.
    """
    wanted = max(1, math.ceil(expected_records / records_per_part))
    if frame.rdd.getNumPartitions() > wanted:
        frame = frame.coalesce(wanted)
    with _timed(f"write {posixpath.basename(key)}"):
        scratch = f"{key}.__writing__"
        store.delete_prefix(scratch)
        store.delete_prefix(key)
        frame.write.mode("overwrite").option("maxRecordsPerFile", records_per_part).parquet(
            store.uri(scratch)
        )
        chunks = [
            (task, source)
            for task, source in _spark_files_in_order(store, scratch)
            if _parquet_rows(store, source) > 0
        ]
        if not chunks:  # no deltas: one empty file that carries the schema, in no part
            store.delete_prefix(scratch)
            return _write_deterministic(frame.limit(0), store, key, [])
        moved = []
        for part, (task, source) in enumerate(chunks):
            target = f"part={part}/part-{task:05d}.parquet"
            store.filesystem.create_dir(store.path(f"{key}/part={part}"), recursive=True)
            store.filesystem.move(store.path(source), store.path(f"{key}/{target}"))
            moved.append(target)
        store.delete_prefix(scratch)
        return moved


def _spark_files_in_order(store: DataStore, prefix: str) -> list[tuple[int, str]]:
    """``(task, file)`` of the data files Spark wrote under ``prefix``, by task, then in the
    order each task wrote them."""
    found = []
    for source in store.list(prefix, recursive=True):
        match = _SPARK_FILE.match(posixpath.basename(source))
        if match:
            found.append((int(match[1]), int(match[2] or 0), source))
    return [(task, source) for task, _, source in sorted(found)]


def _parquet_rows(store: DataStore, key: str) -> int:
    with store.filesystem.open_input_file(store.path(key)) as handle:
        return int(pq.read_metadata(handle).num_rows)


def write_deterministic(
    frame: DataFrame,
    store: DataStore,
    key: str,
    *,
    partition_by: Sequence[str] = (),
    sort_by: Sequence[str],
    tasks: int = 1,
    keep_partitions: bool = False,
    row_group_bytes: int | None = None,
) -> list[str]:
    """Write ``frame`` as Parquet under ``key`` with stable content and file names.

    The rows go to ``tasks`` tasks by ``partition_by`` (one when unpartitioned), or stay in the
    frame's own partitions with ``keep_partitions``; each task sorts its rows by
    ``partition_by`` and ``sort_by``. Spark names files with a random job id; they are written
    to a scratch prefix and moved to ``part-<task>.parquet``. An empty frame gets one empty file
    with the full schema. ``row_group_bytes`` caps the Parquet row groups (default: 128 MB).
    Returns the written files relative to ``key`` (e.g.
    ``period=2026-10/part-00000.parquet``).
    """
    with _timed(f"write {posixpath.basename(key)}"):
        if keep_partitions:
            ordered = frame
        elif partition_by:
            ordered = frame.repartition(tasks, *partition_by)
        else:
            ordered = frame.coalesce(1)
        keys = [*partition_by, *sort_by]
        return _write_deterministic(
            ordered.sortWithinPartitions(*keys) if keys else ordered,
            store,
            key,
            partition_by,
            row_group_bytes=row_group_bytes,
        )


def _write_deterministic(
    frame: DataFrame,
    store: DataStore,
    key: str,
    partition_by: Sequence[str],
    *,
    row_group_bytes: int | None = None,
) -> list[str]:
    scratch = f"{key}.__writing__"
    store.delete_prefix(scratch)
    store.delete_prefix(key)
    writer = frame.write.mode("overwrite")
    if row_group_bytes:
        writer = writer.option("parquet.block.size", row_group_bytes)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.parquet(store.uri(scratch))
    moved = _move_parts(store, scratch, key)
    store.delete_prefix(scratch)
    if not moved:
        frame.limit(0).coalesce(1).write.mode("overwrite").parquet(store.uri(scratch))
        moved = _move_parts(store, scratch, key)
        store.delete_prefix(scratch)
    return moved


def _move_parts(store: DataStore, scratch: str, key: str) -> list[str]:
    moved = []
    for source in store.list(scratch, recursive=True):
        relative = source[len(scratch) + 1 :]
        directory, name = posixpath.split(relative)
        match = _SPARK_FILE.match(name)
        if not match:
            continue  # _SUCCESS and checksum files
        written = posixpath.join(directory, f"part-{match.group(1)}.parquet")
        target = posixpath.join(key, written)
        store.filesystem.create_dir(store.path(posixpath.dirname(target)), recursive=True)
        store.filesystem.move(store.path(source), store.path(target))
        moved.append(written)
    return moved


def _write_outputs(
    store: DataStore,
    prefix: str,
    frames: SettlementFrames,
    *,
    batches: Sequence[BatchRef],
    run_id: str,
    periods: Sequence[str],
) -> dict[str, Any]:
    tasks = max(1, len(periods))
    write_deterministic(
        frames.dealer_summary,
        store,
        f"{prefix}/dealer_summary",
        partition_by=["period"],
        sort_by=["market", "dealer_id", "currency"],
        tasks=tasks,
    )
    write_deterministic(
        frames.rejects,
        store,
        f"{prefix}/rejects",
        partition_by=["period"],
        sort_by=["batch_id", "line_number"],
        tasks=tasks,
    )
    # One small aggregate, computed once: checked against the manifests, then written.
    batch_counts = frames.batch_counts.localCheckpoint(eager=True)
    counts = _batch_counts(batch_counts, batches)
    write_deterministic(
        batch_counts, store, f"{prefix}/batch_counts", sort_by=["period", "batch_id"]
    )
    written = write_delta_parts(
        frames.deltas, store, f"{prefix}/deltas", expected_records=frames.lines.count()
    )
    # Unpublished ledger rewrites: few (re-runs only), applied by Finalise with the deltas.
    write_deterministic(
        frames.ledger_updates, store, f"{prefix}/ledger_updates", sort_by=["transaction_id"]
    )
    # Count and totals from the files just written: one narrow read, no second join.
    spark = frames.deltas.sparkSession
    with _timed("totals"):
        written_deltas = spark.read.schema(DELTAS_SCHEMA).parquet(store.uri(f"{prefix}/deltas"))
        totals = _delta_totals(written_deltas)
        # One row per period at most; the deltas are read only when such clawbacks exist.
        later = (
            later_clawbacks(written_deltas, frames.clawbacks_elsewhere).orderBy("period").collect()
        )
        summary = spark.read.schema(DEALER_SUMMARY_SCHEMA).parquet(
            store.uri(f"{prefix}/dealer_summary")
        )
        _check_summary_fits(summary)
        line_totals = _line_totals(summary)
    records = sum(int(row["records"]) for row in totals)
    return {
        "run_id": run_id,
        "periods": list(periods),
        "rows_in": sum(b["rows_in"] for b in counts),
        "rows_settled": sum(b["rows_settled"] for b in counts),
        "rows_rejected": sum(b["rows_rejected"] for b in counts),
        "batches": counts,
        "totals": line_totals,
        "deltas": {
            "records": records,
            "parts": _written_parts(written),
            # base/bonus too, so the publish steps announce and commit without re-reading deltas/
            "totals": [
                {"currency": row["currency"], **{f: _money(row[f]) for f in DELTA_TOTALS}}
                for row in totals
            ],
        },
        # Published clawbacks elsewhere that reverse sales this run changed: re-run those.
        "later_clawbacks": [
            {"period": row["period"], "records": int(row["records"])} for row in later
        ],
    }


class AmountOverflowError(ValueError):
    """A dealer's total does not fit the money type (decimal(18,2)); names the dealers."""


def _check_summary_fits(dealer_summary: DataFrame) -> None:
    """Fail when a money column of the summary is null: Spark casts a sum beyond decimal(18,2)
    to null, which must never be read as "nothing" (every such column is a coalesced sum)."""
    money = [f.name for f in DEALER_SUMMARY_SCHEMA.fields if f.dataType == MONEY]
    overflowed = (
        dealer_summary.filter(F.greatest(*(F.col(c).isNull() for c in money)))
        .select("period", "dealer_id", "currency")
        .orderBy("period", "dealer_id", "currency")
        .limit(5)
        .collect()
    )
    if overflowed:
        named = ", ".join(f"{r.dealer_id} in {r.period} ({r.currency})" for r in overflowed)
        raise AmountOverflowError(
            f"dealer totals beyond {MONEY.simpleString()} for {named}: the batches carry "
            "implausible prices; check them"
        )


def _batch_counts(batch_counts: DataFrame, batches: Sequence[BatchRef]) -> list[dict[str, Any]]:
    found = {row["batch_id"]: row.asDict() for row in batch_counts.collect()}
    counts = []
    for batch in batches:
        row = found.get(batch.batch_id, {"rows_in": 0, "rows_settled": 0, "rows_rejected": 0})
        if row["rows_in"] != batch.row_count:
            raise BatchFileError(
                f"{batch.key} (batch {batch.batch_id}): {row['rows_in']} rows read, "
                f"the manifest says {batch.row_count}"
            )
        counts.append(
            {
                "batch_id": batch.batch_id,
                "period": batch.period,
                **{c: int(row[c]) for c in column_names(BATCH_COUNTS_SCHEMA)[2:]},
            }
        )
    return counts


def _money(value: Decimal | None) -> str:
    return str((value or Decimal(0)).quantize(Decimal("0.01")))


def _line_totals(dealer_summary: DataFrame) -> list[dict[str, str]]:
    """Totals per currency over the lines, summed from the dealer summary (the lines' sums per
    dealer: a few thousand rows instead of every line). Groups without lines (dealers only in
    the ledger) are left out, so a currency appears when lines carry it."""
    fields = ("base_total", "bonus_total", "clawback_total", "total")
    with_lines = dealer_summary.filter((F.col("sales_units") + F.col("cancelled_units")) > 0)
    rows = (
        with_lines.groupBy("currency")
        .agg(*(F.sum(f).alias(f) for f in fields))
        .orderBy("currency")
        .collect()
    )
    return [{"currency": r["currency"], **{f: _money(r[f]) for f in fields}} for r in rows]


DELTA_TOTALS = ("base_delta", "bonus_delta", "delta")


def _delta_totals(deltas: DataFrame) -> list[Row]:
    """Records and the sums of ``DELTA_TOTALS`` per currency, by currency (nulls first)."""
    rows = deltas.groupBy("currency").agg(
        F.count(F.lit(1)).alias("records"), *(F.sum(f).alias(f) for f in DELTA_TOTALS)
    )
    return sorted(rows.collect(), key=lambda r: (r["currency"] is not None, r["currency"] or ""))


def _written_parts(files: Sequence[str]) -> list[int]:
    """The ``part`` values of the delta files written (``part=<n>/part-<task>.parquet``)."""
    prefix = "part="
    directories = {posixpath.dirname(f) for f in files}
    return sorted(int(d[len(prefix) :]) for d in directories if d.startswith(prefix))
