"""`generate_month`: one period of batches, the matrix and the targets, streamed chunk by chunk."""

from __future__ import annotations

import csv
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from math import floor
from pathlib import Path

import numpy as np

from settlement.generator.batches import FORMATS, BatchWriter, WrittenBatch
from settlement.generator.catalog import (
    CANCELLATION_SHARE,
    MAX_INVALID_SHARE,
    REASONS,
    Period,
    build_roster,
)
from settlement.generator.chunk import CarriedSale, ChunkGenerator, ChunkPlan
from settlement.generator.matrix import write_matrix
from settlement.generator.targets import TARGET_COLUMNS, write_targets

DEFAULT_BATCH_ROWS = 250_000
CHUNK_ROWS = 250_000
CARRIED_SHARE = 0.005
SOURCE_PATTERN = re.compile(r"^[A-Za-z0-9_]{1,32}$")

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class GeneratedMonth:
    """What `generate_month` wrote and what it intended each row to become.

    `reason_counts` holds, per spec §2 reject reason, the rows made to be rejected for it (every
    reason is present, zero or not); `valid_sales` and `valid_cancellations` are the rows meant
    to settle, so ``rows == valid_sales + valid_cancellations + sum(reason_counts.values())``.
    """

    period: str
    source: str
    seed: int
    rows: int
    batches: tuple[WrittenBatch, ...]
    matrix_path: Path
    targets_path: Path
    reason_counts: dict[str, int]
    batch_reason_counts: dict[str, dict[str, int]]
    valid_sales: int
    valid_cancellations: int
    dealers: int
    target_aims: dict[str, int]
    carry_over: tuple[CarriedSale, ...] = field(repr=False, default=())

    @property
    def batch_paths(self) -> tuple[Path, ...]:
        return tuple(batch.data_path for batch in self.batches)

    @property
    def manifest_paths(self) -> tuple[Path, ...]:
        return tuple(batch.manifest_path for batch in self.batches)

    @property
    def rows_rejected(self) -> int:
        return sum(self.reason_counts.values())


def _validate(
    *, rows: int, seed: int, invalid_share: float, batch_rows: int, fmt: str, source: str
) -> None:
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    if seed < 0:
        raise ValueError(f"seed must be 0 or more, got {seed}")
    if not 0.0 <= invalid_share <= MAX_INVALID_SHARE:
        raise ValueError(
            f"invalid share must be between 0 and {MAX_INVALID_SHARE}, got {invalid_share}"
        )
    if batch_rows < 1:
        raise ValueError(f"batch rows must be at least 1, got {batch_rows}")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if SOURCE_PATTERN.match(source) is None:
        raise ValueError(f"source must be 1-32 letters, digits or _, got {source!r}")


def _share_between(share: float, start: int, end: int) -> int:
    """Rows of [start, end) that get a property held by `share` of all rows, without drift."""
    return floor(share * end) - floor(share * start)


def _plans(
    rows: int, batch_rows: int, invalid_share: float, carried: tuple[CarriedSale, ...]
) -> Iterator[tuple[int, ChunkPlan]]:
    """Chunk plans with the batch each belongs to; rejects cycle through every reason."""
    chunk_rows = min(batch_rows, CHUNK_ROWS)
    index = 0
    for batch, batch_start in enumerate(range(0, rows, batch_rows)):
        batch_end = min(rows, batch_start + batch_rows)
        for start in range(batch_start, batch_end, chunk_rows):
            end = min(batch_end, start + chunk_rows)
            first_invalid = floor(invalid_share * start)
            invalid = np.arange(
                first_invalid, first_invalid + _share_between(invalid_share, start, end)
            )
            yield (
                batch,
                ChunkPlan(
                    index=index,
                    start=start,
                    rows=end - start,
                    cancellations=_share_between(CANCELLATION_SHARE, start, end),
                    reasons=np.bincount(invalid % len(REASONS), minlength=len(REASONS)),
                    carried=carried if index == 0 else (),
                ),
            )
            index += 1


def _carried(previous: GeneratedMonth | None, rows: int) -> tuple[CarriedSale, ...]:
    if previous is None:
        return ()
    wanted = min(len(previous.carry_over), floor(rows * CARRIED_SHARE), min(rows, CHUNK_ROWS) // 10)
    return previous.carry_over[:wanted]


def generate_month(
    out_dir: Path,
    *,
    rows: int,
    seed: int,
    period: str,
    invalid_share: float = 0.0,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    fmt: str = "csv",
    source: str = "dms",
    previous: GeneratedMonth | None = None,
    on_progress: ProgressCallback | None = None,
) -> GeneratedMonth:
    """Generate one period of transaction batches, the matrix and the targets under `out_dir`.

    Writes ``transactions/<batch_id>.<fmt>`` and ``.manifest.json`` (spec §2), with batch ids
    ``<period>-<source>-<nnnn>``, then ``reference/matrix.csv`` and ``reference/targets.csv``
    (rows of other periods already in that file are kept). The same arguments give the same bytes.

    Parameters
    ----------
    out_dir : Path
        Output directory (created when missing).
    rows : int
        Rows over all batches, invalid ones included.
    seed : int
        Seed (≥ 0) of every random choice.
    period : str
        The month, ``YYYY-MM``.
    invalid_share : float
        Share of rows (0 to 0.5) made invalid, cycling through every reject reason of spec §2.
    batch_rows : int
        Rows per batch (the last batch takes the rest).
    fmt : str
        ``csv`` or ``parquet`` (all columns strings, values as in the CSV).
    source : str
        The sending system, part of batch and transaction ids: use another source to add batches
        to a period already generated.
    previous : GeneratedMonth | None
        An earlier month; about 0.5 % of rows then cancel sales carried over from it.
    on_progress : Callable[[int], None] | None
        Called with the number of rows just written, after each chunk.

    Returns
    -------
    GeneratedMonth
        Paths written and the intended outcome of the rows.
    """
    _validate(
        rows=rows,
        seed=seed,
        invalid_share=invalid_share,
        batch_rows=batch_rows,
        fmt=fmt,
        source=source,
    )
    month = Period.parse(period)
    roster = build_roster(rows, seed)
    generator = ChunkGenerator(
        month, roster, (seed, zlib.crc32(source.encode())), f"TX-{month.compact()}-{source}-"
    )
    transactions = out_dir / "transactions"
    sales = np.zeros(roster.size, dtype=np.int64)
    cancellations = np.zeros(roster.size, dtype=np.int64)
    per_batch: dict[str, np.ndarray] = {}
    written: list[WrittenBatch] = []
    carry_over: tuple[CarriedSale, ...] = ()
    valid = np.zeros(2, dtype=np.int64)
    writer: BatchWriter | None = None
    try:
        for batch, plan in _plans(rows, batch_rows, invalid_share, _carried(previous, rows)):
            batch_id = f"{period}-{source}-{batch + 1:04d}"
            if writer is None or writer.batch_id != batch_id:
                if writer is not None:
                    written.append(writer.close())
                writer = BatchWriter(transactions, batch_id, period, source, fmt)
                per_batch[batch_id] = np.zeros(len(REASONS), dtype=np.int64)
            chunk = generator.generate(plan)
            writer.write(chunk.table)
            per_batch[batch_id] += chunk.reason_counts
            sales += chunk.sales_per_dealer
            cancellations += chunk.cancellations_per_dealer
            valid += (chunk.valid_sales, chunk.valid_cancellations)
            carry_over = carry_over or chunk.carry_over
            if on_progress is not None:
                on_progress(plan.rows)
        assert writer is not None  # rows >= 1 gives at least one chunk
        written.append(writer.close())
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    reference = out_dir / "reference"
    matrix_path = write_matrix(reference / "matrix.csv", month)
    targets_path = reference / "targets.csv"
    kept = _targets_of_other_periods(targets_path, period)
    aims = write_targets(targets_path, roster, sales - cancellations, period, seed, kept=kept)
    totals = sum(per_batch.values(), np.zeros(len(REASONS), dtype=np.int64))
    return GeneratedMonth(
        period=period,
        source=source,
        seed=seed,
        rows=rows,
        batches=tuple(written),
        matrix_path=matrix_path,
        targets_path=targets_path,
        reason_counts=_by_reason(totals),
        batch_reason_counts={
            batch_id: _by_reason(counts) for batch_id, counts in per_batch.items()
        },
        valid_sales=int(valid[0]),
        valid_cancellations=int(valid[1]),
        dealers=roster.size,
        target_aims=aims,
        carry_over=carry_over,
    )


def _by_reason(counts: np.ndarray) -> dict[str, int]:
    return {reason: int(count) for reason, count in zip(REASONS, counts, strict=True)}


def _targets_of_other_periods(path: Path, period: str) -> list[list[str]]:
    """Target rows of other periods already in the file, so several months share one file."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(header) != TARGET_COLUMNS:
            raise ValueError(
                f"{path}: not a targets file (header must be {','.join(TARGET_COLUMNS)})"
            )
        return [row for row in reader if row[2] != period]
