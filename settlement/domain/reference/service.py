"""Use-cases of reference data: upload a file as a new version, export a run's snapshot.

Both work against ports (Protocols below), so tests use in-memory fakes and the runtimes pass
``Database`` and ``DataStore`` from ``settlement.bootstrap``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from settlement.domain.reference.errors import ReferenceUploadError, UploadError
from settlement.domain.reference.models import (
    MatrixRow,
    NewVersion,
    ReferenceKind,
    TargetRow,
    VersionInfo,
)
from settlement.domain.reference.parsing import parse_matrix, parse_targets
from settlement.domain.snapshot import MATRIX_SCHEMA, TARGETS_SCHEMA


# --------------------------------------------------------------------------- ports
class ReferenceRepository(Protocol):
    """Append-only storage of reference versions (``Database.reference`` implements it)."""

    def find_version(self, kind: ReferenceKind, sha256: str) -> VersionInfo | None: ...

    def add_matrix_version(
        self, header: NewVersion, rows: Sequence[MatrixRow]
    ) -> tuple[VersionInfo, bool]:
        """Store all rows in one transaction; ``(existing, False)`` when the sha256 is known."""

    def add_target_version(
        self, header: NewVersion, rows: Sequence[TargetRow]
    ) -> tuple[VersionInfo, bool]:
        """Store all rows in one transaction; ``(existing, False)`` when the sha256 is known."""

    def list_versions(self, kind: ReferenceKind) -> list[VersionInfo]: ...

    def active_matrix(self) -> list[tuple[str, MatrixRow]]:
        """(version id, row) of the active version of every market, in one query."""

    def latest_targets(self, periods: Sequence[str]) -> list[tuple[str, TargetRow]]:
        """(version id, row) of the latest target per (dealer_id, period), in one query."""


class LedgerExporter(Protocol):
    def export_snapshot(self, path: str, *, filesystem: Any = None) -> int: ...


class SnapshotDatabase(Protocol):
    @property
    def reference(self) -> ReferenceRepository: ...

    @property
    def ledger(self) -> LedgerExporter: ...


class SnapshotStore(Protocol):
    """The part of ``DataStore`` the export needs."""

    @property
    def filesystem(self) -> Any: ...

    @property
    def is_local(self) -> bool: ...

    def path(self, key: str) -> str: ...

    def uri(self, key: str) -> str: ...

    def delete(self, key: str) -> None: ...


# --------------------------------------------------------------------------- upload
@dataclass(frozen=True)
class UploadResult:
    """The outcome of an upload: the version it is (new, or the same bytes seen before)."""

    kind: ReferenceKind
    version_id: str
    row_count: int
    created: bool
    sha256: str
    file_name: str
    markets: tuple[str, ...] = ()
    superseded_by: str | None = None
    """For the same bytes seen before: a later version that replaced them, so they are NOT the
    active ones (identical files are one version; see :func:`upload_reference`)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "superseded_by": self.superseded_by,
            "kind": self.kind,
            "version_id": self.version_id,
            "row_count": self.row_count,
            "created": self.created,
            "sha256": self.sha256,
            "file_name": self.file_name,
            "markets": list(self.markets),
        }


def upload_reference(
    kind: ReferenceKind,
    file_name: str,
    data: bytes,
    *,
    uploaded_by: str,
    repository: ReferenceRepository,
    now: datetime | None = None,
) -> UploadResult:
    """Validate a reference file and store it as a new version, all or nothing.

    Parameters
    ----------
    kind
        ``"matrix"`` or ``"targets"``.
    file_name
        The file's name (named in every error; its suffix selects CSV or XLSX).
    data
        The file's bytes.
    uploaded_by
        Who uploaded it (kept with the version for audit).
    repository
        Where versions are stored.
    now
        The upload time (default: the current UTC time).

    Returns
    -------
    UploadResult
        The version; ``created`` is ``False`` when the same bytes were uploaded before.

    Raises
    ------
    ReferenceUploadError
        With every error found; nothing has been written.
    """
    _check_audit_fields(file_name, uploaded_by)
    sha256 = hashlib.sha256(data).hexdigest()
    existing = repository.find_version(kind, sha256)
    if existing is not None:
        # One version per file: S3 delivers an event at least once, maybe late, and a
        # re-delivery must never turn an older file back into the active one.
        later = _later_version(repository.list_versions(kind), existing)
        return _result(existing, created=False, superseded_by=later)
    header = NewVersion(kind, file_name, sha256, uploaded_by, now or datetime.now(UTC))
    if kind == "matrix":
        stored, created = repository.add_matrix_version(header, parse_matrix(file_name, data))
    elif kind == "targets":
        stored, created = repository.add_target_version(header, parse_targets(file_name, data))
    else:
        raise ValueError(f"unknown reference kind {kind!r}: use matrix or targets")
    return _result(stored, created=created)


def _later_version(versions: list[VersionInfo], version: VersionInfo) -> str | None:
    """The newest version after ``version`` that replaced it (for the matrix: in one of its
    markets), or None when ``version`` is still the active one."""
    newer = [
        later
        for later in versions
        if int(later.version_id) > int(version.version_id)
        and (later.kind == "targets" or set(later.markets) & set(version.markets))
    ]
    return newer[-1].version_id if newer else None


def _result(
    version: VersionInfo, *, created: bool, superseded_by: str | None = None
) -> UploadResult:
    return UploadResult(
        kind=version.kind,
        version_id=version.version_id,
        row_count=version.row_count,
        created=created,
        sha256=version.sha256,
        file_name=version.file_name,
        markets=version.markets,
        superseded_by=superseded_by,
    )


# --------------------------------------------------------------------------- snapshot
SNAPSHOT_FILES = ("matrix", "targets", "ledger")


def snapshot_key(run_id: str, name: str) -> str:
    """``runs/<run_id>/reference/<name>.parquet``."""
    return f"runs/{run_id}/reference/{name}.parquet"


def export_snapshot(
    run_id: str, periods: Sequence[str], *, store: SnapshotStore, database: SnapshotDatabase
) -> dict[str, Any]:
    """Write the run's reference snapshot: matrix, targets and published ledger (Parquet).

    Parameters
    ----------
    run_id
        The run; files go under ``runs/<run_id>/reference/``.
    periods
        The run's periods (``YYYY-MM``): only their targets are exported.
    store
        The data store (local directory or S3).
    database
        Reads the active matrix, the latest targets and the ledger, one query each.

    Returns
    -------
    dict
        URIs, row counts and version ids, small enough for a Step Functions payload.
        Idempotent: exporting again overwrites the files with the same content.
    """
    matrix = database.reference.active_matrix()
    targets = database.reference.latest_targets(sorted(set(periods)))
    ledger_key = snapshot_key(run_id, "ledger")
    try:
        _write(store, snapshot_key(run_id, "matrix"), _matrix_table(matrix))
        _write(store, snapshot_key(run_id, "targets"), _targets_table(targets))
        _make_parent(store, ledger_key)
        ledger_rows = database.ledger.export_snapshot(
            store.path(ledger_key), filesystem=store.filesystem
        )
    except BaseException:
        # All or nothing: a failed export leaves no file a later step could take as a snapshot.
        for name in SNAPSHOT_FILES:
            store.delete(snapshot_key(run_id, name))
        raise
    matrix_versions = {row.market: version for version, row in matrix}
    return {
        "run_id": run_id,
        "periods": sorted(set(periods)),
        "matrix_uri": store.uri(snapshot_key(run_id, "matrix")),
        "matrix_rows": len(matrix),
        "matrix_versions": dict(sorted(matrix_versions.items())),
        "targets_uri": store.uri(snapshot_key(run_id, "targets")),
        "targets_rows": len(targets),
        "target_versions": sorted({version for version, _ in targets}, key=_version_order),
        "ledger_uri": store.uri(ledger_key),
        "ledger_rows": ledger_rows,
    }


def _matrix_table(rows: list[tuple[str, MatrixRow]]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in MATRIX_SCHEMA.names}
    for version, row in rows:
        columns["matrix_version"].append(version)
        for name in MATRIX_SCHEMA.names[1:]:
            columns[name].append(getattr(row, name))
    return pa.Table.from_pydict(columns, schema=MATRIX_SCHEMA)


def _targets_table(rows: list[tuple[str, TargetRow]]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in TARGETS_SCHEMA.names}
    for version, row in rows:
        columns["target_version"].append(version)
        for name in TARGETS_SCHEMA.names[1:]:
            columns[name].append(getattr(row, name))
    return pa.Table.from_pydict(columns, schema=TARGETS_SCHEMA)


def _write(store: SnapshotStore, key: str, table: pa.Table) -> None:
    _make_parent(store, key)
    pq.write_table(table, store.path(key), filesystem=store.filesystem)


def _make_parent(store: SnapshotStore, key: str) -> None:
    # S3 has no directories; locally the parent must exist before pyarrow writes.
    if store.is_local:
        store.filesystem.create_dir(store.path(key.rsplit("/", 1)[0]), recursive=True)


# The audit columns' sizes (settlement/adapters/db/tables.py): checked here so that every
# backend refuses the same upload with the same clear error before anything is written.
FILE_NAME_MAX_CHARS = 500
UPLOADED_BY_MAX_CHARS = 200


def _check_audit_fields(file_name: str, uploaded_by: str) -> None:
    reasons = []
    if len(file_name) > FILE_NAME_MAX_CHARS:
        reasons.append(
            f"the file name has {len(file_name)} characters; at most {FILE_NAME_MAX_CHARS}"
        )
    if len(uploaded_by) > UPLOADED_BY_MAX_CHARS:
        reasons.append(
            f"the uploader's name has {len(uploaded_by)} characters; "
            f"at most {UPLOADED_BY_MAX_CHARS}"
        )
    if reasons:
        errors = [UploadError(file_name, None, None, reason) for reason in reasons]
        raise ReferenceUploadError(file_name, errors)


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (0, version)


# --------------------------------------------------------------------------- the incoming/ flow
INCOMING_PREFIX = "incoming/reference/"
ERRORS_SUFFIX = ".errors.json"


class IncomingStore(Protocol):
    """The part of ``DataStore`` the incoming-file flow needs."""

    def read_bytes(self, key: str) -> bytes: ...

    def write_json(self, key: str, document: Any) -> None: ...

    def delete(self, key: str) -> None: ...


def incoming_key(kind: ReferenceKind, file_name: str) -> str:
    """Where an uploaded file lands: ``incoming/reference/<kind>/<file name>``."""
    return f"{INCOMING_PREFIX}{kind}/{file_name.rsplit('/', 1)[-1]}"


def kind_of_incoming(key: str) -> ReferenceKind | None:
    """The reference kind of an ``incoming/reference/<kind>/<file>`` key, else ``None``.

    Error reports (``*.errors.json``) and anything outside those two folders are not uploads.
    """
    if key.endswith(ERRORS_SUFFIX):
        return None
    for kind in ("matrix", "targets"):
        prefix = f"{INCOMING_PREFIX}{kind}/"
        if key.startswith(prefix) and len(key) > len(prefix) and "/" not in key[len(prefix) :]:
            return kind
    return None


def load_incoming(
    key: str, *, store: IncomingStore, repository: ReferenceRepository, uploaded_by: str
) -> UploadResult:
    """Load a file stored under ``incoming/reference/<kind>/`` as a reference version.

    On rejection writes ``<key>.errors.json`` next to the file and re-raises; on success
    removes a report left by an earlier, rejected file of the same name.

    Raises
    ------
    ValueError
        When ``key`` is not a reference upload.
    ReferenceUploadError
        With every error found; nothing has been written to the database.
    """
    kind = kind_of_incoming(key)
    if kind is None:
        raise ValueError(
            f"{key} is not under {INCOMING_PREFIX}matrix/ or {INCOMING_PREFIX}targets/"
        )
    file_name = key.rsplit("/", 1)[-1]
    try:
        result = upload_reference(
            kind, file_name, store.read_bytes(key), uploaded_by=uploaded_by, repository=repository
        )
    except ReferenceUploadError as error:
        store.write_json(key + ERRORS_SUFFIX, error.as_dict())
        raise
    store.delete(key + ERRORS_SUFFIX)
    return result
