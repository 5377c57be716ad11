"""What the local Core View holds, in SQLite: runs, batches (gzip bodies) and commits.

A batch is kept whole, as the gzip of its JSON body, with its record count and totals per
currency computed on arrival, so a commit sums a few hundred rows rather than every record.
Also the Python accessor tests use to read back what Core View holds.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from settlement.domain.publishing import (
    MAX_BATCH_RECORDS,
    RECORD_FIELDS,
    InvalidDeltaRecordError,
    RunFigures,
    TotalsAccumulator,
    figures_of_payloads,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    header_sha256 TEXT NOT NULL,
    header TEXT NOT NULL,
    committed TEXT
);
CREATE TABLE IF NOT EXISTS batches (
    run_id TEXT NOT NULL,
    part INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    body_sha256 TEXT NOT NULL,
    records INTEGER NOT NULL,
    figures TEXT NOT NULL,
    body_gzip BLOB NOT NULL,
    PRIMARY KEY (run_id, part, seq)
);
"""

# The document's patterns; [0-9], not \d: JSON Schema's \d is ASCII, Python's any Unicode digit.
_MONEY = re.compile(r"-?[0-9]{1,16}(\.[0-9]{1,2})?")
_MONEY_COLUMN = re.compile(r"(?:-?[0-9]{1,16}(?:\.[0-9]{1,2})?\n)*-?[0-9]{1,16}(?:\.[0-9]{1,2})?")
_TOTAL = re.compile(r"-?[0-9]+(\.[0-9]{1,2})?")  # a sum of amounts: any number of digits
_PERIOD = re.compile(r"[0-9]{4}-[0-9]{2}")
_PERIOD_COLUMN = re.compile(r"(?:[0-9]{4}-[0-9]{2}\n)*[0-9]{4}-[0-9]{2}")
_FIELD_SET = frozenset(RECORD_FIELDS)
_TEXT_FIELDS = ("transaction_id", "period", "dealer_id", "currency")
_MONEY_FIELDS = RECORD_FIELDS[4:]
_COLUMN_PATTERNS = (("period", _PERIOD_COLUMN), *((name, _MONEY_COLUMN) for name in _MONEY_FIELDS))


class CoreViewProblemError(Exception):
    """A request Core View refuses: becomes ``{"error": code, "message": …}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


@dataclass(frozen=True)
class Stored:
    """Outcome of an idempotent PUT: created, or the same body replayed."""

    created: bool


class CoreViewStore:
    """The SQLite file of the local Core View (thread-safe; one writer at a time)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def clear(self) -> None:
        """Forget every run and its batches (tests: each generated request from a known state)."""
        with self._lock:
            self._db.execute("DELETE FROM batches")
            self._db.execute("DELETE FROM runs")

    # ------------------------------------------------------------------ runs
    def put_run(self, run_id: str, body: bytes) -> Stored:
        """Store the run header; the same header again is a replay, another one a 409."""
        header = _parse_json(body, "run header")
        _validate_header(header)
        canonical = json.dumps(header, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        with self._lock:
            row = self._db.execute(
                "SELECT header_sha256 FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            if row is not None:
                if row[0] != digest:
                    raise CoreViewProblemError(
                        409, "conflict", f"run {run_id} was announced with a different header"
                    )
                return Stored(created=False)
            self._db.execute(
                "INSERT INTO runs (run_id, header_sha256, header) VALUES (?, ?, ?)",
                (run_id, digest, canonical),
            )
        return Stored(created=True)

    def run(self, run_id: str) -> dict[str, Any] | None:
        """The run's header, commit answer and batch/record counts (None when unknown)."""
        row = self._db.execute(
            "SELECT header, committed FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            return None
        batches, records = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(records), 0) FROM batches WHERE run_id = ?", (run_id,)
        ).fetchone()
        return {
            "run_id": run_id,
            "header": json.loads(row[0]),
            "committed": json.loads(row[1]) if row[1] else None,
            "batches": batches,
            "records": records,
        }

    # ------------------------------------------------------------------ batches
    def put_batch(self, run_id: str, part: int, seq: int, body: bytes, gzipped: bytes) -> Stored:
        """Store one batch body (JSON bytes; ``gzipped`` is the same, compressed).

        Same body again: a replay. Another body at the address: 409. Unknown run: 404.
        """
        digest = hashlib.sha256(body).hexdigest()
        with self._lock:
            self._require_run(run_id)
            row = self._db.execute(
                "SELECT body_sha256, body_gzip FROM batches"
                " WHERE run_id = ? AND part = ? AND seq = ?",
                (run_id, part, seq),
            ).fetchone()
        if row is not None:
            if row[0] == digest or _same_records(row[1], body):
                return Stored(created=False)
            raise CoreViewProblemError(
                409, "conflict", f"run {run_id} part {part} batch {seq} holds a different body"
            )
        records, figures = _validate_batch(body)
        with self._lock:
            if self._committed(run_id):
                raise CoreViewProblemError(
                    409, "run_committed", f"run {run_id} is already committed"
                )
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, part, seq, digest, records, json.dumps(figures.to_payload()), gzipped),
            ).rowcount
        if not inserted:  # a concurrent identical request won the race: judge it as a replay
            return self.put_batch(run_id, part, seq, body, gzipped)
        return Stored(created=True)

    # ------------------------------------------------------------------ commit
    def commit(self, run_id: str, body: bytes) -> dict[str, Any]:
        """Sum what is stored for the run, remember the answer and return it.

        Idempotent by address like every write: the same figures again answer the same; other
        figures for a committed run are a 409 (the first commit's figures are kept).
        """
        received = _parse_figures(
            _parse_json(body, "commit body"), "commit body", "invalid_figures"
        )
        with self._lock:
            self._require_run(run_id)
            (committed,) = self._db.execute(
                "SELECT committed FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            if committed is not None:
                earlier = json.loads(committed)
                if earlier["received"] != received.to_payload():
                    raise CoreViewProblemError(
                        409, "conflict", f"run {run_id} was committed with other figures"
                    )
                answer: dict[str, Any] = earlier["answer"]
                return answer
            accumulator = TotalsAccumulator()
            for (figures,) in self._db.execute(
                "SELECT figures FROM batches WHERE run_id = ?", (run_id,)
            ):
                accumulator.merge(RunFigures.from_payload(json.loads(figures)))
            answer = {"run_id": run_id, **accumulator.figures().to_payload()}
            document = {"answer": answer, "received": received.to_payload()}
            self._db.execute(
                "UPDATE runs SET committed = ? WHERE run_id = ?", (json.dumps(document), run_id)
            )
        return answer

    # ------------------------------------------------------------------ reading back
    def records(self, run_id: str) -> Iterator[dict[str, str]]:
        """Every record stored for the run, by part then seq (the read-back accessor)."""
        for batch in self.batches(run_id):
            yield from batch

    def batches(self, run_id: str) -> Iterator[list[dict[str, str]]]:
        """The stored batches' records, by part then seq (one batch in memory at a time)."""
        reader = sqlite3.connect(self.path) if self.path != ":memory:" else self._db
        try:
            rows = reader.execute(
                "SELECT body_gzip FROM batches WHERE run_id = ? ORDER BY part, seq", (run_id,)
            )
            for (gzipped,) in rows:
                yield json.loads(gzip.decompress(gzipped))["records"]
        finally:
            if reader is not self._db:
                reader.close()

    def _require_run(self, run_id: str) -> None:
        if self._db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
            raise CoreViewProblemError(404, "run_not_found", f"run {run_id} was not announced")

    def _committed(self, run_id: str) -> bool:
        row = self._db.execute("SELECT committed FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return bool(row and row[0])


def _parse_json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise CoreViewProblemError(400, "bad_json", f"{what} is not JSON: {error}") from None


def _validate_header(header: Any) -> None:
    if not isinstance(header, dict):
        raise CoreViewProblemError(422, "invalid_header", "run header must be an object")
    periods = header.get("periods")
    if not isinstance(periods, list) or not all(
        isinstance(p, str) and _PERIOD.fullmatch(p) for p in periods
    ):
        raise CoreViewProblemError(
            422, "invalid_header", "periods must be a list of YYYY-MM strings"
        )
    _parse_figures(header.get("expected"), "expected", "invalid_header")


def _parse_figures(document: Any, where: str, code: str) -> RunFigures:
    """A count and totals per currency (a header's ``expected``, a commit's body), else 422."""
    if not isinstance(document, dict):
        raise CoreViewProblemError(422, code, f"{where} must be an object")
    records = document.get("records")
    if isinstance(records, float) and records.is_integer():
        document["records"] = int(records)  # 76.0 is a JSON Schema integer too; stored as 76
    totals = document.get("totals")
    if not isinstance(totals, list):
        raise CoreViewProblemError(422, code, f"{where}: totals must be a list")
    for index, entry in enumerate(totals):
        for name in ("base_delta", "bonus_delta", "delta"):
            value = entry.get(name) if isinstance(entry, dict) else None
            if isinstance(value, str) and not _TOTAL.fullmatch(value):
                raise CoreViewProblemError(
                    422, code, f"{where}: totals[{index}].{name} is not a decimal string: {value!r}"
                )
    try:
        return RunFigures.from_payload(document, where=where)
    except InvalidDeltaRecordError as error:
        raise CoreViewProblemError(422, code, str(error)) from None


def _validate_batch(body: bytes) -> tuple[int, RunFigures]:
    """Check every record (fields, money format) and total it; name the record on error."""
    document = _parse_json(body, "batch body")
    records = document.get("records") if isinstance(document, dict) else None
    if not isinstance(records, list) or not records:
        raise CoreViewProblemError(
            422, "invalid_batch", "body must be {'records': [...]} (non-empty)"
        )
    if len(records) > MAX_BATCH_RECORDS:
        raise CoreViewProblemError(
            413, "batch_too_large", f"{len(records)} records; at most {MAX_BATCH_RECORDS}"
        )
    if not _columns_look_valid(records):
        for index, record in enumerate(records):  # slow path: name the first bad field
            _validate_record(record, index)
    return len(records), figures_of_payloads(records)


def _columns_look_valid(records: list[Any]) -> bool:
    """Check the whole batch column by column in C-speed calls (joins and one regex each).

    ``str.join`` raises on a non-string, ``all`` is false on an empty one, and one anchored
    regex over the newline-joined column checks every amount's format.
    """
    if not all(type(r) is dict and r.keys() == _FIELD_SET for r in records):
        return False
    try:
        for name in _TEXT_FIELDS:
            column = [r[name] for r in records]
            if not all(column) or not "".join(column):
                return False
        for name, pattern in _COLUMN_PATTERNS:
            joined = "\n".join([r[name] for r in records])
            # an embedded newline would pass the regex as two values: count them too
            if joined.count("\n") != len(records) - 1 or not pattern.fullmatch(joined):
                return False
    except TypeError:  # a value that is not a string
        return False
    return True


def _validate_record(record: Any, index: int) -> None:
    if not isinstance(record, dict) or record.keys() != _FIELD_SET:
        raise CoreViewProblemError(
            422, "invalid_record", f"records[{index}] must have exactly the fields {RECORD_FIELDS}"
        )
    for name in _TEXT_FIELDS:
        if not isinstance(record[name], str) or not record[name]:
            raise CoreViewProblemError(
                422, "invalid_record", f"records[{index}].{name} must be a non-empty string"
            )
    if not _PERIOD.fullmatch(record["period"]):
        raise CoreViewProblemError(
            422, "invalid_record", f"records[{index}].period is not YYYY-MM: {record['period']!r}"
        )
    for name in _MONEY_FIELDS:
        value = record[name]
        if not isinstance(value, str) or not _MONEY.fullmatch(value):
            raise CoreViewProblemError(
                422, "invalid_record", f"records[{index}].{name} is not a decimal string: {value!r}"
            )


def _same_records(stored_gzip: bytes, body: bytes) -> bool:
    """Whether two bodies hold the same records (bodies may differ in spacing only)."""
    try:
        return bool(json.loads(gzip.decompress(stored_gzip)) == json.loads(body))
    except ValueError:
        return False
