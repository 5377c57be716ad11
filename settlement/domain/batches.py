"""Transaction batches at file level (spec §2) and the periods a run request asks for (spec §5, §8).

A batch is a data file (``<batch_id>.csv`` or ``<batch_id>.parquet``) plus its manifest under
``incoming/transactions/``. This module decides which batches belong to a run and whether each is
valid *as a whole*; row-level rules belong to the calculation. Every problem of every batch is
collected before failing, so an operator fixes them all in one go.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from settlement.domain.transactions import TRANSACTION_COLUMNS

INCOMING_PREFIX = "incoming/transactions/"
MANIFEST_SUFFIX = ".manifest.json"
DATA_FORMATS = ("csv", "parquet")
SCHEMA_VERSION = 1
READ_CONCURRENCY = 8
READ_CHUNK_BYTES = 1 << 20
CSV_HEAD_BYTES = 1 << 16  # the longest header line read
CSV_BLOCK_BYTES = 1 << 20  # what the CSV parser takes at a time (a row must fit)


REQUEST_KEYS = frozenset({"periods", "from", "to", "dry_run", "requested_by"})
_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
# Three years: wider than any correction window; a typo in a year ("0206-07-01") would
# otherwise lock thousands of months and overflow the state machine's 256 KiB payload.
MAX_PERIODS_PER_RUN = 36
_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
# The batch id names the data file, which Spark reads as a path: a space, '%' or '#' is
# URI-encoded in the names Spark reports, ':' is refused by Hadoop, '*?[]{}' are glob patterns.
BATCH_ID_RULE = (
    "a batch id starts with a letter or digit and uses letters, digits, '.', '_' and '-' only "
    "(at most 200 characters)"
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class InvalidRequestError(ValueError):
    """The execution input does not name periods or a date range the run can use."""


class InvalidBatchesError(Exception):
    """One or more batches of the run's periods are invalid as a whole (spec §2).

    Attributes
    ----------
    problems
        Every problem found, each naming its batch.
    """

    def __init__(self, problems: Sequence[BatchProblem]) -> None:
        self.problems = list(problems)
        lines = [f"{problem.batch_id}: {problem.reason}" for problem in self.problems]
        count = len({problem.batch_id for problem in self.problems})
        super().__init__(f"{count} invalid batch(es): " + "; ".join(lines))


@dataclass(frozen=True)
class BatchProblem:
    """Why a batch cannot be used: the batch (or file) and a readable reason."""

    batch_id: str
    reason: str


@dataclass(frozen=True)
class Manifest:
    """``<batch_id>.manifest.json`` as the external account writes it."""

    batch_id: str
    period: str
    schema_version: int
    row_count: int
    sha256: str
    source: str


@dataclass(frozen=True)
class BatchRef:
    """A validated batch as ``runs/<run_id>/input/batches.json`` lists it (architecture.md)."""

    batch_id: str
    period: str
    key: str
    format: str
    sha256: str
    row_count: int
    source: str
    incoming_key: str = ""
    """Where the batch arrived, when ``key`` is the run's own copy of it."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ReadableFile(Protocol):
    """A binary file opened for reading (pyarrow's ``NativeFile`` is one)."""

    def read(self, nbytes: int | None = None, /) -> bytes: ...

    def __enter__(self) -> ReadableFile: ...

    def __exit__(self, *exc_info: object) -> Any: ...


class BlobStore(Protocol):
    """What validation needs from the data store (``settlement.adapters.storage.DataStore``)."""

    def list(self, prefix: str, *, recursive: bool = False) -> Iterator[str]: ...

    def read_bytes(self, key: str) -> bytes: ...

    def open_stream(self, key: str) -> ReadableFile:
        """``key`` for one sequential read (one GET on S3)."""
        ...

    def open_file(self, key: str) -> ReadableFile:
        """``key`` for random access (a Parquet footer without reading the file)."""
        ...

    def copy(self, source: str, target: str) -> None:
        """Copy ``source`` to ``target`` whole (server-side on S3)."""
        ...


# --------------------------------------------------------------------------- periods
@dataclass(frozen=True)
class RunRequest:
    """The execution input of spec §8, normalised."""

    periods: list[str]
    dry_run: bool
    requested_by: str


def parse_run_request(document: Mapping[str, Any]) -> RunRequest:
    """Normalise an execution input: ``{"periods": [...]}`` or ``{"from": D, "to": D}``.

    Parameters
    ----------
    document
        The execution input; ``dry_run`` (bool) and ``requested_by`` (str) are optional.

    Returns
    -------
    RunRequest
        The periods touched, oldest first and without repeats.

    Raises
    ------
    InvalidRequestError
        When the input names neither or both forms, or a value is malformed.
    """
    unknown = sorted(set(document) - REQUEST_KEYS)
    if unknown:
        # a mistyped "dry_run" must not turn into a real, published run
        raise InvalidRequestError(
            f"unknown run input key(s) {unknown}; allowed: {sorted(REQUEST_KEYS)}"
        )
    has_periods = "periods" in document
    has_range = "from" in document or "to" in document
    if has_periods == has_range:
        raise InvalidRequestError(
            'the run input needs either "periods": ["YYYY-MM", …] or "from" and "to" dates'
        )
    periods = _listed_periods(document["periods"]) if has_periods else _range_periods(document)
    if len(periods) > MAX_PERIODS_PER_RUN:
        raise InvalidRequestError(
            f"the run asks for {len(periods)} periods ({periods[0]} to {periods[-1]}); at most "
            f"{MAX_PERIODS_PER_RUN} per run: check the dates, or split the range"
        )
    dry_run = document.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise InvalidRequestError(f'"dry_run" must be true or false, got {dry_run!r}')
    requested_by = document.get("requested_by") or "unknown"
    if not isinstance(requested_by, str):
        raise InvalidRequestError(f'"requested_by" must be a string, got {requested_by!r}')
    return RunRequest(periods=periods, dry_run=dry_run, requested_by=requested_by)


def periods_between(start: date, end: date) -> list[str]:
    """The calendar months touched by the inclusive date range ``start``..``end``, oldest first."""
    if end < start:
        raise InvalidRequestError(f"the range ends ({end}) before it starts ({start})")
    periods = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        periods.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return periods


def _listed_periods(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise InvalidRequestError('"periods" must be a non-empty list of "YYYY-MM"')
    bad = [period for period in value if not isinstance(period, str) or not _PERIOD.match(period)]
    if bad:
        raise InvalidRequestError(f'"periods" holds values that are not YYYY-MM: {bad}')
    return sorted(set(value))


def _range_periods(document: Mapping[str, Any]) -> list[str]:
    return periods_between(_date_field(document, "from"), _date_field(document, "to"))


def _date_field(document: Mapping[str, Any], name: str) -> date:
    value = document.get(name)
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidRequestError(f'"{name}" must be a date YYYY-MM-DD, got {value!r}') from None


# --------------------------------------------------------------------------- manifests
def parse_manifest(key: str, data: bytes) -> Manifest:
    """Read a manifest, reporting every missing or malformed field at once.

    Raises
    ------
    InvalidBatchesError
        Naming the manifest when it is unreadable or incomplete.
    """
    return _manifest_of(key, _manifest_document(key, data))


def _manifest_document(key: str, data: bytes) -> dict[str, Any]:
    batch_id = batch_id_of(key)
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidBatchesError(
            [BatchProblem(batch_id, f"manifest {key} is unreadable ({error})")]
        ) from None
    if not isinstance(document, dict):
        raise InvalidBatchesError([BatchProblem(batch_id, f"manifest {key} is not a JSON object")])
    return document


def _manifest_of(key: str, document: Mapping[str, Any]) -> Manifest:
    batch_id = batch_id_of(key)
    problems = [
        BatchProblem(batch_id, f"manifest {key}: {text}")
        for text in _manifest_faults(document, batch_id)
    ]
    if problems:
        raise InvalidBatchesError(problems)
    return Manifest(**{name: document[name] for name in _MANIFEST_FIELDS})


_MANIFEST_FIELDS: dict[str, type] = {
    "batch_id": str,
    "period": str,
    "schema_version": int,
    "row_count": int,
    "sha256": str,
    "source": str,
}


def _manifest_faults(document: Mapping[str, Any], batch_id: str) -> list[str]:
    faults = []
    for name, kind in _MANIFEST_FIELDS.items():
        value = document.get(name)
        if value is None:
            faults.append(f'"{name}" is missing')
        elif not isinstance(value, kind) or isinstance(value, bool):
            faults.append(f'"{name}" must be {kind.__name__}, got {value!r}')
    if faults:
        return faults
    if document["batch_id"] != batch_id:
        faults.append(f'"batch_id" {document["batch_id"]!r} does not match the file name')
    if not _PERIOD.match(document["period"]):
        faults.append(f'"period" must be YYYY-MM, got {document["period"]!r}')
    if document["schema_version"] != SCHEMA_VERSION:
        faults.append(f'"schema_version" {document["schema_version"]} is not {SCHEMA_VERSION}')
    if document["row_count"] < 0:
        faults.append(f'"row_count" must be ≥ 0, got {document["row_count"]}')
    if not _SHA256.match(document["sha256"].lower()):
        faults.append(f'"sha256" is not a hex SHA-256 digest: {document["sha256"]!r}')
    return faults


def batch_id_of(key: str) -> str:
    """The batch id a key under ``incoming/transactions/`` belongs to."""
    name = key.rsplit("/", 1)[-1]
    if name.endswith(MANIFEST_SUFFIX):
        return name[: -len(MANIFEST_SUFFIX)]
    return name.rsplit(".", 1)[0] if "." in name else name


# --------------------------------------------------------------------------- data files
def data_file_faults(store: BlobStore, key: str, fmt: str, manifest: Manifest) -> list[str]:
    """File-level faults of a data file against its manifest: sha256, header, row count.

    One streamed read hashes the file and, for a CSV, parses it on the way; a Parquet file's
    columns and rows come from its footer. Memory stays flat whatever the file's size, and a
    sha256 mismatch is reported alone (the rest of such a file means nothing).
    """
    with store.open_stream(key) as stream:
        reader = _HashingReader(stream)
        faults, rows = _csv_shape(reader) if fmt == "csv" else ([], 0)
        reader.read_to_end()
    digest = reader.hexdigest()
    if digest != manifest.sha256.lower():
        return [f"sha256 {digest} of the data file does not match the manifest's {manifest.sha256}"]
    if fmt == "parquet":
        with store.open_file(key) as handle:
            faults, rows = _parquet_shape(handle)
    if faults:
        return faults
    if rows != manifest.row_count:
        return [f"the data file has {rows} rows, the manifest says {manifest.row_count}"]
    return []


class _HashingReader:
    """Reads a stream and hashes every byte read (what a parser reads, and the rest)."""

    def __init__(self, stream: ReadableFile) -> None:
        self._stream = stream
        self._digest = hashlib.sha256()
        self.closed = False

    def read(self, nbytes: int = -1) -> bytes:
        data = self._stream.read(None if nbytes < 0 else nbytes)
        self._digest.update(data)
        return data

    def read_to_end(self) -> None:
        while self.read(READ_CHUNK_BYTES):
            pass

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def close(self) -> None:
        self.closed = True  # the owner closes the stream itself


class _Replayed:
    """``head`` again, then the rest of ``stream``: the header is read twice, the file once."""

    def __init__(self, head: bytes, stream: _HashingReader) -> None:
        self._head = head
        self._stream = stream
        self.closed = False

    def read(self, nbytes: int = -1) -> bytes:
        if not self._head:
            return self._stream.read(nbytes)
        if nbytes < 0:
            data, self._head = self._head + self._stream.read(), b""
        else:
            data, self._head = self._head[:nbytes], self._head[nbytes:]
        return data

    def close(self) -> None:
        self.closed = True


def _csv_shape(reader: _HashingReader) -> tuple[list[str], int]:
    """Header faults, or none and the number of data rows (blank lines ignored; a line break
    inside a quoted value is a fault)."""
    head = b""
    while b"\n" not in head and len(head) <= CSV_HEAD_BYTES:
        chunk = reader.read(READ_CHUNK_BYTES)
        if not chunk:
            break
        head += chunk
    if b"\n" not in head[: CSV_HEAD_BYTES + 1] and len(head) > CSV_HEAD_BYTES:
        return [f"the header line is longer than {CSV_HEAD_BYTES} bytes"], 0
    try:
        columns = _csv_header(head.removeprefix(b"\xef\xbb\xbf"))
        faults = _header_faults(columns)
        if faults:
            return faults, 0
        rows = pacsv.open_csv(
            _Replayed(head, reader),
            # One thread: no read-ahead still reading the stream when the hash is finished.
            read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(columns, pa.string())),
        )
        count = 0
        for batch in rows:
            spanning = _line_break_in_value(batch)
            if spanning is not None:
                row, column = spanning
                return [
                    f"data row {count + row + 1} has a line break inside a quoted value "
                    f"(column {column.strip()}): each row must be one line"
                ], 0
            count += batch.num_rows
        return [], count
    except (pa.ArrowException, UnicodeDecodeError, csv.Error) as error:
        return [f"the csv data file is unreadable ({_first_line(error)})"], 0


def _line_break_in_value(batch: pa.RecordBatch) -> tuple[int, str] | None:
    """The first (row in ``batch``, column) whose value holds a line break, if any.

    The job reads a CSV one line per row (its line numbers are the file's), so a quoted value
    spanning lines would split its row there. Each column's value bytes are searched at once
    (one memchr-fast scan); only a column with a hit is searched row by row.
    """
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        values = column.buffers()[2]
        if values is None:
            continue
        raw = values.to_pybytes()
        if b"\n" not in raw and b"\r" not in raw:
            continue
        found = pc.index(pc.match_substring_regex(column, "[\r\n]"), True).as_py()
        if found >= 0:
            return found, name
    return None


def _parquet_shape(handle: ReadableFile) -> tuple[list[str], int]:
    """Header faults, or none and the number of rows, from the footer alone."""
    try:
        metadata = pq.read_metadata(handle)
    except pa.ArrowException as error:
        return [f"the parquet data file is unreadable ({_first_line(error)})"], 0
    return _header_faults(list(metadata.schema.to_arrow_schema().names)), metadata.num_rows


def _csv_header(head: bytes) -> list[str]:
    header_line = head.split(b"\n", 1)[0].rstrip(b"\r")
    return next(iter(_csv_rows(header_line)), [])


def _csv_rows(line: bytes) -> Iterable[list[str]]:
    return csv.reader(io.StringIO(line.decode("utf-8")))


def _header_faults(columns: Sequence[str]) -> list[str]:
    names = [column.strip() for column in columns]
    missing = [column for column in TRANSACTION_COLUMNS if column not in names]
    extra = [column for column in names if column not in TRANSACTION_COLUMNS]
    repeated = sorted({column for column in names if names.count(column) > 1})
    faults = []
    if missing:
        faults.append(f"the header lacks column(s) {', '.join(missing)}")
    if extra:
        faults.append(f"the header adds unknown column(s) {', '.join(extra)}")
    if repeated:
        faults.append(f"the header repeats column(s) {', '.join(repeated)}")
    return faults


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


# --------------------------------------------------------------------------- the run's batches
def collect_batches(
    store: BlobStore, periods: Sequence[str], *, copy_to: str | None = None
) -> list[BatchRef]:
    """The valid batches of ``periods`` present now, sorted by (period, batch_id).

    A manifest whose period lies outside ``periods`` is not this run's business. A data file
    without a manifest, or a manifest that cannot be read, blocks every run: nobody can tell
    which period it belongs to, and settling without it could pay the wrong amounts.

    With ``copy_to`` (a run's input prefix) each data file is copied there first and the copy
    is what is validated and listed: the run then calculates exactly the bytes whose sha256
    it reports, even if the batch is sent again while the run is going.

    Raises
    ------
    InvalidBatchesError
        Listing every problem of every batch concerned.
    """
    files = _files_by_batch(store.list(INCOMING_PREFIX))
    wanted = set(periods)

    def check(item: tuple[str, dict[str, str]]) -> BatchRef | InvalidBatchesError | None:
        try:
            return _validated_batch(store, item[0], item[1], wanted, copy_to)
        except InvalidBatchesError as error:
            return error

    # Reading objects is latency-bound on S3: a few at a time, results in batch-id order.
    with ThreadPoolExecutor(max_workers=READ_CONCURRENCY) as pool:
        outcomes = list(pool.map(check, sorted(files.items())))
    problems = [p for o in outcomes if isinstance(o, InvalidBatchesError) for p in o.problems]
    batches = [outcome for outcome in outcomes if isinstance(outcome, BatchRef)]
    if problems:
        raise InvalidBatchesError(problems)
    return sorted(batches, key=lambda batch: (batch.period, batch.batch_id))


def _files_by_batch(keys: Iterable[str]) -> dict[str, dict[str, str]]:
    """``batch_id -> {"manifest"|"csv"|"parquet"|"other": key}``; temp files are skipped."""
    files: dict[str, dict[str, str]] = {}
    for key in keys:
        name = key.rsplit("/", 1)[-1]
        if "/" in key[len(INCOMING_PREFIX) :] or name.startswith(".") or name.endswith(".tmp"):
            continue
        if name.endswith(MANIFEST_SUFFIX):
            kind = "manifest"
        else:
            extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
            kind = extension if extension in DATA_FORMATS else "other"
        files.setdefault(batch_id_of(key), {})[kind] = key
    return files


def _validated_batch(
    store: BlobStore,
    batch_id: str,
    keys: Mapping[str, str],
    periods: set[str],
    copy_to: str | None,
) -> BatchRef | None:
    if "manifest" not in keys:
        data_keys = ", ".join(sorted(keys.values()))
        raise InvalidBatchesError(
            [BatchProblem(batch_id, f"the manifest is missing for {data_keys}")]
        )
    manifest = _readable_manifest(store, keys["manifest"], periods)
    if manifest is None:
        return None
    if not _BATCH_ID.match(batch_id):
        raise InvalidBatchesError([BatchProblem(batch_id, BATCH_ID_RULE)])
    formats = [fmt for fmt in DATA_FORMATS if fmt in keys]
    if not formats:
        raise InvalidBatchesError(
            [BatchProblem(batch_id, "the data file (.csv or .parquet) is missing")]
        )
    if len(formats) > 1:
        raise InvalidBatchesError(
            [BatchProblem(batch_id, "both a .csv and a .parquet data file exist; keep one")]
        )
    fmt = formats[0]
    key = keys[fmt]
    if copy_to is not None:
        key = f"{copy_to}/{key.rsplit('/', 1)[-1]}"
        store.copy(keys[fmt], key)
    faults = data_file_faults(store, key, fmt, manifest)
    if faults:
        raise InvalidBatchesError(
            [BatchProblem(batch_id, f"{keys[fmt]}: {fault}") for fault in faults]
        )
    return BatchRef(
        batch_id=batch_id,
        period=manifest.period,
        key=key,
        format=fmt,
        sha256=manifest.sha256.lower(),
        row_count=manifest.row_count,
        source=manifest.source,
        incoming_key=keys[fmt],
    )


def _readable_manifest(store: BlobStore, key: str, periods: set[str]) -> Manifest | None:
    """The manifest of a batch of ``periods``; None for one that names another period.

    A manifest naming a well-formed period outside the run is ignored whatever else is wrong
    with it: that period's runs report it. One whose period cannot be read blocks the run.
    """
    try:
        data = store.read_bytes(key)
    except OSError as error:
        raise InvalidBatchesError(
            [BatchProblem(batch_id_of(key), f"manifest {key} cannot be read ({error})")]
        ) from None
    document = _manifest_document(key, data)
    period = document.get("period")
    if isinstance(period, str) and _PERIOD.match(period) and period not in periods:
        return None
    return _manifest_of(key, document)


def batches_document(
    run_id: str, periods: Sequence[str], batches: Sequence[BatchRef]
) -> dict[str, Any]:
    """The ``runs/<run_id>/input/batches.json`` document (docs/architecture.md)."""
    return {
        "run_id": run_id,
        "periods": list(periods),
        "batches": [batch.to_json() for batch in batches],
    }


def manifest_for(
    batch_id: str, period: str, data: bytes, fmt: str, *, source: str
) -> dict[str, Any]:
    """The manifest the external account writes next to a data file (used by ``settle submit``)."""
    if not _PERIOD.match(period):
        raise InvalidBatchesError(
            [BatchProblem(batch_id, f"period must be YYYY-MM, got {period!r}")]
        )
    if not _BATCH_ID.match(batch_id):
        raise InvalidBatchesError([BatchProblem(batch_id, BATCH_ID_RULE)])
    if fmt == "csv":
        faults, rows = _csv_shape(_HashingReader(pa.BufferReader(data)))
    else:
        faults, rows = _parquet_shape(pa.BufferReader(data))
    if faults:
        raise InvalidBatchesError([BatchProblem(batch_id, fault) for fault in faults])
    return {
        "batch_id": batch_id,
        "period": period,
        "schema_version": SCHEMA_VERSION,
        "row_count": rows,
        "sha256": hashlib.sha256(data).hexdigest(),
        "source": source,
    }
