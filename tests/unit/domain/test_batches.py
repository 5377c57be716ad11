"""File-level batch validation (spec §2) and request → periods expansion (spec §5, §8)."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from settlement.adapters.storage import DataStore
from settlement.domain import batches
from settlement.domain.batches import (
    InvalidBatchesError,
    InvalidRequestError,
    batches_document,
    collect_batches,
    manifest_for,
    parse_run_request,
    periods_between,
)
from settlement.domain.transactions import TRANSACTION_COLUMNS

HEADER = ",".join(TRANSACTION_COLUMNS)
ROW = "T{n},SALE,2026-10-0{d},DE,D1,VIN{n},3,PRIVATE,50000.00,EUR,"


def csv_bytes(rows: int, *, header: str = HEADER) -> bytes:
    lines = [header] + [ROW.format(n=n, d=1 + n % 9) for n in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def put_batch(
    store: DataStore,
    batch_id: str,
    data: bytes,
    *,
    period: str = "2026-10",
    fmt: str = "csv",
    **manifest_overrides: object,
) -> None:
    manifest = {
        "batch_id": batch_id,
        "period": period,
        "schema_version": 1,
        "row_count": data.count(b"\n") - 1 if fmt == "csv" else 0,
        "sha256": hashlib.sha256(data).hexdigest(),
        "source": "dms",
    }
    manifest.update(manifest_overrides)
    store.write_bytes(f"incoming/transactions/{batch_id}.{fmt}", data)
    store.write_json(f"incoming/transactions/{batch_id}.manifest.json", manifest)


@pytest.fixture
def store(tmp_path: Path) -> DataStore:
    return DataStore(str(tmp_path / "store"))


# --------------------------------------------------------------------------- requests
def test_a_date_range_expands_to_every_month_it_touches_oldest_first() -> None:
    # GIVEN a range from mid-November to early February
    # WHEN it is expanded
    periods = periods_between(date(2025, 11, 15), date(2026, 2, 3))
    # THEN each calendar month touched is a period, across the year end
    assert periods == ["2025-11", "2025-12", "2026-01", "2026-02"]


def test_a_request_for_periods_is_sorted_and_deduplicated() -> None:
    request = parse_run_request({"periods": ["2026-10", "2026-09", "2026-10"], "dry_run": True})
    assert request.periods == ["2026-09", "2026-10"]
    assert request.dry_run is True
    assert request.requested_by == "unknown"


def test_a_range_of_three_years_is_one_run() -> None:
    request = parse_run_request({"from": "2024-01-01", "to": "2026-12-31"})
    assert (len(request.periods), request.periods[0], request.periods[-1]) == (
        36,
        "2024-01",
        "2026-12",
    )


def test_a_request_by_range_keeps_requested_by() -> None:
    request = parse_run_request(
        {"from": "2026-07-01", "to": "2026-09-30", "requested_by": "ops@example.com"}
    )
    assert request.periods == ["2026-07", "2026-08", "2026-09"]
    assert request.requested_by == "ops@example.com"
    assert request.dry_run is False


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "either"),
        ({"periods": ["2026-10"], "from": "2026-10-01", "to": "2026-10-31"}, "either"),
        ({"periods": []}, "non-empty"),
        ({"periods": ["2026-13"]}, "2026-13"),
        ({"from": "2026-10-01", "to": "31.10.2026"}, '"to"'),
        ({"from": "2026-10-01", "to": "2026-09-30"}, "before it starts"),
        ({"periods": ["2026-10"], "dry_run": "yes"}, "dry_run"),
        ({"periods": ["2026-10"], "dryrun": True}, "unknown run input key"),
        ({"from": "0206-07-01", "to": "2026-09-30"}, r"asks for 21843 periods \(0206-07 to"),
        ({"from": "2023-01-01", "to": "2026-01-31"}, "37 periods .* at most 36 per run"),
        (
            {
                "periods": [
                    f"{y}-{m:02d}"
                    for y in (2024, 2025, 2026, 2027)
                    for m in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
                ]
            },
            "40 periods",
        ),
    ],
)
def test_malformed_requests_are_refused_with_the_reason(
    document: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        parse_run_request(document)


# --------------------------------------------------------------------------- batches
def test_valid_batches_of_the_periods_are_listed_in_period_then_batch_order(
    store: DataStore,
) -> None:
    # GIVEN batches in three periods, one outside the run
    put_batch(store, "b2", csv_bytes(3), period="2026-10")
    put_batch(store, "a9", csv_bytes(2), period="2026-10")
    put_batch(store, "z1", csv_bytes(1), period="2026-09")
    put_batch(store, "other", csv_bytes(1), period="2026-08")
    # WHEN the run for September and October collects its batches
    batches = collect_batches(store, ["2026-09", "2026-10"])
    # THEN they come sorted by (period, batch_id), with the manifests' facts
    assert [(b.period, b.batch_id, b.row_count) for b in batches] == [
        ("2026-09", "z1", 1),
        ("2026-10", "a9", 2),
        ("2026-10", "b2", 3),
    ]
    assert batches[0].key == "incoming/transactions/z1.csv"
    assert batches[0].sha256 == hashlib.sha256(csv_bytes(1)).hexdigest()


def test_a_broken_batch_of_another_period_is_left_to_that_period_s_runs(
    store: DataStore,
) -> None:
    # GIVEN a good October batch, and a September one whose manifest is broken but for its period
    put_batch(store, "oct", csv_bytes(2))
    put_batch(store, "sep", csv_bytes(1), period="2026-09", schema_version=2, sha256="zz")
    # WHEN October's run collects its batches
    # THEN September's faults are not October's business
    assert [b.batch_id for b in collect_batches(store, ["2026-10"])] == ["oct"]
    # AND September's run reports them all
    with pytest.raises(InvalidBatchesError) as raised:
        collect_batches(store, ["2026-09"])
    assert len(raised.value.problems) == 2


@pytest.mark.parametrize("period", [None, 202609, "Sept"])
def test_a_manifest_whose_period_cannot_be_read_blocks_every_run(
    store: DataStore, period: object
) -> None:
    # GIVEN a batch whose manifest's period is missing or malformed
    put_batch(store, "nowhere", csv_bytes(1), period=period)  # type: ignore[arg-type]
    # WHEN any run collects its batches
    # THEN it is refused, naming that batch: the batch could be this run's
    with pytest.raises(InvalidBatchesError, match="nowhere"):
        collect_batches(store, ["2026-10"])


def test_a_parquet_batch_is_checked_by_its_schema_and_row_count(store: DataStore) -> None:
    table = pa.table({column: pa.array(["x", "y"]) for column in TRANSACTION_COLUMNS})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    data = sink.getvalue().to_pybytes()
    put_batch(store, "pq1", data, fmt="parquet", row_count=2)
    [batch] = collect_batches(store, ["2026-10"])
    assert (batch.format, batch.row_count) == ("parquet", 2)


@pytest.mark.parametrize("line_break", ["\n", "\r\n", "\r"])
def test_a_line_break_inside_a_quoted_value_makes_the_batch_invalid(
    store: DataStore, line_break: str
) -> None:
    # GIVEN a batch whose second row has a quoted VIN spanning two lines (the job reads one
    # row per line, so it would split that row), with a manifest counting rows as CSV does
    rows = [
        ROW.format(n=1, d=1),
        f'T2,SALE,2026-10-01,DE,D1,"VIN{line_break}2",3,PRIVATE,1.00,EUR,',
    ]
    put_batch(store, "q", "\n".join([HEADER, *rows, ""]).encode(), row_count=2)
    # WHEN the run collects its batches
    # THEN the batch is refused before the run opens, naming the row and the column
    with pytest.raises(
        InvalidBatchesError,
        match="data row 2 has a line break inside a quoted "
        "value \\(column vin\\): each row must be one line",
    ):
        collect_batches(store, ["2026-10"])


def test_a_quoted_value_with_a_comma_is_one_value(store: DataStore) -> None:
    data = (HEADER + '\nT1,SALE,2026-10-01,DE,D1,"VIN,1",3,PRIVATE,1.00,EUR,\n').encode()
    put_batch(store, "q", data, row_count=1)
    assert collect_batches(store, ["2026-10"])[0].row_count == 1


def test_a_file_far_larger_than_a_read_is_hashed_and_counted_whole(
    store: DataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN reads of 64 bytes (a header needs two), parser blocks of 256 bytes, and a CSV with
    # a BOM, CRLF line ends, a quoted comma and a blank line, many reads and blocks long
    monkeypatch.setattr(batches, "READ_CHUNK_BYTES", 64)
    monkeypatch.setattr(batches, "CSV_BLOCK_BYTES", 256)
    rows = [ROW.format(n=n, d=1 + n % 9) for n in range(200)]
    rows[7] = 'T7,SALE,2026-10-01,DE,D1,"VIN,7",3,PRIVATE,1.00,EUR,'
    data = b"\xef\xbb\xbf" + ("\r\n".join([HEADER, *rows[:100], "", *rows[100:]]) + "\r\n").encode()
    put_batch(store, "big", data, row_count=200)
    # WHEN the run collects its batches
    [batch] = collect_batches(store, ["2026-10"])
    # THEN every row was counted once and the sha256 (of the whole file) matched
    assert batch.row_count == 200
    # AND one byte changed at the very end is a sha256 mismatch, reported alone
    put_batch(store, "big", data[:-3] + b"\xff\r\n", sha256=hashlib.sha256(data).hexdigest())
    with pytest.raises(InvalidBatchesError) as raised:
        collect_batches(store, ["2026-10"])
    assert [p.reason.split(": ", 1)[1][:7] for p in raised.value.problems] == ["sha256 "]


def test_a_header_line_beyond_the_limit_is_named_as_such(
    store: DataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a limit of 64 bytes for the header line, read 16 bytes at a time
    monkeypatch.setattr(batches, "READ_CHUNK_BYTES", 16)
    monkeypatch.setattr(batches, "CSV_HEAD_BYTES", 64)
    put_batch(store, "wide", csv_bytes(2))
    # WHEN the run collects the batch whose header is longer
    # THEN it says so, instead of blaming columns it did not read
    with pytest.raises(InvalidBatchesError, match="header line is longer than 64 bytes"):
        collect_batches(store, ["2026-10"])


def test_every_invalid_batch_is_reported_together_naming_each(store: DataStore) -> None:
    # GIVEN one good batch and one batch for each file-level fault of spec §2
    put_batch(store, "good", csv_bytes(2))
    put_batch(store, "badsha", csv_bytes(2), sha256="0" * 64)
    put_batch(store, "lacks", csv_bytes(2, header=HEADER.replace(",vin", "")))
    put_batch(store, "adds", csv_bytes(2, header=HEADER + ",colour"))
    put_batch(store, "count", csv_bytes(2), row_count=5)
    put_batch(store, "incomplete", csv_bytes(1))
    incomplete = json.loads(store.read_bytes("incoming/transactions/incomplete.manifest.json"))
    del incomplete["sha256"]
    store.write_json("incoming/transactions/incomplete.manifest.json", incomplete)
    store.write_bytes("incoming/transactions/orphan.csv", csv_bytes(1))
    store.write_bytes("incoming/transactions/garbled.manifest.json", b"{not json")
    put_batch(store, "nodata", csv_bytes(1))
    store.delete("incoming/transactions/nodata.csv")
    # WHEN the run collects its batches
    with pytest.raises(InvalidBatchesError) as raised:
        collect_batches(store, ["2026-10"])
    # THEN every bad batch is named with its reason, and the good one is not blamed
    reasons = {problem.batch_id: problem.reason for problem in raised.value.problems}
    assert set(reasons) == {
        "badsha",
        "lacks",
        "adds",
        "count",
        "incomplete",
        "orphan",
        "garbled",
        "nodata",
    }
    assert "does not match the manifest" in reasons["badsha"]
    assert "lacks column(s) vin" in reasons["lacks"]
    assert "adds unknown column(s) colour" in reasons["adds"]
    assert "has 2 rows, the manifest says 5" in reasons["count"]
    assert '"sha256" is missing' in reasons["incomplete"]
    assert "manifest is missing" in reasons["orphan"]
    assert "unreadable" in reasons["garbled"]
    assert "data file (.csv or .parquet) is missing" in reasons["nodata"]
    assert "8 invalid batch(es)" in str(raised.value)
    assert "badsha:" in str(raised.value)


def test_a_bad_batch_of_another_period_does_not_block_the_run(store: DataStore) -> None:
    put_batch(store, "good", csv_bytes(2), period="2026-10")
    put_batch(store, "old", csv_bytes(2), period="2026-08", sha256="0" * 64)
    assert [b.batch_id for b in collect_batches(store, ["2026-10"])] == ["good"]


@pytest.mark.parametrize("batch_id", ["dealer feed 1", "feed%201", "feed#1", "feed:1", "b[1]"])
def test_a_batch_id_spark_cannot_read_as_a_file_name_stops_the_run_naming_it(
    store: DataStore, batch_id: str
) -> None:
    # GIVEN a complete, well-formed batch whose id Spark would URI-encode or misread as a path
    put_batch(store, batch_id, csv_bytes(1))
    # WHEN the run's batches are collected THEN it is refused, naming the batch and the rule
    with pytest.raises(InvalidBatchesError) as refused:
        collect_batches(store, ["2026-10"])
    assert [(p.batch_id, p.reason) for p in refused.value.problems] == [
        (batch_id, batches.BATCH_ID_RULE)
    ]


def test_with_copy_to_the_run_lists_and_validates_its_own_copy(store: DataStore) -> None:
    # GIVEN a valid batch
    data = csv_bytes(2)
    put_batch(store, "b1", data)
    # WHEN collected for a run that keeps copies
    [batch] = collect_batches(store, ["2026-10"], copy_to="runs/r1/input/batches")
    # THEN the batch is the copy, which holds the validated bytes, and names where it arrived
    assert (batch.key, batch.incoming_key) == (
        "runs/r1/input/batches/b1.csv",
        "incoming/transactions/b1.csv",
    )
    # AND sending the batch again changes the incoming file, not what the run reads
    store.write_bytes("incoming/transactions/b1.csv", csv_bytes(3))
    assert store.read_bytes(batch.key) == data
    assert hashlib.sha256(store.read_bytes(batch.key)).hexdigest() == batch.sha256


def test_a_period_without_batches_yields_no_batches(store: DataStore) -> None:
    assert collect_batches(store, ["2026-10"]) == []


def test_invalid_utf8_is_reported_as_unreadable(store: DataStore) -> None:
    data = (HEADER + "\nT1,SALE,2026-10-01,DE,D\xe91,V,3,PRIVATE,1.00,EUR,\n").encode("latin-1")
    put_batch(store, "latin", data, row_count=1)
    with pytest.raises(InvalidBatchesError, match=r"latin: .*unreadable"):
        collect_batches(store, ["2026-10"])


def test_manifest_for_describes_the_file_and_refuses_a_bad_header() -> None:
    data = csv_bytes(4)
    manifest = manifest_for("b1", "2026-10", data, "csv", source="cli")
    assert manifest["row_count"] == 4
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    with pytest.raises(InvalidBatchesError, match="adds unknown column"):
        manifest_for("b1", "2026-10", csv_bytes(1, header=HEADER + ",x"), "csv", source="cli")


def test_batches_document_follows_the_architecture_contract(store: DataStore) -> None:
    put_batch(store, "b1", csv_bytes(1))
    document = batches_document("r1", ["2026-10"], collect_batches(store, ["2026-10"]))
    assert document["run_id"] == "r1"
    assert set(document["batches"][0]) == {
        "batch_id",
        "period",
        "key",
        "format",
        "sha256",
        "row_count",
        "source",
        "incoming_key",
    }
