"""The upload and snapshot use-cases against in-memory fakes of their ports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from settlement.adapters.storage import DataStore
from settlement.domain.reference import MatrixRow, ReferenceUploadError, TargetRow
from settlement.domain.reference.models import NewVersion, ReferenceKind, VersionInfo
from settlement.domain.reference.service import (
    UploadResult,
    export_snapshot,
    incoming_key,
    kind_of_incoming,
    load_incoming,
    upload_reference,
)
from settlement.domain.snapshot import MATRIX_SCHEMA, TARGETS_SCHEMA
from tests.unit.domain.reference.catalogue import CATALOGUE, GOOD_MATRIX, GOOD_TARGETS, BadFile

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


class InMemoryReferenceRepository:
    """The ReferenceRepository port in memory: versions with their rows, append-only."""

    def __init__(self) -> None:
        self.versions: list[VersionInfo] = []
        self.matrix: dict[str, list[MatrixRow]] = {}
        self.targets: dict[str, list[TargetRow]] = {}

    def find_version(self, kind: ReferenceKind, sha256: str) -> VersionInfo | None:
        return next((v for v in self.versions if (v.kind, v.sha256) == (kind, sha256)), None)

    def _add(self, header: NewVersion, count: int, markets: tuple[str, ...]) -> VersionInfo:
        version = VersionInfo(
            header.kind, str(len(self.versions) + 1), header.file_name, header.sha256,
            header.uploaded_by, header.uploaded_at, count, markets,
        )  # fmt: skip
        self.versions.append(version)
        return version

    def add_matrix_version(
        self, header: NewVersion, rows: Sequence[MatrixRow]
    ) -> tuple[VersionInfo, bool]:
        version = self._add(header, len(rows), tuple(sorted({r.market for r in rows})))
        self.matrix[version.version_id] = list(rows)
        return version, True

    def add_target_version(
        self, header: NewVersion, rows: Sequence[TargetRow]
    ) -> tuple[VersionInfo, bool]:
        version = self._add(header, len(rows), ())
        self.targets[version.version_id] = list(rows)
        return version, True

    def list_versions(self, kind: ReferenceKind) -> list[VersionInfo]:
        return [v for v in self.versions if v.kind == kind]

    def active_matrix(self) -> list[tuple[str, MatrixRow]]:
        newest: dict[str, str] = {}
        for version_id, rows in self.matrix.items():
            newest.update({row.market: version_id for row in rows})
        return [(v, r) for v, rows in self.matrix.items() for r in rows if newest[r.market] == v]

    def latest_targets(self, periods: Sequence[str]) -> list[tuple[str, TargetRow]]:
        latest: dict[tuple[str, str], tuple[str, TargetRow]] = {}
        for version_id, rows in self.targets.items():
            latest.update({(r.dealer_id, r.period): (version_id, r) for r in rows})
        return [
            latest[key] for key in sorted(latest, key=lambda k: (k[1], k[0])) if key[1] in periods
        ]


class EmptyLedger:
    """A ledger with nothing published: writes the schema only, through the given filesystem."""

    def export_snapshot(self, path: str, *, filesystem: object = None) -> int:
        from settlement.domain.snapshot import LEDGER_SCHEMA

        pq.write_table(LEDGER_SCHEMA.empty_table(), path, filesystem=filesystem)
        return 0


class UnreachableLedger:
    """A ledger whose database connection drops in the middle of the export."""

    def export_snapshot(self, path: str, *, filesystem: object = None) -> int:
        raise ConnectionError("connection to the database lost")


class FakeDatabase:
    def __init__(
        self,
        reference: InMemoryReferenceRepository,
        ledger: EmptyLedger | UnreachableLedger | None = None,
    ) -> None:
        self.reference = reference
        self.ledger = ledger or EmptyLedger()


def test_upload_creates_a_version_once_per_file() -> None:
    """GIVEN a matrix file WHEN uploaded twice THEN one version; the second call says so."""
    repository = InMemoryReferenceRepository()
    first = upload_reference(
        "matrix", "m.csv", GOOD_MATRIX, uploaded_by="fin", repository=repository, now=NOW
    )
    second = upload_reference(
        "matrix", "m2.csv", GOOD_MATRIX, uploaded_by="x", repository=repository
    )
    assert (first.created, first.row_count, first.markets) == (True, 5, ("DE",))
    assert second == replace(first, created=False)
    assert len(repository.versions) == 1
    assert repository.versions[0].uploaded_at == NOW


def test_the_same_bytes_as_a_replaced_version_say_they_stay_replaced() -> None:
    """GIVEN targets A, then B for the same dealers, then a matrix for FR only
    WHEN A is uploaded again THEN no version is made and the answer names B as active;
    the DE matrix, replaced in no market, again is just 'already loaded'."""
    repository = InMemoryReferenceRepository()

    def upload(kind: ReferenceKind, data: bytes) -> UploadResult:
        return upload_reference(kind, "f.csv", data, uploaded_by="fin", repository=repository)

    first = upload("targets", GOOD_TARGETS)
    second = upload("targets", GOOD_TARGETS.replace(b"D1,2026-10,4", b"D1,2026-10,5"))
    matrix = upload("matrix", GOOD_MATRIX)
    upload("matrix", GOOD_MATRIX.replace(b"DE,", b"FR,"))
    again = upload("targets", GOOD_TARGETS)
    assert (again.created, again.version_id, again.superseded_by) == (
        False,
        first.version_id,
        second.version_id,
    )
    assert upload("matrix", GOOD_MATRIX) == replace(matrix, created=False)
    assert len(repository.versions) == 4


@pytest.mark.parametrize("bad", CATALOGUE, ids=[bad.name for bad in CATALOGUE])
def test_a_rejected_upload_writes_nothing(bad: BadFile) -> None:
    """GIVEN a bad file WHEN uploaded THEN the error carries the list and nothing is stored."""
    repository = InMemoryReferenceRepository()
    with pytest.raises(ReferenceUploadError) as rejected:
        upload_reference(
            bad.kind,
            bad.file_name,
            bad.data,
            uploaded_by="fin",
            repository=repository,
        )
    assert rejected.value.errors
    assert repository.versions == []


def test_incoming_keys_are_recognised() -> None:
    """GIVEN store keys WHEN classified THEN only files directly in the two folders count."""
    assert incoming_key("targets", "some/dir/t.xlsx") == "incoming/reference/targets/t.xlsx"
    assert kind_of_incoming("incoming/reference/matrix/m.csv") == "matrix"
    assert kind_of_incoming("incoming/reference/targets/t.xlsx") == "targets"
    assert kind_of_incoming("incoming/reference/matrix/m.csv.errors.json") is None
    assert kind_of_incoming("incoming/reference/matrix/") is None
    assert kind_of_incoming("incoming/reference/other/m.csv") is None
    assert kind_of_incoming("incoming/transactions/b1.csv") is None


def test_load_incoming_reports_errors_next_to_the_file_then_clears_them(tmp_path: Path) -> None:
    """GIVEN a rejected targets file WHEN loaded THEN <key>.errors.json lists every error;
    WHEN a corrected file replaces it THEN it loads and the stale report is removed."""
    store = DataStore(str(tmp_path))
    repository = InMemoryReferenceRepository()
    key = incoming_key("targets", "t.csv")
    store.write_bytes(
        key, b"market,dealer_id,period,target_units\nDE,D1,2026-10,x\nDE,D2,10/2026,1\n"
    )
    with pytest.raises(ReferenceUploadError):
        load_incoming(key, store=store, repository=repository, uploaded_by="s3")
    report = store.read_json(key + ".errors.json")
    assert report["file"] == "t.csv"
    assert [(e["row"], e["column"]) for e in report["errors"]] == [
        (2, "target_units"),
        (3, "period"),
    ]
    store.write_bytes(key, GOOD_TARGETS)
    result = load_incoming(key, store=store, repository=repository, uploaded_by="s3")
    assert (result.kind, result.row_count) == ("targets", 2)
    assert not store.exists(key + ".errors.json")


def test_export_snapshot_writes_the_contract_schemas(tmp_path: Path) -> None:
    """GIVEN a matrix for DE, a later DE version and targets for two periods
    WHEN the snapshot of 2026-10 is exported THEN the active rows and that period's targets
    are written with exactly the schemas of docs/architecture.md."""
    repository = InMemoryReferenceRepository()
    upload_reference("matrix", "m1.csv", GOOD_MATRIX, uploaded_by="fin", repository=repository)
    newer = GOOD_MATRIX.replace(b"0.04", b"0.045")
    upload_reference("matrix", "m2.csv", newer, uploaded_by="fin", repository=repository)
    targets = GOOD_TARGETS + b"DE,D1,2026-11,9\n"
    upload_reference("targets", "t.csv", targets, uploaded_by="fin", repository=repository)
    store = DataStore(str(tmp_path))

    result = export_snapshot("run-1", ["2026-10"], store=store, database=FakeDatabase(repository))

    matrix = pq.read_table(store.path("runs/run-1/reference/matrix.parquet"))
    target_table = pq.read_table(store.path("runs/run-1/reference/targets.parquet"))
    assert matrix.schema.equals(MATRIX_SCHEMA)
    assert target_table.schema.equals(TARGETS_SCHEMA)
    assert set(matrix.column("matrix_version").to_pylist()) == {"2"}
    assert str(matrix.column("rate")[0].as_py()) == "0.045000"
    assert target_table.column("period").to_pylist() == ["2026-10", "2026-10"]
    assert result["matrix_versions"] == {"DE": "2"}
    assert (result["matrix_rows"], result["targets_rows"], result["ledger_rows"]) == (5, 2, 0)
    assert result["target_versions"] == ["3"]
    assert result["ledger_uri"] == store.uri("runs/run-1/reference/ledger.parquet")


def test_a_failed_export_leaves_no_snapshot_file(tmp_path: Path) -> None:
    # GIVEN reference data, and a ledger read that fails after matrix and targets are written
    repository = InMemoryReferenceRepository()
    upload_reference("matrix", "m.csv", GOOD_MATRIX, uploaded_by="fin", repository=repository)
    upload_reference("targets", "t.csv", GOOD_TARGETS, uploaded_by="fin", repository=repository)
    store = DataStore(str(tmp_path))
    database = FakeDatabase(repository, UnreachableLedger())
    # WHEN the snapshot is exported
    with pytest.raises(ConnectionError, match="connection to the database lost"):
        export_snapshot("run-1", ["2026-10"], store=store, database=database)
    # THEN no part of the snapshot is left for a later step to read
    assert list(store.list("runs/run-1/reference", recursive=True)) == []
