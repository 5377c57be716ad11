"""Writing one batch: the data file chunk by chunk with its sha256, then the manifest (spec §2)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from settlement.generator.catalog import COLUMNS

SCHEMA_VERSION = 1
FORMATS = ("csv", "parquet")
BATCH_SCHEMA = pa.schema([(name, pa.string()) for name in COLUMNS])


class _HashingFile:
    """A binary file that hashes what passes through it, so the sha256 costs no second read."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.position = 0
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        self.digest.update(view)
        self.position += view.nbytes
        return self.raw.write(view)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False


@dataclass(frozen=True)
class WrittenBatch:
    batch_id: str
    data_path: Path
    manifest_path: Path
    row_count: int
    sha256: str


class BatchWriter:
    """Streams tables into `<dir>/<batch_id>.<fmt>`; on close writes the manifest next to it.

    Both files are written under a temporary name and renamed when complete, so a reader never
    sees a partial batch (and the manifest only appears once its data file is final).
    """

    def __init__(self, directory: Path, batch_id: str, period: str, source: str, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        directory.mkdir(parents=True, exist_ok=True)
        self.batch_id, self.period, self.source, self.fmt = batch_id, period, source, fmt
        self.data_path = directory / f"{batch_id}.{fmt}"
        self.manifest_path = directory / f"{batch_id}.manifest.json"
        self._partial = self.data_path.with_name(self.data_path.name + ".partial")
        self._raw = self._partial.open("wb")
        self._sink = _HashingFile(self._raw)
        self._rows = 0
        self._csv: pa_csv.CSVWriter | None = None
        self._parquet: pq.ParquetWriter | None = None
        if fmt == "csv":
            # pyarrow quotes header names; write a plain header line ourselves.
            self._sink.write((",".join(COLUMNS) + "\n").encode())
            options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
            self._csv = pa_csv.CSVWriter(self._sink, BATCH_SCHEMA, write_options=options)
        else:
            self._parquet = pq.ParquetWriter(self._sink, BATCH_SCHEMA, compression="zstd")

    def write(self, table: pa.Table) -> None:
        if self._csv is not None:
            self._csv.write_table(table)
        elif self._parquet is not None:
            self._parquet.write_table(table, row_group_size=len(table))
        self._rows += table.num_rows

    def close(self) -> WrittenBatch:
        if self._csv is not None:
            self._csv.close()
        if self._parquet is not None:
            self._parquet.close()
        self._raw.close()
        self._partial.replace(self.data_path)
        sha256 = self._sink.digest.hexdigest()
        manifest = {
            "batch_id": self.batch_id,
            "period": self.period,
            "schema_version": SCHEMA_VERSION,
            "row_count": self._rows,
            "sha256": sha256,
            "source": self.source,
        }
        partial_manifest = self.manifest_path.with_name(self.manifest_path.name + ".partial")
        partial_manifest.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        partial_manifest.replace(self.manifest_path)
        return WrittenBatch(self.batch_id, self.data_path, self.manifest_path, self._rows, sha256)

    def abort(self) -> None:
        """Drop the partial data file after a failure."""
        self._raw.close()
        self._partial.unlink(missing_ok=True)

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if error is not None:
            self.abort()
