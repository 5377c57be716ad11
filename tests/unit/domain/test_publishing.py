"""The publishing use-case against in-memory fakes of Core View and the ack store."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from decimal import Decimal

import pytest

from settlement.domain.publishing import (
    Batch,
    CommitMismatchError,
    CommitReceipt,
    CoreViewConflictError,
    CurrencyTotals,
    DeltaRecord,
    InvalidDeltaRecordError,
    PublishDriftError,
    RunFigures,
    RunHeader,
    announce_run,
    commit_run,
    encode_batch,
    figures_of,
    figures_of_payloads,
    publish_part,
    split_into_batches,
)
from tests.fixtures.coreview import InMemoryAcks, PublishKilledError, make_delta_records


class FakeCoreView:
    """Core View in memory: bodies by address, 409 on a different body, commit sums."""

    def __init__(self, max_in_flight: int = 3, answer_extra: int = 0) -> None:
        self.max_in_flight = max_in_flight
        self.headers: dict[str, RunHeader] = {}
        self.bodies: dict[tuple[str, int, int], bytes] = {}
        self.puts = 0
        self.answer_extra = answer_extra
        self.committed: dict[str, RunFigures] = {}
        self._lock = threading.Lock()

    def put_run(self, run_id: str, header: RunHeader) -> None:
        if self.headers.setdefault(run_id, header) != header:
            raise CoreViewConflictError(409, "conflict", "different header")

    def put_batch(self, run_id: str, part: int, seq: int, records: Sequence[DeltaRecord]) -> None:
        body = encode_batch(records)
        with self._lock:
            self.puts += 1
            if self.bodies.setdefault((run_id, part, seq), body) != body:
                raise CoreViewConflictError(409, "conflict", f"batch {seq} differs")

    def commit(self, run_id: str, summary: RunFigures) -> CommitReceipt:
        figures = figures_of(self.records(run_id))
        figures = RunFigures(figures.records + self.answer_extra, figures.totals)
        self.committed[run_id] = figures
        return CommitReceipt(run_id, figures)

    def committed_figures(self, run_id: str) -> RunFigures | None:
        return self.committed.get(run_id)

    def records(self, run_id: str) -> Iterator[DeltaRecord]:
        for (run, _, _), body in sorted(self.bodies.items()):
            if run == run_id:
                for payload in json.loads(body)["records"]:
                    yield DeltaRecord.from_payload(payload)


def test_batches_are_deterministic_and_bounded() -> None:
    """GIVEN the same 12 345 records twice WHEN split THEN same seqs and bodies, ≤ 5 000 each."""
    first = list(split_into_batches(make_delta_records(12_345)))
    again = list(split_into_batches(make_delta_records(12_345)))

    assert [b.seq for b in first] == [0, 1, 2]
    assert [len(b) for b in first] == [5000, 5000, 2345]
    assert [b.sha256 for b in first] == [b.sha256 for b in again]
    assert [r.transaction_id for b in first for r in b] == [f"T{i:09d}" for i in range(12_345)]


def test_batches_respect_the_byte_bound() -> None:
    """GIVEN a max_bytes of ~10 records WHEN split THEN no body exceeds it and none is lost."""
    records = list(make_delta_records(100))
    max_bytes = len(encode_batch(records[:10]))

    batches = list(split_into_batches(records, max_bytes=max_bytes))

    assert all(len(batch.body) <= max_bytes for batch in batches)
    assert sum(len(batch) for batch in batches) == 100
    assert len(batches) > 9


def test_batch_body_is_the_canonical_json_of_its_records() -> None:
    """GIVEN a batch WHEN decoded THEN it holds exactly the records, money as decimal strings."""
    records = list(make_delta_records(3))
    batch = next(split_into_batches(records))

    decoded = json.loads(batch.body)["records"]

    assert [DeltaRecord.from_payload(r) for r in decoded] == records
    assert decoded[0]["base_delta"] == str(records[0].base_delta)
    assert encode_batch(list(batch)) == batch.body


def test_batch_size_outside_the_contract_is_refused() -> None:
    """GIVEN a batch size above 5 000 WHEN splitting THEN a clear error."""
    with pytest.raises(ValueError, match="batch_size"):
        list(split_into_batches(make_delta_records(1), batch_size=5001))


def test_publish_part_sends_every_record_once_and_records_acks() -> None:
    """GIVEN 23 000 records WHEN published THEN Core View holds each once and 5 acks exist."""
    core_view, acks = FakeCoreView(), InMemoryAcks()

    result = publish_part("r1", 0, make_delta_records(23_000), client=core_view, acks=acks)

    assert (result.batches, result.sent, result.skipped, result.records) == (5, 5, 0, 23_000)
    assert sorted(acks.acknowledged("r1", 0)) == [0, 1, 2, 3, 4]
    assert [r.transaction_id for r in core_view.records("r1")] == [
        f"T{i:09d}" for i in range(23_000)
    ]


def test_killed_publish_resumes_after_acknowledged_batches() -> None:
    """GIVEN a publish killed after 3 acks WHEN re-driven THEN it skips those, sends the rest.

    Batches in flight when it died are sent again with the same body (a replay), so Core View
    ends with every record exactly once.
    """
    core_view, acks = FakeCoreView(), InMemoryAcks(fail_after=3)
    with pytest.raises(PublishKilledError):
        publish_part("r1", 2, make_delta_records(40_000), client=core_view, acks=acks)
    acks.fail_after = None

    result = publish_part("r1", 2, make_delta_records(40_000), client=core_view, acks=acks)

    assert result.skipped == 3
    assert result.sent == 5
    assert sorted(acks.acknowledged("r1", 2)) == list(range(8))
    ids = [r.transaction_id for r in core_view.records("r1")]
    assert len(ids) == len(set(ids)) == 40_000


def test_changed_records_for_an_acknowledged_batch_stop_the_publish() -> None:
    """GIVEN batch 0 acknowledged with other records WHEN re-published THEN PublishDriftError."""
    core_view, acks = FakeCoreView(), InMemoryAcks()
    publish_part("r1", 0, make_delta_records(10, seed=1), client=core_view, acks=acks)

    with pytest.raises(PublishDriftError, match="batch 0"):
        publish_part("r1", 0, make_delta_records(10, seed=2), client=core_view, acks=acks)


def test_publish_streams_its_records() -> None:
    """GIVEN 60 000 records from a generator WHEN published with 2 in flight
    THEN at no ack had more than (2 + 1) batches been read ahead: memory does not grow."""
    produced = 0
    lead: list[int] = []

    def records() -> Iterator[DeltaRecord]:
        nonlocal produced
        for record in make_delta_records(60_000):
            produced += 1
            yield record

    class WatchingAcks(InMemoryAcks):
        def record_ack(self, run_id: str, part: int, seq: int, records: int, sha: str) -> None:
            lead.append(produced - (seq + 1) * 5000)
            super().record_ack(run_id, part, seq, records, sha)

    publish_part("r1", 0, records(), client=FakeCoreView(), acks=WatchingAcks(), max_in_flight=2)

    assert len(lead) == 12
    assert max(lead) <= 3 * 5000


def test_commit_returns_core_views_figures_when_they_match() -> None:
    """GIVEN everything published WHEN committing with our figures THEN the receipt matches."""
    core_view, records = FakeCoreView(), list(make_delta_records(7000))
    expected = figures_of(records)
    announce_run("r1", ["2026-10"], expected, core_view)
    publish_part("r1", 0, records, client=core_view, acks=InMemoryAcks())

    receipt = commit_run("r1", expected, core_view)

    assert receipt.figures == expected


def test_commit_mismatch_fails_with_the_difference() -> None:
    """GIVEN Core View answering one record more WHEN committing THEN CommitMismatchError."""
    core_view, records = FakeCoreView(answer_extra=1), list(make_delta_records(10))
    publish_part("r1", 0, records, client=core_view, acks=InMemoryAcks())

    with pytest.raises(CommitMismatchError, match="records ours 10 theirs 11"):
        commit_run("r1", figures_of(records), core_view)


def test_commit_mismatch_names_the_currency_and_total() -> None:
    """GIVEN a part never published WHEN committing THEN the error names currency and total."""
    core_view = FakeCoreView()
    expected = RunFigures(1, (CurrencyTotals("EUR", Decimal("1.00"), Decimal(0), Decimal("1.00")),))

    difference = re.escape("EUR base_delta ours 1.00 theirs 0.00")
    with pytest.raises(CommitMismatchError, match=difference):
        commit_run("r1", expected, core_view)


def test_figures_sum_exactly_per_currency() -> None:
    """GIVEN cent amounts that floats would drift on WHEN totalled THEN exact Decimal sums."""
    record = DeltaRecord(
        "T1", "2026-10", "D1", "EUR", *(Decimal("0.10"),) * 3, Decimal("0.10"), Decimal(0)
    )

    figures = figures_of([record] * 10)

    assert figures.records == 10
    assert figures.totals == (CurrencyTotals("EUR", *(Decimal("1.00"),) * 3),)


def test_payload_figures_equal_the_record_figures() -> None:
    """GIVEN the JSON records of a batch in two currencies WHEN totalled column by column
    THEN the same count and exact sums as totalling the parsed records."""
    records = list(make_delta_records(5_000))
    payloads = json.loads(encode_batch(records))["records"]

    by_columns = figures_of_payloads(payloads)
    by_records = figures_of(records)

    assert by_columns.records == by_records.records == 5_000
    assert sorted(by_columns.totals, key=lambda t: t.currency) == sorted(
        by_records.totals, key=lambda t: t.currency
    )
    assert len(by_columns.totals) > 1


@pytest.mark.parametrize(
    ("payload_change", "message"),
    [
        ({"base_delta": 1.5}, "field base_delta must be a decimal string"),
        ({"delta": "1.234"}, "field delta must be finite with at most 2 decimals"),
        ({"dealer_id": ""}, "field dealer_id must be a non-empty string"),
        ({"extra": "x"}, "unknown fields"),
    ],
)
def test_bad_record_payload_names_the_field(
    payload_change: dict[str, object], message: str
) -> None:
    """GIVEN a record payload with one bad field WHEN parsed THEN the error names it."""
    payload: dict[str, object] = {**next(make_delta_records(1)).to_payload(), **payload_change}

    with pytest.raises(InvalidDeltaRecordError, match=message):
        DeltaRecord.from_payload(payload, where="records[4]")


def test_batch_is_a_sequence_of_its_records() -> None:
    """GIVEN a Batch WHEN indexed THEN it behaves as its records."""
    records = tuple(make_delta_records(2))
    batch = Batch(0, records, encode_batch(records))

    assert (len(batch), batch[1], list(batch)) == (2, records[1], list(records))
