"""λ export-snapshot writing the run's reference snapshot to (moto) S3."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from lambdas import export_snapshot
from settlement.bootstrap import build_adapters
from settlement.domain.ports import LedgerEntry
from settlement.domain.reference.service import upload_reference
from tests.fixtures.events.s3 import moto_s3_endpoint, use_s3_workspace
from tests.unit.domain.reference.catalogue import GOOD_MATRIX, GOOD_TARGETS


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[dict[str, str]]:
    with moto_s3_endpoint() as environment:
        yield environment


@pytest.fixture
def bucket(s3_endpoint: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"settlement-{uuid.uuid4().hex[:12]}"
    use_s3_workspace(monkeypatch, s3_endpoint, tmp_path, name)
    return name


def read_parquet(bucket: str, key: str) -> list[dict[str, object]]:
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    rows: list[dict[str, object]] = pq.read_table(io.BytesIO(body)).to_pylist()
    return rows


def test_the_three_snapshot_files_are_written(bucket: str) -> None:
    """GIVEN a matrix, targets and one published transaction
    WHEN the state machine's event (with extra keys) reaches the Lambda
    THEN matrix, targets and ledger Parquet files are in S3 and the answer is small."""
    adapters = build_adapters()
    reference = adapters.database.reference
    upload_reference("matrix", "m.csv", GOOD_MATRIX, uploaded_by="fin", repository=reference)
    upload_reference("targets", "t.csv", GOOD_TARGETS, uploaded_by="fin", repository=reference)
    published = LedgerEntry(
        "S1",
        "2026-09",
        "SALE",
        None,
        "D1",
        "DE",
        "EUR",
        Decimal("2000.00"),
        Decimal("500.00"),
        True,
    )
    adapters.database.ledger.apply_deltas("run-0", [published])
    event = {"run_id": "run-1", "periods": ["2026-10"], "dry_run": False, "batches_uri": "s3://x"}

    result = export_snapshot.handler(event, None)

    prefix = "runs/run-1/reference/"
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    assert sorted(item["Key"] for item in listed) == [
        f"{prefix}ledger.parquet",
        f"{prefix}matrix.parquet",
        f"{prefix}targets.parquet",
    ]
    assert result["matrix_uri"] == f"s3://{bucket}/{prefix}matrix.parquet"
    assert (result["matrix_rows"], result["targets_rows"], result["ledger_rows"]) == (5, 2, 1)
    assert len(read_parquet(bucket, f"{prefix}matrix.parquet")) == 5
    [ledger] = read_parquet(bucket, f"{prefix}ledger.parquet")
    assert (ledger["transaction_id"], ledger["bonus_amount"]) == ("S1", Decimal("500.00"))


def test_an_event_without_periods_is_refused(bucket: str) -> None:
    """GIVEN an event missing its periods WHEN handled THEN a clear error names the run."""
    with pytest.raises(ValueError, match="run-2 needs periods"):
        export_snapshot.handler({"run_id": "run-2"}, None)
