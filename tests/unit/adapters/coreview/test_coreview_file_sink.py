"""The file:// sink: the API's payloads as files, with the API's idempotency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from settlement.adapters.coreview import FileSinkClient, HttpCoreViewClient, connect
from settlement.config import load_settings
from settlement.domain.publishing import (
    CoreViewConflictError,
    CoreViewRejectedError,
    RunFigures,
    announce_run,
    commit_run,
    encode_batch,
    figures_of,
    publish_part,
)
from tests.fixtures.coreview import InMemoryAcks, PublishKilledError, make_delta_records


def test_batches_are_stored_as_the_api_body(tmp_path: Path) -> None:
    """GIVEN an announced run WHEN a batch is put THEN its file is the API's JSON body."""
    sink, records = FileSinkClient(tmp_path), list(make_delta_records(3))
    announce_run("r1", ["2026-10"], figures_of(records), sink)

    sink.put_batch("r1", 0, 0, records)

    assert (tmp_path / "r1/parts/0/batch-0.json").read_bytes() == encode_batch(records)
    header = json.loads((tmp_path / "r1/run.json").read_bytes())
    assert header["periods"] == ["2026-10"]
    assert header["expected"]["records"] == 3


def test_same_body_is_a_replay_and_another_is_a_conflict(tmp_path: Path) -> None:
    """GIVEN a stored batch WHEN put again THEN no-op; WHEN another body THEN 409 conflict."""
    sink = FileSinkClient(tmp_path)
    announce_run("r1", ["2026-10"], RunFigures(0), sink)
    sink.put_batch("r1", 0, 0, list(make_delta_records(2, seed=1)))

    sink.put_batch("r1", 0, 0, list(make_delta_records(2, seed=1)))
    with pytest.raises(
        CoreViewConflictError, match="part 0 batch 0 already holds a different body"
    ):
        sink.put_batch("r1", 0, 0, list(make_delta_records(2, seed=2)))


def test_a_different_header_is_a_conflict(tmp_path: Path) -> None:
    """GIVEN an announced run WHEN announced with other figures THEN 409 conflict."""
    sink = FileSinkClient(tmp_path)
    announce_run("r1", ["2026-10"], RunFigures(0), sink)
    announce_run("r1", ["2026-10"], RunFigures(0), sink)

    with pytest.raises(CoreViewConflictError):
        announce_run("r1", ["2026-10"], RunFigures(1), sink)


def test_batch_for_an_unannounced_run_is_refused(tmp_path: Path) -> None:
    """GIVEN no announced run WHEN a batch is put THEN a 404-like rejection naming the run."""
    with pytest.raises(CoreViewRejectedError, match="run r9 was not announced"):
        FileSinkClient(tmp_path).put_batch("r9", 0, 0, list(make_delta_records(1)))


def test_unsafe_run_id_is_refused(tmp_path: Path) -> None:
    """GIVEN a run id escaping the directory WHEN announced THEN refused, nothing written."""
    with pytest.raises(CoreViewRejectedError, match="not a safe name"):
        announce_run("../x", [], RunFigures(0), FileSinkClient(tmp_path / "sink"))
    assert not (tmp_path / "x").exists()


def test_killed_publish_redriven_commits_exactly(tmp_path: Path) -> None:
    """GIVEN 26 000 records, a publish killed after 2 acks WHEN re-driven and committed
    THEN the sink's own sums equal ours and every record is stored once."""
    sink, records = FileSinkClient(tmp_path), list(make_delta_records(26_000))
    expected = figures_of(records)
    announce_run("r1", ["2026-10"], expected, sink)
    acks = InMemoryAcks(fail_after=2)
    with pytest.raises(PublishKilledError):
        publish_part("r1", 0, records, client=sink, acks=acks)
    acks.fail_after = None

    publish_part("r1", 0, records, client=sink, acks=acks)
    receipt = commit_run("r1", expected, sink)

    assert receipt.figures == expected
    assert [r.transaction_id for r in sink.records("r1")] == [r.transaction_id for r in records]
    assert json.loads((tmp_path / "r1/commit.json").read_bytes())["stored"]["records"] == 26_000


def test_new_batch_after_commit_is_refused(tmp_path: Path) -> None:
    """GIVEN a committed run WHEN a batch at a new address arrives THEN 409 run_committed."""
    sink = FileSinkClient(tmp_path)
    announce_run("r1", [], RunFigures(0), sink)
    sink.commit("r1", RunFigures(0))

    with pytest.raises(CoreViewConflictError, match="already committed"):
        sink.put_batch("r1", 0, 0, list(make_delta_records(1)))


def test_a_repeated_commit_answers_the_same_and_other_figures_conflict(tmp_path: Path) -> None:
    """GIVEN a committed run WHEN committed again with the same figures THEN the same receipt;
    WHEN committed with other figures THEN 409 conflict, and commit.json keeps the first."""
    sink, records = FileSinkClient(tmp_path), list(make_delta_records(20))
    expected = figures_of(records)
    announce_run("r1", ["2026-10"], expected, sink)
    sink.put_batch("r1", 0, 0, records)
    first = commit_run("r1", expected, sink)

    assert commit_run("r1", expected, sink) == first
    with pytest.raises(CoreViewConflictError, match="committed with other figures"):
        sink.commit("r1", RunFigures(0))
    committed = json.loads((tmp_path / "r1" / "commit.json").read_bytes())
    assert committed["received"] == expected.to_payload()


def test_connect_chooses_the_client_by_url(tmp_path: Path) -> None:
    """GIVEN file://, http:// and ftp:// URLs WHEN connecting THEN sink, HTTP client, error."""
    file_settings = load_settings(tmp_path, coreview_url=f"file://{tmp_path / 'cv'}")
    http_settings = load_settings(tmp_path, coreview_url="http://127.0.0.1:9")

    assert isinstance(connect(file_settings), FileSinkClient)
    assert isinstance(connect(http_settings), HttpCoreViewClient)
    with pytest.raises(ValueError, match="http\\(s\\):// or file://"):
        connect(load_settings(tmp_path, coreview_url="ftp://x"))
