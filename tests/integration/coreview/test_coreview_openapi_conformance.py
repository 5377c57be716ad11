"""Conformance: docs/core-view.openapi.yaml is true of the local Core View (Schemathesis).

Schemathesis reads the document and generates requests from it, valid ones and (negative mode)
ones that break it, and sends them with the bearer token to the local Core View on loopback.
Every answer must be one the document promises: no server error, and a documented status code,
content type, headers and body.

Deterministic and bounded: derandomized generation, a fixed number of examples per operation,
no example database, and each generated request starts from a store reset to a known state.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema_rs
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from settlement.local_coreview import CoreViewStore, ServerHandle
from tests.fixtures.coreview import TEST_TOKEN, make_delta_records

Case = schemathesis.Case[Any]

REPO = Path(__file__).resolve().parents[3]
DOCUMENT_PATH = REPO / "docs/core-view.openapi.yaml"
DOCUMENT: dict[str, Any] = yaml.safe_load(DOCUMENT_PATH.read_text())
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}
NDJSON = "application/x-ndjson"

SCHEMA = schemathesis.openapi.from_path(
    DOCUMENT_PATH,
    config=schemathesis.Config.from_dict(
        {
            "generation": {
                "mode": "all",  # positive and negative cases
                "max-examples": 25,  # per operation in the fuzzing phase, both modes together
                "deterministic": True,
                "database": "none",
                # the token is the test's to send (or, below, to leave out or get wrong)
                "with-security-parameters": False,
            }
        }
    ),
)
OPERATIONS = {
    f"{method.upper()} {path}": SCHEMA[path][method]
    for path, methods in DOCUMENT["paths"].items()
    for method in methods
    if method != "parameters"
}


def records_are_documented_delta_records(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Case
) -> bool | None:
    """Each line of an ``application/x-ndjson`` answer is a documented DeltaRecord.

    Schemathesis has no x-ndjson deserializer, so response_schema_conformance skips these
    answers (it warns); the document's schema for that media type describes one line.
    """
    del ctx, case
    if not response.headers.get("content-type", [""])[0].startswith(NDJSON):
        return None
    for number, line in enumerate(response.text.splitlines(), start=1):
        problems = [error.message for error in DELTA_RECORD.iter_errors(json.loads(line))]
        assert not problems, f"x-ndjson line {number} is no DeltaRecord: {problems}"
    return True


DELTA_RECORD = jsonschema_rs.validator_for(
    {"$ref": "#/components/schemas/DeltaRecord", "components": DOCUMENT["components"]}
)

CHECKS: list[Callable[..., bool | None]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    records_are_documented_delta_records,
]


class PublisherSession(requests.Session):
    """Compresses a body whose Content-Encoding says gzip, as the publisher does.

    Schemathesis sends the generated JSON as it is; Core View rightly answers a plain body
    under ``Content-Encoding: gzip`` with 400 bad_gzip, so without this the valid gzip cases
    would never reach the checks of the records.
    """

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if request.headers.get("Content-Encoding", "").lower() == "gzip":
            body = request.body or b""
            if isinstance(body, str):
                body = body.encode()
            assert isinstance(body, bytes), "generated bodies are serialised in full"
            request.body = gzip.compress(body)
            request.headers["Content-Length"] = str(len(request.body))
        return super().send(request, **kwargs)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with PublisherSession() as opened:
        yield opened


# --------------------------------------------------------------------------- run states
RUN_STATES = ("unknown", "announced", "committed")
HEADER: dict[str, Any] = {"periods": ["2026-10"], "expected": {"records": 0, "totals": []}}
BATCH: dict[str, Any] = {"records": [r.to_payload() for r in make_delta_records(3)]}
SEEDED_ADDRESS = (2, 3)  # where a committed run holds its one batch (part, seq)


def put_run_in_a_state(store: CoreViewStore, case: Case) -> None:
    """Reset the store, then give the case's run one of RUN_STATES, picked from the case's
    content (deterministic): unknown (the 404 answers), announced with HEADER, or announced,
    holding BATCH at SEEDED_ADDRESS, and committed (commit answers, x-ndjson read-back,
    409 run_committed)."""
    store.clear()
    run_id = (case.path_parameters or {}).get("run_id")
    if not isinstance(run_id, str):
        return
    content = json.dumps(
        [case.operation.label, case.path_parameters, dict(case.headers or {}), case.body],
        default=lambda value: type(value).__name__,  # e.g. no body: NotSet
    )
    state = RUN_STATES[zlib.crc32(content.encode("utf-8", "surrogatepass")) % len(RUN_STATES)]
    run_id = unquote(run_id)  # path parameters come percent-encoded; Core View decodes them
    if state != "unknown":
        store.put_run(run_id, _json(HEADER))
    if state == "committed":
        body = _json(BATCH)
        store.put_batch(run_id, *SEEDED_ADDRESS, body, gzip.compress(body))
        store.commit(run_id, _json({"records": 3, "totals": []}))


def _json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- requests
PUT_RUN, PUT_BATCH, COMMIT = (
    "PUT /v1/runs/{run_id}",
    "PUT /v1/runs/{run_id}/parts/{part}/batches/{seq}",
    "POST /v1/runs/{run_id}/commit",
)
VALID_BODIES: dict[str, dict[str, Any]] = {
    PUT_RUN: HEADER,
    PUT_BATCH: BATCH,
    COMMIT: {"records": 0, "totals": []},
}


def make_case(label: str, run_id: str, body: dict[str, Any] | None = None) -> Case:
    """A request to the operation ``label`` for ``run_id`` (part 0, seq 0), with ``body`` or
    else the operation's valid body, if it takes one."""
    operation, path_parameters = OPERATIONS[label], {"run_id": run_id, "part": 0, "seq": 0}
    body = body if body is not None else VALID_BODIES.get(label)
    if body is None:
        return operation.Case(path_parameters=path_parameters)
    return operation.Case(path_parameters=path_parameters, body=body, media_type="application/json")


def read_back(run_id: str, server: ServerHandle, session: requests.Session) -> None:
    """What Core View accepted must read back as documented: GET the run and its records."""
    for label in ("GET /v1/runs/{run_id}", "GET /v1/runs/{run_id}/records"):
        read = make_case(label, run_id)
        answer = read.call_and_validate(
            base_url=server.url, session=session, headers=AUTH, checks=CHECKS
        )
        assert answer.status_code == 200, answer.text


# --------------------------------------------------------------------------- tests
@SCHEMA.parametrize()
# The server fixture outlives the examples on purpose (one server per operation):
# put_run_in_a_state resets its store before every example.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_answer_is_documented(
    case: Case, coreview_server: ServerHandle, session: requests.Session
) -> None:
    """GIVEN the local Core View, the right token, and the case's run unknown, announced or
    committed
    WHEN Schemathesis sends the cases it generates from the document (examples, boundary
    values, valid and invalid random data) to each operation
    THEN no answer is a server error, and each one's status code, content type, headers and
    body are the documented ones; and after an accepted write, the run and its records read
    back as documented (what Core View accepts, it answers back within the document)."""
    put_run_in_a_state(coreview_server.store, case)

    answer = case.call_and_validate(
        base_url=coreview_server.url, session=session, headers=AUTH, checks=CHECKS
    )

    if case.method.upper() != "GET" and 200 <= answer.status_code < 300:
        read_back(case.path_parameters["run_id"], coreview_server, session)


def test_chained_operations_answer_as_documented(
    coreview_server: ServerHandle, session: requests.Session
) -> None:
    """GIVEN the local Core View and the right token
    WHEN Schemathesis chains operations along the links it infers from the document
    (announce a run, put its batches, commit it, read it back)
    THEN every answer in every chain is documented (commit answers and read-backs included)."""

    class Workflow(SCHEMA.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            coreview_server.store.clear()

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"base_url": coreview_server.url, "session": session, "headers": AUTH}

        def validate_response(
            self,
            response: schemathesis.Response,
            case: Case,
            additional_checks: list[Any] | None = None,
            **kwargs: Any,
        ) -> None:
            case.validate_response(response, checks=CHECKS, headers=AUTH, transport_kwargs=kwargs)

    Workflow.run(
        settings=settings(
            max_examples=30,
            stateful_step_count=8,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )


@pytest.mark.parametrize("label", sorted(OPERATIONS))
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Basic {TEST_TOKEN}", f"Bearer {TEST_TOKEN}x"]
)
def test_a_request_without_the_right_token_gets_the_documented_401(
    coreview_server: ServerHandle, session: requests.Session, label: str, authorization: str | None
) -> None:
    """GIVEN an announced run and a valid request to each operation
    WHEN it carries no token, a wrong one, or the token under another scheme
    THEN 401 with the documented Error body (`unauthorized`), and nothing is stored."""
    coreview_server.store.put_run("r1", _json(HEADER))
    case = make_case(label, "r1")
    headers = {"Authorization": authorization} if authorization else {}

    response = case.call(base_url=coreview_server.url, session=session, headers=headers)

    case.validate_response(response, checks=CHECKS)
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "message": "missing or wrong bearer token"}
    assert coreview_server.store.run("r1") == {
        "run_id": "r1",
        "header": HEADER,
        "committed": None,
        "batches": 0,
        "records": 0,
    }


def test_totals_may_outgrow_the_digits_of_one_amount(
    coreview_server: ServerHandle, session: requests.Session
) -> None:
    """GIVEN a run holding two records of the largest documented amount in one currency
    WHEN it is committed and read back
    THEN the commit answer and the run carry the 17-digit total, as the document allows."""
    largest = {**BATCH["records"][0], "currency": "EUR", "base_delta": "9999999999999999.99"}
    records = [{**largest, "delta": "9999999999999999.99", "bonus_delta": "0"}] * 2
    coreview_server.store.put_run("r1", _json(HEADER))

    for case in (
        make_case(PUT_BATCH, "r1", {"records": records}),
        make_case(COMMIT, "r1", {"records": 2, "totals": []}),
    ):
        case.call_and_validate(
            base_url=coreview_server.url, session=session, headers=AUTH, checks=CHECKS
        )
    read_back("r1", coreview_server, session)

    answer = coreview_server.store.run("r1")["committed"]["answer"]  # type: ignore[index]
    assert answer["totals"][0]["delta"] == "19999999999999999.98"


def _record(**changes: str) -> dict[str, str]:
    return {**BATCH["records"][0], **changes}


def _figures(**changes: str) -> dict[str, Any]:
    totals = {"currency": "EUR", "base_delta": "1.00", "bonus_delta": "0", "delta": "1.00"}
    return {"records": 1, "totals": [{**totals, **changes}]}


@pytest.mark.parametrize(
    ("label", "body", "message"),
    [
        (PUT_RUN, {**HEADER, "periods": ["2026-1"]}, "periods must be a list of YYYY-MM"),
        (PUT_RUN, {"periods": [], "expected": {"records": 0}}, "expected: totals must be a"),
        (PUT_RUN, {**HEADER, "expected": _figures(delta="1e3")}, "totals[0].delta is not a"),
        (PUT_BATCH, {"records": [_record(period="10/2026")]}, "records[0].period is not YYYY"),
        (PUT_BATCH, {"records": [_record(delta="١٢")]}, "records[0].delta is not a decimal"),
        (COMMIT, _figures(base_delta=" 5"), "totals[0].base_delta is not a decimal string"),
    ],
)
def test_values_outside_the_documented_patterns_are_refused(
    coreview_server: ServerHandle,
    session: requests.Session,
    label: str,
    body: dict[str, Any],
    message: str,
) -> None:
    """GIVEN an announced run
    WHEN a header, batch or commit carries a value its schema excludes (a period not YYYY-MM,
    no totals, an amount Python's Decimal reads but the Money/Total pattern does not: exponent,
    blank, non-ASCII digits) — values Core View would otherwise store and answer back
    THEN 422 naming the value, as documented, and nothing is stored."""
    coreview_server.store.put_run("r2", _json(HEADER))
    case = make_case(label, "r1" if label == PUT_RUN else "r2", body)

    answer = case.call_and_validate(
        base_url=coreview_server.url, session=session, headers=AUTH, checks=CHECKS
    )

    assert answer.status_code == 422
    assert message in answer.json()["message"]
    assert coreview_server.store.run("r1") is None
    assert coreview_server.store.run("r2") == {
        "run_id": "r2",
        "header": HEADER,
        "committed": None,
        "batches": 0,
        "records": 0,
    }


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_a_run_id_holding_a_slash_is_the_documented_404(
    coreview_server: ServerHandle, session: requests.Session, label: str
) -> None:
    """GIVEN a run id holding '/' (outside the RunId pattern; the client percent-encodes it)
    WHEN any operation is called with it
    THEN 404 with the documented Error body, since Core View decodes the path before routing."""
    case = make_case(label, "a%2Fb")

    answer = case.call_and_validate(
        base_url=coreview_server.url, session=session, headers=AUTH, checks=CHECKS
    )

    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"


def test_a_count_written_with_a_fraction_of_zero_is_an_integer(
    coreview_server: ServerHandle, session: requests.Session
) -> None:
    """GIVEN a run header and a commit whose record count is written 0.0 (an integer to JSON
    Schema, which Schemathesis generates as valid data)
    WHEN sent
    THEN both are accepted and the run reads back with the count 0."""
    header = {**HEADER, "expected": {"records": 0.0, "totals": []}}

    for case in (
        make_case(PUT_RUN, "r1", header),
        make_case(COMMIT, "r1", {"records": 0.0, "totals": []}),
    ):
        answer = case.call_and_validate(
            base_url=coreview_server.url, session=session, headers=AUTH, checks=CHECKS
        )
        assert answer.status_code == 200, answer.text
    read_back("r1", coreview_server, session)

    run = coreview_server.store.run("r1")
    assert run is not None
    assert run["header"] == HEADER
    assert run["committed"]["received"] == {"records": 0, "totals": []}
