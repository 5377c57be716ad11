"""λ parse-reference on S3 events, with the data store on (moto) S3."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from lambdas import parse_reference
from settlement.bootstrap import build_adapters
from tests.fixtures.events.s3 import moto_s3_endpoint, s3_object_created, use_s3_workspace
from tests.unit.domain.reference.catalogue import GOOD_MATRIX


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[dict[str, str]]:
    with moto_s3_endpoint() as environment:
        yield environment


@pytest.fixture
def bucket(s3_endpoint: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"settlement-{uuid.uuid4().hex[:12]}"
    use_s3_workspace(monkeypatch, s3_endpoint, tmp_path, name)
    return name


def put(bucket: str, key: str, body: bytes) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def test_an_uploaded_matrix_is_loaded_once_even_when_redelivered(bucket: str) -> None:
    """GIVEN a matrix put under incoming/reference/matrix/ (a name with spaces)
    WHEN its event arrives, and again (S3 delivers at least once)
    THEN one version is loaded and the re-delivery answers that same version."""
    key = "incoming/reference/matrix/DE matrix 2026.csv"
    put(bucket, key, GOOD_MATRIX)
    event = s3_object_created(bucket, key)

    first = parse_reference.handler(event, None)
    again = parse_reference.handler(event, None)

    [loaded] = first["loaded"]
    assert (loaded["kind"], loaded["row_count"], loaded["created"]) == ("matrix", 5, True)
    assert loaded["file_name"] == "DE matrix 2026.csv"
    assert again["loaded"][0]["version_id"] == loaded["version_id"]
    assert again["loaded"][0]["created"] is False
    versions = build_adapters().database.reference.list_versions("matrix")
    assert [(v.version_id, v.uploaded_by) for v in versions] == [
        (loaded["version_id"], "AWS:AIDAEXAMPLE:finance.user@example.com")
    ]


def test_a_bad_file_gets_an_error_report_and_fails(bucket: str) -> None:
    """GIVEN a targets file with two bad rows WHEN its event arrives
    THEN <key>.errors.json lists both errors, the Lambda fails naming the file, and no
    version is stored."""
    key = "incoming/reference/targets/targets-2026-10.csv"
    put(bucket, key, b"market,dealer_id,period,target_units\nDE,D1,2026-10,-1\nDE,D2,2026-1x,4\n")

    with pytest.raises(parse_reference.ReferenceFileRejectedError) as rejected:
        parse_reference.handler(s3_object_created(bucket, key), None)

    assert key in str(rejected.value)
    assert "targets-2026-10.csv.errors.json" in str(rejected.value)
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key + ".errors.json")["Body"].read()
    report = json.loads(body)
    assert report["error_count"] == 2
    assert report["errors"][0] == {
        "file": "targets-2026-10.csv",
        "row": 2,
        "column": "target_units",
        "reason": "target_units -1 is negative",
    }
    assert (report["errors"][1]["row"], report["errors"][1]["column"]) == (3, "period")
    assert build_adapters().database.reference.list_versions("targets") == []


def test_error_reports_and_other_keys_are_ignored(bucket: str) -> None:
    """GIVEN events for an error report and a transaction batch WHEN handled THEN both are
    ignored and nothing is loaded."""
    keys = ["incoming/reference/matrix/m.csv.errors.json", "incoming/transactions/b1.csv"]
    for key in keys:
        put(bucket, key, b"{}")
    result = parse_reference.handler(s3_object_created(bucket, *keys), None)
    assert result == {"loaded": [], "ignored": keys}


def test_an_upper_case_file_name_is_loaded(bucket: str) -> None:
    """GIVEN `Matrix.CSV` under the matrix prefix (the S3 notification has no suffix filter,
    which would be case-sensitive) WHEN its event arrives THEN it loads."""
    key = "incoming/reference/matrix/Matrix.CSV"
    put(bucket, key, GOOD_MATRIX)
    result = parse_reference.handler(s3_object_created(bucket, key), None)
    assert [loaded["row_count"] for loaded in result["loaded"]] == [5]


def test_an_unsupported_file_type_gets_its_error_report(bucket: str) -> None:
    """GIVEN an old Excel file under the matrix prefix WHEN its event arrives THEN the
    Lambda fails and `<file>.errors.json` names the file type."""
    key = "incoming/reference/matrix/matrix.xls"
    put(bucket, key, GOOD_MATRIX)
    with pytest.raises(parse_reference.ReferenceFileRejectedError):
        parse_reference.handler(s3_object_created(bucket, key), None)
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key + ".errors.json")["Body"].read()
    assert "file type" in json.loads(body)["errors"][0]["reason"]
