"""Contract tests: the HTTP client against the local Core View server."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from settlement.adapters.coreview import (
    CoreViewConflictError,
    CoreViewRejectedError,
    CoreViewUnavailableError,
    RetryPolicy,
)
from settlement.domain.publishing import (
    RunFigures,
    RunHeader,
    announce_run,
    commit_run,
    figures_of,
)
from settlement.local_coreview import FaultConfig, ServerHandle, serve_in_thread
from settlement.local_coreview.app import create_app
from settlement.local_coreview.store import CoreViewProblemError, CoreViewStore
from tests.fixtures.coreview import TEST_TOKEN, http_client, make_delta_records

REPO = Path(__file__).resolve().parents[3]


def test_replayed_batch_succeeds_and_is_stored_once(coreview_server: ServerHandle) -> None:
    """GIVEN an announced run WHEN the same batch is put twice THEN both succeed, stored once."""
    client, records = http_client(coreview_server.url), list(make_delta_records(50))
    announce_run("r1", ["2026-10"], figures_of(records), client)
    announce_run("r1", ["2026-10"], figures_of(records), client)

    client.put_batch("r1", 0, 0, records)
    client.put_batch("r1", 0, 0, records)

    stored = list(coreview_server.store.records("r1"))
    assert [r["transaction_id"] for r in stored] == [r.transaction_id for r in records]
    assert coreview_server.store.run("r1")["batches"] == 1  # type: ignore[index]


def test_changed_body_for_the_same_address_is_409(coreview_server: ServerHandle) -> None:
    """GIVEN a stored batch WHEN another body goes to its address THEN 409 with a message."""
    client = http_client(coreview_server.url)
    announce_run("r1", ["2026-10"], RunFigures(0), client)
    client.put_batch("r1", 0, 3, list(make_delta_records(5, seed=1)))

    with pytest.raises(CoreViewConflictError, match="part 0 batch 3 holds a different body"):
        client.put_batch("r1", 0, 3, list(make_delta_records(5, seed=2)))


def test_changed_header_is_409(coreview_server: ServerHandle) -> None:
    """GIVEN an announced run WHEN announced with other periods THEN 409."""
    client = http_client(coreview_server.url)
    announce_run("r1", ["2026-10"], RunFigures(0), client)

    with pytest.raises(CoreViewConflictError, match="different header"):
        announce_run("r1", ["2026-11"], RunFigures(0), client)


def test_non_retryable_4xx_surfaces_core_views_message(coreview_server: ServerHandle) -> None:
    """GIVEN a run never announced WHEN a batch is put THEN 404 at once with the message."""
    client = http_client(coreview_server.url)

    with pytest.raises(CoreViewRejectedError, match="run ghost was not announced") as caught:
        client.put_batch("ghost", 0, 0, list(make_delta_records(1)))
    assert (caught.value.status, caught.value.code) == (404, "run_not_found")


def test_invalid_record_is_422_naming_record_and_field(coreview_server: ServerHandle) -> None:
    """GIVEN a raw batch whose second record has a float delta WHEN put THEN 422 naming it."""
    http_client(coreview_server.url).put_run("r1", RunHeader((), RunFigures(0)))
    records = [r.to_payload() for r in make_delta_records(2)]
    records[1]["delta"] = 1.5  # type: ignore[assignment]
    body = gzip.compress(json.dumps({"records": records}).encode())
    headers = {"Authorization": f"Bearer {TEST_TOKEN}", "Content-Encoding": "gzip"}

    answer = httpx.put(
        f"{coreview_server.url}/v1/runs/r1/parts/0/batches/0", content=body, headers=headers
    )

    assert answer.status_code == 422
    assert answer.json() == {
        "error": "invalid_record",
        "message": "records[1].delta is not a decimal string: 1.5",
    }


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Basic {TEST_TOKEN}", TEST_TOKEN]
)
def test_missing_or_wrong_token_is_401(
    coreview_server: ServerHandle, authorization: str | None
) -> None:
    """GIVEN no token, a wrong one, or another scheme WHEN calling THEN 401 with the
    error body, nothing stored."""
    headers = {"Authorization": authorization} if authorization else {}

    answer = httpx.put(f"{coreview_server.url}/v1/runs/r1", json={}, headers=headers)

    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    assert coreview_server.store.run("r1") is None
    with pytest.raises(CoreViewRejectedError, match="401 unauthorized"):
        http_client(coreview_server.url, token="wrong-token").put_run(
            "r1", RunHeader((), RunFigures(0))
        )


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    """GIVEN Core View answering every write 429 with Retry-After 0.3 s WHEN putting with 3
    attempts THEN the client waits 0.3 s twice (measured) and then gives up."""
    faults = FaultConfig(fail_rate=1.0, kinds=("429",), retry_after_s=0.3)
    with serve_in_thread(db=tmp_path / "cv.db", token=TEST_TOKEN, faults=faults) as server:
        client = http_client(server.url, retry=RetryPolicy(max_attempts=3, base_delay=0.001))
        started = time.monotonic()
        with pytest.raises(CoreViewUnavailableError, match="429"):
            client.put_run("r1", RunHeader((), RunFigures(0)))
        elapsed = time.monotonic() - started

    assert server.faults["429"] == 3
    assert 0.6 <= elapsed < 1.5


def test_commit_answers_what_core_view_stored(coreview_server: ServerHandle) -> None:
    """GIVEN 12 000 records published WHEN committing THEN Core View's figures equal ours, and
    GET /v1/runs/{id}/records reads the same records back."""
    client, records = http_client(coreview_server.url), list(make_delta_records(12_000))
    expected = figures_of(records)
    announce_run("r1", ["2026-10"], expected, client)
    for seq, start in enumerate(range(0, 12_000, 5000)):
        client.put_batch("r1", 0, seq, records[start : start + 5000])

    receipt = commit_run("r1", expected, client)

    assert receipt.figures == expected
    lines = httpx.get(
        f"{coreview_server.url}/v1/runs/r1/records",
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
    ).text.splitlines()
    assert [json.loads(line) for line in lines] == [r.to_payload() for r in records]
    with pytest.raises(CoreViewConflictError, match="already committed"):
        client.put_batch("r1", 1, 0, records[:1])


def test_a_repeated_commit_answers_the_same_and_other_figures_are_409(
    coreview_server: ServerHandle,
) -> None:
    """GIVEN a committed run WHEN committed again with the same figures THEN the same answer;
    WHEN committed with other figures THEN 409, and the first commit's figures are kept."""
    client, records = http_client(coreview_server.url), list(make_delta_records(20))
    expected = figures_of(records)
    announce_run("r1", ["2026-10"], expected, client)
    client.put_batch("r1", 0, 0, records)
    first = commit_run("r1", expected, client)

    assert commit_run("r1", expected, client) == first
    with pytest.raises(CoreViewConflictError, match="committed with other figures"):
        client.commit("r1", RunFigures(0))
    committed = coreview_server.store.run("r1")["committed"]  # type: ignore[index]
    assert committed["received"] == expected.to_payload()


def test_the_bearer_scheme_is_case_insensitive(coreview_server: ServerHandle) -> None:
    """GIVEN the right token under the scheme spelled 'bearer' WHEN calling THEN accepted."""
    answer = httpx.get(
        f"{coreview_server.url}/v1/runs/r-none", headers={"Authorization": f"bearer {TEST_TOKEN}"}
    )
    assert answer.status_code == 404  # past authentication: the run is unknown


def test_the_local_core_view_refuses_to_start_without_a_token() -> None:
    with pytest.raises(ValueError, match="needs a token"):
        create_app(CoreViewStore(":memory:"), " ")


def test_the_client_reads_the_figures_core_view_committed(
    coreview_server: ServerHandle,
) -> None:
    """GIVEN an unknown run, then an announced one WHEN asked THEN no commit; WHEN the run is
    committed THEN Core View's figures (what record_failure asks when an answer was lost)."""
    client = http_client(coreview_server.url)
    assert client.committed_figures("r-unknown") is None
    announce_run("r2", ["2026-10"], RunFigures(0), client)
    assert client.committed_figures("r2") is None
    commit_run("r2", RunFigures(0), client)
    assert client.committed_figures("r2") == RunFigures(0)


def test_openapi_document_lists_the_servers_routes(coreview_server: ServerHandle) -> None:
    """GIVEN docs/core-view.openapi.yaml WHEN compared with the server THEN same paths and
    methods (the contract and the local server do not drift apart)."""
    document = yaml.safe_load((REPO / "docs/core-view.openapi.yaml").read_text())
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in {"get", "put", "post"}
    }
    from settlement.local_coreview.app import create_app

    app = create_app(coreview_server.store, TEST_TOKEN)
    served = {
        (method, route.path)  # type: ignore[attr-defined]
        for route in app.routes
        for method in getattr(route, "methods", set())
        if str(route.path).startswith("/v1/")  # type: ignore[attr-defined]
    }
    assert document["openapi"].startswith("3.1")
    assert documented == served


def test_cli_serves_the_contract(tmp_path: Path) -> None:
    """GIVEN `settle coreview serve` started as a process WHEN a client announces a run
    THEN the server stores it in the SQLite file given by --db."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-c",
        "from settlement.cli.app import main; main()",
        "coreview",
        "serve",
        "--home",
        str(tmp_path),
        "--port",
        str(port),
        "--db",
        str(tmp_path / "cli.db"),
        "--token",
        TEST_TOKEN,
    ]
    process = subprocess.Popen(command, cwd=REPO, env=os.environ.copy())
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url)
        http_client(url).put_run("r1", RunHeader(("2026-10",), RunFigures(0)))
    finally:
        process.terminate()
        process.wait(timeout=10)

    from settlement.local_coreview import CoreViewStore

    assert CoreViewStore(tmp_path / "cli.db").run("r1")["header"]["periods"] == ["2026-10"]  # type: ignore[index]


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the CLI server did not start")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("delta", "1\n2", "records[57].delta is not a decimal string: '1\\n2'"),
        ("delta", 1.5, "records[57].delta is not a decimal string: 1.5"),
        ("base_delta", "1.234", "records[57].base_delta is not a decimal string: '1.234'"),
        ("dealer_id", "", "records[57].dealer_id must be a non-empty string"),
        ("currency", None, "records[57].currency must be a non-empty string"),
        ("extra", "x", "records[57] must have exactly the fields"),
    ],
)
def test_every_record_of_a_batch_is_checked(
    coreview_server: ServerHandle, field: str, value: object, message: str
) -> None:
    """GIVEN a 100-record batch whose 58th record has one bad field WHEN stored
    THEN 422 naming record and field, and nothing is stored."""
    coreview_server.store.put_run("r1", b'{"periods":[],"expected":{"records":0,"totals":[]}}')
    records: list[dict[str, object]] = [{**r.to_payload()} for r in make_delta_records(100)]
    records[57][field] = value
    body = json.dumps({"records": records}).encode()

    with pytest.raises(CoreViewProblemError) as caught:
        coreview_server.store.put_batch("r1", 0, 0, body, gzip.compress(body))

    assert (caught.value.status, caught.value.code) == (422, "invalid_record")
    assert caught.value.message.startswith(message)
    assert coreview_server.store.run("r1")["batches"] == 0  # type: ignore[index]
