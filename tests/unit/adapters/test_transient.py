"""Which failures the workflow's handlers name ``TransientError`` (the state machine retries it)."""

from __future__ import annotations

import sqlite3

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from settlement.adapters.transient import is_transient, transient_errors_named
from settlement.domain.publishing import CoreViewUnavailableError
from settlement.domain.run_report import TransientError


class Pg8000Error(Exception):
    """pg8000's server errors carry the server's fields (``C``: the SQLSTATE) as a dict."""


def pg_error(sqlstate: str) -> DBAPIError:
    server = {"S": "FATAL", "C": sqlstate, "M": "server said no"}
    return DBAPIError("SELECT 1", None, Pg8000Error(server))


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "PutObject")


TRANSIENT = {
    "connection refused": ConnectionRefusedError("refused"),
    "timeout": TimeoutError("timed out"),
    "pg8000 network error": InterfaceError("SELECT 1", None, Exception("network error")),
    "server shutting down (57P01)": pg_error("57P01"),
    "connection failure (08006)": pg_error("08006"),
    "serialization failure (40001)": pg_error("40001"),
    "SQLite file locked": OperationalError(
        "INSERT", None, sqlite3.OperationalError("database is locked")
    ),
    "S3 slow down (boto3)": client_error("SlowDown"),
    "S3 unavailable (boto3)": client_error("503"),
    "endpoint unreachable (boto3)": EndpointConnectionError(endpoint_url="https://s3"),
    "S3 slow down (pyarrow)": OSError(
        "When writing key 'runs/r1/x': AWS Error SLOW_DOWN during PutObject operation: reduce"
    ),
    "S3 answering 503 (pyarrow)": OSError(
        "AWS Error UNKNOWN (HTTP status 503) during HeadObject operation: unavailable"
    ),
}
NOT_TRANSIENT = {
    "a missing file": FileNotFoundError("runs/r1/calculation.json"),
    "S3 access denied (pyarrow)": OSError("AWS Error ACCESS_DENIED during GetObject operation: no"),
    "a unique key violated": IntegrityError("INSERT", None, Exception("duplicate key")),
    "SQLite without the table": OperationalError(
        "SELECT", None, sqlite3.OperationalError("no such table: runs")
    ),
    "a syntax error (42601)": pg_error("42601"),
    "S3 access denied (boto3)": client_error("AccessDenied"),
    "a bad value": ValueError("not a period: 2026-13"),
    "Core View down (its own, slower, Retry)": CoreViewUnavailableError("503 after 8 attempts"),
}


@pytest.mark.parametrize("error", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_outside_failures_a_retry_may_mend_are_transient(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize("error", NOT_TRANSIENT.values(), ids=NOT_TRANSIENT.keys())
def test_bad_input_bugs_and_refusals_are_not(error: Exception) -> None:
    assert not is_transient(error)


def test_a_handler_s_transient_failure_is_renamed_and_keeps_its_cause() -> None:
    # GIVEN a handler that meets a database fail-over
    failover = pg_error("57P01")

    @transient_errors_named
    def handle(event: dict[str, str]) -> dict[str, str]:
        raise failover

    # WHEN it runs THEN the state machine sees TransientError, naming what happened
    with pytest.raises(TransientError, match=r"^DBAPIError: .*server said no") as raised:
        handle({})
    assert raised.value.__cause__ is failover


def test_a_handler_s_other_failures_and_answers_pass_unchanged() -> None:
    @transient_errors_named
    def handle(event: dict[str, str]) -> dict[str, str]:
        if event.get("bad"):
            raise ValueError("bad input")
        return {"ok": "yes"}

    assert handle({}) == {"ok": "yes"}
    with pytest.raises(ValueError, match="bad input"):
        handle({"bad": "1"})
