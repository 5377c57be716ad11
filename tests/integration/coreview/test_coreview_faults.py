"""Exactly-once under faults: 20% of Core View's answers fail, publishes get killed midway."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from decimal import Decimal
from functools import cache

import pytest

from settlement.adapters.coreview import HttpCoreViewClient
from settlement.domain.publishing import (
    CommitMismatchError,
    CommitReceipt,
    CoreViewClient,
    DeltaRecord,
    PartResult,
    RunFigures,
    RunHeader,
    TotalsAccumulator,
    announce_run,
    commit_run,
    figures_of,
    publish_part,
)
from settlement.local_coreview import ServerHandle
from tests.fixtures.coreview import (
    InMemoryAcks,
    PublishKilledError,
    http_client,
    make_delta_records,
)

RECORDS = 200_000
PART_SIZE = 50_000
BATCH = 2500  # 80 batches: enough requests for every kind of fault to show up


def part_records(part: int) -> Iterator[DeltaRecord]:
    """The records of one part (deterministic, so a re-drive reads the same ones)."""
    return make_delta_records(PART_SIZE, seed=part, start=part * PART_SIZE)


@cache
def expected_figures() -> RunFigures:
    return figures_of(r for part in range(RECORDS // PART_SIZE) for r in part_records(part))


def publish_all(run_id: str, client: CoreViewClient, acks: InMemoryAcks) -> list[PartResult]:
    return [
        publish_part(run_id, part, part_records(part), client=client, acks=acks, batch_size=BATCH)
        for part in range(RECORDS // PART_SIZE)
    ]


def assert_core_view_holds_exactly(server: ServerHandle, run_id: str, expected: RunFigures) -> None:
    """Every record once, none missing, and Core View's totals equal ours."""
    stored = list(server.store.records(run_id))
    ids = [record["transaction_id"] for record in stored]
    assert len(ids) == len(set(ids)) == RECORDS
    assert set(ids) == {f"T{i:09d}" for i in range(RECORDS)}
    totals = TotalsAccumulator()
    for r in stored:
        totals.add_values(
            r["currency"], Decimal(r["base_delta"]), Decimal(r["bonus_delta"]), Decimal(r["delta"])
        )
    assert totals.figures() == expected


def test_publish_under_faults_ends_exact(faulty_coreview_server: ServerHandle) -> None:
    """GIVEN Core View failing 20% of writes (429, 503, connections dropped before and after
    storing) WHEN a 200 000-record run is announced, published in 4 parts and committed
    THEN Core View holds exactly our records and its figures equal ours."""
    server, client, acks = (
        faulty_coreview_server,
        http_client(faulty_coreview_server.url),
        InMemoryAcks(),
    )
    expected = expected_figures()

    announce_run("run-faults", ["2026-10"], expected, client)
    results = publish_all("run-faults", client, acks)
    receipt = commit_run("run-faults", expected, client)

    assert sum(result.records for result in results) == RECORDS
    assert receipt.figures == expected
    assert_core_view_holds_exactly(server, "run-faults", expected)
    assert {"429", "5xx", "drop-after", "drop-before"} <= set(server.faults)
    assert sum(server.faults.values()) >= 10


class StopAfter:
    """A Core View client wrapper whose thread 'dies' after n batches (like a Lambda timeout)."""

    def __init__(self, inner: HttpCoreViewClient, batches: int) -> None:
        self.inner, self.remaining, self._lock = inner, batches, threading.Lock()
        self.max_in_flight = inner.max_in_flight

    def put_run(self, run_id: str, header: RunHeader) -> None:
        self.inner.put_run(run_id, header)

    def put_batch(self, run_id: str, part: int, seq: int, records: Sequence[DeltaRecord]) -> None:
        with self._lock:
            self.remaining -= 1
            if self.remaining < 0:
                raise PublishKilledError("publisher stopped")
        self.inner.put_batch(run_id, part, seq, records)

    def commit(self, run_id: str, summary: RunFigures) -> CommitReceipt:
        raise AssertionError("a killed publish never commits")

    def committed_figures(self, run_id: str) -> RunFigures | None:
        return self.inner.committed_figures(run_id)


@pytest.mark.parametrize("kill", ["after_acks", "stopped_thread"])
def test_killed_publish_redriven_ends_exact(
    faulty_coreview_server: ServerHandle, kill: str
) -> None:
    """GIVEN a publish killed midway (the ack store dies after 13 acks, or the sending thread
    stops after 17 batches) under 20% faults WHEN the whole publish is re-driven and committed
    THEN nothing is duplicated or missing, and the re-drive skipped what was acknowledged."""
    server, client = faulty_coreview_server, http_client(faulty_coreview_server.url)
    expected = expected_figures()
    announce_run("run-kill", ["2026-10"], expected, client)
    acks = InMemoryAcks(fail_after=13 if kill == "after_acks" else None)
    first_client: CoreViewClient = StopAfter(client, 17) if kill == "stopped_thread" else client
    with pytest.raises(PublishKilledError):
        publish_all("run-kill", first_client, acks)
    acknowledged_before = acks.recorded
    acks.fail_after = None

    redriven = publish_all("run-kill", client, acks)
    receipt = commit_run("run-kill", expected, client)

    assert sum(result.skipped for result in redriven) == acknowledged_before > 0
    assert sum(result.sent for result in redriven) == RECORDS // BATCH - acknowledged_before
    assert receipt.figures == expected
    assert_core_view_holds_exactly(server, "run-kill", expected)


def test_exactness_check_can_fail(coreview_server: ServerHandle) -> None:
    """GIVEN one batch missing from Core View WHEN committing THEN the mismatch is caught
    (the exactness assertions above are not vacuous)."""
    client = http_client(coreview_server.url)
    records = list(make_delta_records(6000))
    expected = figures_of(records)
    announce_run("run-short", [], expected, client)
    client.put_batch("run-short", 0, 0, records[:5000])

    with pytest.raises(CommitMismatchError, match="records ours 6000 theirs 5000"):
        commit_run("run-short", expected, client)
