"""Which failures of the outside world are worth retrying.

The state machine retries an error named ``TransientError`` (spec §8: every task has Retry for
transient errors), but the adapters fail with their libraries' own errors: SQLAlchemy's for the
database, pyarrow's and botocore's for S3. :func:`transient_errors_named` renames the transient
ones at the edge of each workflow handler, so a database fail-over or an S3 slow-down is retried
and a bad input, a bug or a refused request is not.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar

from settlement.domain.run_report import TransientError

Handler = TypeVar("Handler", bound=Callable[..., Any])

# PostgreSQL SQLSTATEs of a connection, a server going away, or a conflict a retry resolves.
_TRANSIENT_SQLSTATE = re.compile(r"^(08...|40001|40P01|53300|57P0[123])$")
_TRANSIENT_SQLITE_TEXT = re.compile(r"database is locked|database table is locked|disk I/O error")
# What pyarrow's S3 file system says when S3 throttles, errs or the network drops.
# (arrow/filesystem/s3_internal.h: "AWS Error <type> during <operation> operation: …").
_TRANSIENT_S3_TEXT = re.compile(
    r"AWS Error (SLOW_DOWN|THROTTLING|SERVICE_UNAVAILABLE|INTERNAL_FAILURE|NETWORK_CONNECTION|"
    r"REQUEST_TIMEOUT|UNKNOWN \(HTTP status 5\d\d\)) during "
)
_TRANSIENT_AWS_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
        "500",
        "502",
        "503",
        "504",
    }
)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is worth retrying as it is (the same request may well succeed).

    Only the error itself is judged, not what it was raised from: the project's own errors
    (``CoreViewUnavailableError``, which the state machine retries on a slower schedule, or a
    refused input) keep their names.
    """
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    if _is_database_error(error):
        return _database_error_is_transient(error)
    if _is_botocore_error(error):
        return _botocore_error_is_transient(error)
    return type(error) is OSError and bool(_TRANSIENT_S3_TEXT.search(str(error)))


def transient_errors_named(handle: Handler) -> Handler:
    """Re-raise a transient failure of ``handle`` as ``TransientError``, the rest as they are."""

    @functools.wraps(handle)
    def named(*args: Any, **kwargs: Any) -> Any:
        try:
            return handle(*args, **kwargs)
        except Exception as error:
            if is_transient(error):
                raise TransientError(f"{type(error).__name__}: {error}") from error
            raise

    return named  # type: ignore[return-value]


def _is_database_error(error: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError

    return isinstance(error, DBAPIError)


def _database_error_is_transient(error: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    assert isinstance(error, DBAPIError)
    if error.connection_invalidated or isinstance(error, InterfaceError):
        return True  # pg8000 reports network errors as InterfaceError
    if isinstance(error, OperationalError):
        # PEP 249: the database's operation failed, not the statement; but SQLite also says
        # OperationalError for "no such table" and syntax errors, which no retry mends.
        driver = type(error.orig).__module__
        return driver != "sqlite3" or bool(_TRANSIENT_SQLITE_TEXT.search(str(error.orig)))
    return bool(_TRANSIENT_SQLSTATE.match(_sqlstate(error.orig)))


def _sqlstate(driver_error: BaseException | None) -> str:
    """pg8000 puts the server's error fields, ``C`` the SQLSTATE, in its first argument."""
    fields = driver_error.args[0] if driver_error is not None and driver_error.args else None
    return str(fields.get("C", "")) if isinstance(fields, dict) else ""


def _is_botocore_error(error: BaseException) -> bool:
    return type(error).__module__.startswith("botocore.")


def _botocore_error_is_transient(error: BaseException) -> bool:
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    network = (
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )
    if isinstance(error, network):
        return True
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "")) in _TRANSIENT_AWS_CODES
    return False
