"""A local run whose Core View is the local HTTP server, failing a fifth of its writes.

The calculation is the fast in-process stand-in (tests/fixtures/workflow.py): this is about what
reaches Core View through the real publish path of the workflow, not about commissions.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from settlement.bootstrap import Adapters
from settlement.local_coreview import ServerHandle
from state_machine.local import run_workflow
from tests.fixtures.coreview import TEST_TOKEN
from tests.fixtures.workflow import FakeCalculation, put_batch, sale

OCTOBER = {"periods": ["2026-10"], "requested_by": "tests"}


def through_server(workspace: Adapters, server: ServerHandle) -> Adapters:
    settings = workspace.settings.with_overrides(coreview_url=server.url, coreview_token=TEST_TOKEN)
    return Adapters(settings)


def held_by_coreview(server: ServerHandle, run_ids: list[str]) -> dict[str, Decimal]:
    """Per transaction, the sum of every delta Core View received over the runs."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for run_id in run_ids:
        for record in server.store.records(run_id):
            totals[record["transaction_id"]] += Decimal(record["delta"])
    return dict(totals)


def test_runs_publish_exactly_their_deltas_through_a_faulty_server(
    workspace: Adapters, faulty_coreview_server: ServerHandle
) -> None:
    # GIVEN a workspace whose Core View is the local server failing 20% of writes
    adapters = through_server(workspace, faulty_coreview_server)
    put_batch(adapters.store, "b1", [sale(n) for n in range(1, 40)])
    put_batch(adapters.store, "b2", [sale(n) for n in range(40, 60)])
    # WHEN a month is settled, then re-run after batch b2 is withdrawn
    first = run_workflow(adapters, OCTOBER, calculate=FakeCalculation())
    adapters.store.delete("incoming/transactions/b2.csv")
    adapters.store.delete("incoming/transactions/b2.manifest.json")
    second = run_workflow(adapters, OCTOBER, calculate=FakeCalculation())
    # THEN both runs succeeded and Core View committed what each published
    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED"), second.cause
    for execution in (first, second):
        stored = faulty_coreview_server.store.run(execution.name)
        assert stored is not None
        assert stored["committed"] is not None
    # AND what Core View holds per transaction equals our ledger: no duplicate, none missing
    held = held_by_coreview(faulty_coreview_server, [first.name, second.name])
    ledger = {
        entry.transaction_id: entry.base_amount + entry.bonus_amount
        for entry in adapters.database.ledger.entries()
    }
    assert held == ledger
    # AND the withdrawn batch's lines were reversed to zero, the rest kept
    assert all(held[f"T{n}"] == 0 for n in range(40, 60))
    assert all(held[f"T{n}"] == Decimal("10.00") for n in range(1, 40))
