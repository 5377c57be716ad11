"""Uploads and snapshots through the real database, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from settlement.adapters.db import Database
from settlement.adapters.db.tables import metadata
from settlement.adapters.storage import DataStore
from settlement.domain.reference import ReferenceUploadError
from settlement.domain.reference.service import (
    export_snapshot,
    upload_reference,
)
from settlement.domain.snapshot import LEDGER_SCHEMA, MATRIX_SCHEMA, TARGETS_SCHEMA
from tests.unit.domain.reference.catalogue import CATALOGUE, GOOD_MATRIX, GOOD_TARGETS, matrix_csv


def table_counts(database: Database) -> dict[str, int]:
    with database.engine.connect() as connection:
        return {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in metadata.sorted_tables
        }


def test_bad_files_leave_the_database_unchanged(database: Database) -> None:
    """GIVEN a database holding one good version of each kind
    WHEN every file of the bad-file catalogue is uploaded THEN each is rejected with its
    error and not a single row is added anywhere."""
    upload_reference(
        "matrix", "m.csv", GOOD_MATRIX, uploaded_by="fin", repository=database.reference
    )
    upload_reference(
        "targets", "t.csv", GOOD_TARGETS, uploaded_by="fin", repository=database.reference
    )
    before = table_counts(database)
    for bad in CATALOGUE:
        with pytest.raises(ReferenceUploadError) as rejected:
            upload_reference(
                bad.kind,
                bad.file_name,
                bad.data,
                uploaded_by="fin",
                repository=database.reference,
            )
        assert any(e.row == bad.row and e.column == bad.column for e in rejected.value.errors)
    assert table_counts(database) == before


def test_repeated_upload_is_one_version(database: Database) -> None:
    """GIVEN an uploaded targets file WHEN the same bytes come again THEN the same version."""
    first = upload_reference(
        "targets", "t.csv", GOOD_TARGETS, uploaded_by="a", repository=database.reference
    )
    again = upload_reference(
        "targets", "t.csv", GOOD_TARGETS, uploaded_by="b", repository=database.reference
    )
    assert first.created
    assert not again.created
    assert again.version_id == first.version_id
    assert len(database.reference.list_versions("targets")) == 1


def test_export_snapshot_through_the_database(database: Database, tmp_path: Path) -> None:
    """GIVEN DE+FR in a first matrix, DE alone in a second, and targets
    WHEN the snapshot is exported twice THEN DE comes from the second version, FR from the
    first, the files have the contract schemas and the second export gives the same files."""
    both = matrix_csv(
        "DE,*,*,BASE,0,0.03,100,EUR,2026-01-01,", "FR,*,*,BASE,0,0.02,0,EUR,2026-01-01,"
    )
    first = upload_reference(
        "matrix", "m1.csv", both, uploaded_by="fin", repository=database.reference
    )
    de_only = matrix_csv("DE,*,*,BASE,0,0.035,100,EUR,2026-01-01,")
    second = upload_reference(
        "matrix", "m2.csv", de_only, uploaded_by="fin", repository=database.reference
    )
    targets = upload_reference(
        "targets", "t.csv", GOOD_TARGETS, uploaded_by="fin", repository=database.reference
    )
    store = DataStore(str(tmp_path / "store"))

    result = export_snapshot("run-7", ["2026-10"], store=store, database=database)
    again = export_snapshot("run-7", ["2026-10"], store=store, database=database)

    matrix = pq.read_table(store.path("runs/run-7/reference/matrix.parquet"))
    assert matrix.schema.equals(MATRIX_SCHEMA)
    assert sorted(
        zip(
            matrix.column("market").to_pylist(),
            matrix.column("matrix_version").to_pylist(),
            strict=True,
        )
    ) == [
        ("DE", second.version_id),
        ("FR", first.version_id),
    ]
    assert pq.read_schema(store.path("runs/run-7/reference/targets.parquet")).equals(TARGETS_SCHEMA)
    assert pq.read_schema(store.path("runs/run-7/reference/ledger.parquet")).equals(LEDGER_SCHEMA)
    assert result == again
    assert result["target_versions"] == [targets.version_id]
    assert (result["matrix_rows"], result["targets_rows"], result["ledger_rows"]) == (2, 2, 0)


@pytest.mark.parametrize(
    ("file_name", "uploaded_by", "reason"),
    [
        ("m" * 497 + ".csv", "fin", "the file name has 501 characters; at most 500"),
        ("m.csv", "u" * 201, "the uploader's name has 201 characters; at most 200"),
    ],
    ids=["file name", "uploader"],
)
def test_audit_fields_too_long_for_their_columns_are_refused_alike(
    database: Database, file_name: str, uploaded_by: str, reason: str
) -> None:
    # GIVEN a good matrix under a name (or from an uploader) longer than its audit column
    before = table_counts(database)
    # WHEN it is uploaded
    with pytest.raises(ReferenceUploadError) as raised:
        upload_reference(
            "matrix", file_name, GOOD_MATRIX, uploaded_by=uploaded_by, repository=database.reference
        )
    # THEN both backends refuse it with the same clear reason (PostgreSQL would otherwise
    # fail on the column's size), and nothing was written
    assert [error.reason for error in raised.value.errors] == [reason]
    assert table_counts(database) == before
