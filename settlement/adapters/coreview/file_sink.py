"""The ``file://`` Core View sink: the same payloads as JSON files, the same idempotency.

Layout under the sink directory::

    <run_id>/run.json                              the announced header
    <run_id>/parts/<part>/batch-<seq>.json         each batch body, byte-identical to the API's
    <run_id>/commit.json                           the figures answered at commit

A batch written again with the same body is a no-op; a different body raises
``CoreViewConflictError`` (the API's 409). Commit answers by summing the batches it stored,
column by column as the local server does.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from settlement.domain.publishing import (
    CommitReceipt,
    CoreViewConflictError,
    CoreViewRejectedError,
    DeltaRecord,
    RunFigures,
    RunHeader,
    TotalsAccumulator,
    encode_batch,
    figures_of_payloads,
)

_SAFE_RUN_ID = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


class FileSinkClient:
    """Core View as a directory of JSON files (local runs without a server)."""

    max_in_flight = 1

    def __init__(self, directory: str | Path) -> None:
        self.root = Path(directory).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileSinkClient({str(self.root)!r})"

    def put_run(self, run_id: str, header: RunHeader) -> None:
        """Write ``run.json`` once; the same header again is a no-op."""
        body = _json_bytes(header.to_payload())
        self._put_once(self._run_dir(run_id) / "run.json", body, f"run {run_id}")

    def put_batch(self, run_id: str, part: int, seq: int, records: Sequence[DeltaRecord]) -> None:
        """Write one batch file; the same body again is a no-op, another is a conflict."""
        run_dir = self._announced(run_id)
        if (run_dir / "commit.json").exists() and not self._batch_path(run_dir, part, seq).exists():
            raise CoreViewConflictError(409, "run_committed", f"run {run_id} is already committed")
        if len(records) > 5000:
            raise CoreViewRejectedError(413, "batch_too_large", f"{len(records)} records > 5000")
        address = f"run {run_id} part {part} batch {seq}"
        self._put_once(self._batch_path(run_dir, part, seq), encode_batch(records), address)

    def commit(self, run_id: str, summary: RunFigures) -> CommitReceipt:
        """Sum what was stored, remember it in ``commit.json`` and answer it.

        The same figures again answer what was stored; other figures for a committed run are
        a conflict (409), as on the API.
        """
        run_dir = self._announced(run_id)
        committed = run_dir / "commit.json"
        if committed.exists():
            earlier = json.loads(committed.read_bytes())
            if earlier["received"] != summary.to_payload():
                raise CoreViewConflictError(
                    409, "conflict", f"run {run_id} was committed with other figures"
                )
            stored = RunFigures.from_payload(earlier["stored"], where=str(committed))
            return CommitReceipt(run_id=run_id, figures=stored)
        accumulator = TotalsAccumulator()
        for _, payloads in self._stored_batches(run_id):
            accumulator.merge(figures_of_payloads(payloads))
        figures = accumulator.figures()
        document = {"received": summary.to_payload(), "stored": figures.to_payload()}
        _atomic_write(run_dir / "commit.json", _json_bytes(document))
        return CommitReceipt(run_id=run_id, figures=figures)

    def committed_figures(self, run_id: str) -> RunFigures | None:
        """The figures ``commit.json`` stored for the run (None before a commit)."""
        path = self._run_dir(run_id) / "commit.json"
        if not path.exists():
            return None
        return RunFigures.from_payload(json.loads(path.read_bytes())["stored"], where=str(path))

    def records(self, run_id: str) -> Iterator[DeltaRecord]:
        """Every stored record of ``run_id`` (by part, then seq)."""
        for batch_file, payloads in self._stored_batches(run_id):
            for index, payload in enumerate(payloads):
                yield DeltaRecord.from_payload(payload, where=f"{batch_file} record {index}")

    def _stored_batches(self, run_id: str) -> Iterator[tuple[Path, list[dict[str, str]]]]:
        """Each stored batch file with its records as JSON objects (by part, then seq)."""
        parts_dir = self._run_dir(run_id) / "parts"
        if not parts_dir.exists():
            return
        for part_dir in sorted(parts_dir.iterdir(), key=lambda p: int(p.name)):
            for batch_file in sorted(part_dir.glob("batch-*.json"), key=_seq_of):
                yield batch_file, json.loads(batch_file.read_bytes())["records"]

    # ------------------------------------------------------------------ helpers
    def _run_dir(self, run_id: str) -> Path:
        if not run_id or not set(run_id) <= _SAFE_RUN_ID or run_id in {".", ".."}:
            raise CoreViewRejectedError(400, "bad_run_id", f"run id {run_id!r} is not a safe name")
        return self.root / run_id

    def _announced(self, run_id: str) -> Path:
        run_dir = self._run_dir(run_id)
        if not (run_dir / "run.json").exists():
            raise CoreViewRejectedError(404, "run_not_found", f"run {run_id} was not announced")
        return run_dir

    @staticmethod
    def _batch_path(run_dir: Path, part: int, seq: int) -> Path:
        if part < 0 or seq < 0:
            raise CoreViewRejectedError(400, "bad_address", "part and seq must be >= 0")
        return run_dir / "parts" / str(part) / f"batch-{seq}.json"

    def _put_once(self, path: Path, body: bytes, address: str) -> None:
        with self._lock:
            if path.exists():
                if path.read_bytes() != body:
                    raise CoreViewConflictError(
                        409, "conflict", f"{address} already holds a different body"
                    )
                return
            _atomic_write(path, body)


def _seq_of(path: Path) -> int:
    return int(path.stem.removeprefix("batch-"))


def _json_bytes(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _atomic_write(path: Path, body: bytes) -> None:
    """Readers see the whole file or none (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    temp.write_bytes(body)
    temp.replace(path)
