"""The Core View HTTP client (docs/core-view.openapi.yaml) on httpx.

Every request is idempotent by its address, so any request may be retried: 429 waits for
Retry-After; 5xx, timeouts and dropped connections back off exponentially with full jitter up
to a bound; any other 4xx fails at once with Core View's message. One ``httpx.Client`` is
shared by the threads of a part, so connections are reused.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from settlement.adapters.coreview.token import TokenSource
from settlement.domain.publishing import (
    CommitReceipt,
    CoreViewConflictError,
    CoreViewRejectedError,
    CoreViewUnavailableError,
    DeltaRecord,
    InvalidDeltaRecordError,
    RunFigures,
    RunHeader,
    encode_batch,
)

logger = logging.getLogger(__name__)

RETRYABLE_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry loop (tests use tiny delays).

    Attributes
    ----------
    max_attempts
        Attempts per request, the first included.
    base_delay, max_delay
        Full jitter: attempt n sleeps ``uniform(0, min(max_delay, base_delay * 2**n))``.
    max_retry_after
        Cap on a Retry-After Core View asks for (seconds).
    """

    max_attempts: int = 8
    base_delay: float = 0.2
    max_delay: float = 20.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def backoff(self, attempt: int) -> float:
        """Full-jitter delay before retry number ``attempt`` (0-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        return self.rng.uniform(0, ceiling)


class _BearerAuth(httpx.Auth):
    """Adds the token per request, so it never sits in the client's default headers."""

    def __init__(self, token: TokenSource) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "_BearerAuth(token=***)"

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = f"Bearer {self._token.get()}"
        yield request


class HttpCoreViewClient:
    """Core View over HTTP.

    Parameters
    ----------
    base_url
        ``https://core-view.example`` (paths ``/v1/…`` are appended).
    token
        Where the bearer token comes from.
    retry
        Retry bounds.
    max_in_flight
        Batches of one part sent concurrently.
    gzip_level
        Compression level of batch bodies (1 is fast and still shrinks JSON ~6x).
    timeout
        Seconds per request (connect, read, write).
    transport
        An httpx transport to use instead of the network (tests).
    """

    def __init__(
        self,
        base_url: str,
        token: TokenSource,
        *,
        retry: RetryPolicy | None = None,
        max_in_flight: int = 4,
        gzip_level: int = 1,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._retry = retry or RetryPolicy()
        self._max_in_flight = max_in_flight
        self._gzip_level = gzip_level
        self._http = httpx.Client(
            base_url=self._base_url,
            auth=_BearerAuth(token),
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_in_flight + 2, max_keepalive_connections=max_in_flight + 2
            ),
            headers={"User-Agent": "settlement-publisher/1"},
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"HttpCoreViewClient({self._base_url!r}, max_in_flight={self._max_in_flight})"

    @property
    def max_in_flight(self) -> int:
        return self._max_in_flight

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpCoreViewClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the contract
    def put_run(self, run_id: str, header: RunHeader) -> None:
        """``PUT /v1/runs/{run_id}`` (idempotent)."""
        body = json.dumps(header.to_payload(), separators=(",", ":")).encode()
        self._send(
            "PUT", f"/v1/runs/{quote(run_id, safe='')}", body, {"Content-Type": "application/json"}
        )

    def put_batch(self, run_id: str, part: int, seq: int, records: Sequence[DeltaRecord]) -> None:
        """``PUT /v1/runs/{run_id}/parts/{part}/batches/{seq}``, gzip-compressed (idempotent)."""
        body = gzip.compress(encode_batch(records), compresslevel=self._gzip_level, mtime=0)
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        self._send(
            "PUT", f"/v1/runs/{quote(run_id, safe='')}/parts/{part}/batches/{seq}", body, headers
        )

    def commit(self, run_id: str, summary: RunFigures) -> CommitReceipt:
        """``POST /v1/runs/{run_id}/commit``: Core View answers its own figures."""
        body = json.dumps(summary.to_payload(), separators=(",", ":")).encode()
        response = self._send(
            "POST",
            f"/v1/runs/{quote(run_id, safe='')}/commit",
            body,
            {"Content-Type": "application/json"},
        )
        try:
            figures = RunFigures.from_payload(response.json(), where="Core View commit answer")
        except (ValueError, InvalidDeltaRecordError) as error:
            raise CoreViewRejectedError(response.status_code, "bad_answer", str(error)) from None
        return CommitReceipt(run_id=run_id, figures=figures)

    def committed_figures(self, run_id: str) -> RunFigures | None:
        """``GET /v1/runs/{run_id}``: its commit answer (404, never announced: None)."""
        try:
            response = self._send("GET", f"/v1/runs/{quote(run_id, safe='')}", b"", {})
        except CoreViewRejectedError as error:
            if error.status == 404:
                return None
            raise
        committed = response.json().get("committed")
        if committed is None:
            return None
        return RunFigures.from_payload(committed["answer"], where="Core View's commit answer")

    # ------------------------------------------------------------------ retries
    def _send(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        last_problem, delay = "", 0.0
        for attempt in range(self._retry.max_attempts):
            if attempt:  # back off before a retry, never after the last attempt
                self._pause(delay, method, path, last_problem)
            try:
                response = self._http.request(method, path, content=body, headers=headers)
            except RETRYABLE_TRANSPORT_ERRORS as error:
                last_problem, delay = type(error).__name__, self._retry.backoff(attempt)
                continue
            if response.status_code < 300:
                return response
            if response.status_code == 429:
                last_problem = "429 too many requests"
                delay = self._retry_after(response, attempt)
                continue
            if response.status_code >= 500:
                last_problem = f"{response.status_code} server error"
                delay = self._retry.backoff(attempt)
                continue
            raise _rejection(response)
        raise CoreViewUnavailableError(
            f"{method} {path}: Core View still unavailable after "
            f"{self._retry.max_attempts} attempts (last: {last_problem})"
        )

    def _pause(self, seconds: float, method: str, path: str, problem: str) -> None:
        logger.warning("Core View %s %s: %s; retrying in %.3fs", method, path, problem, seconds)
        self._retry.sleep(seconds)

    def _retry_after(self, response: httpx.Response, attempt: int) -> float:
        """Retry-After in seconds (delta-seconds or an HTTP date), else the backoff."""
        value = response.headers.get("Retry-After", "").strip()
        seconds: float | None = None
        if value:
            try:
                seconds = float(value)
            except ValueError:
                try:
                    seconds = parsedate_to_datetime(value).timestamp() - time.time()
                except (TypeError, ValueError):
                    seconds = None
        if seconds is None or math.isnan(seconds):
            return self._retry.backoff(attempt)
        return min(max(seconds, 0.0), self._retry.max_retry_after)


def _rejection(response: httpx.Response) -> CoreViewRejectedError:
    """The error for a non-retryable answer, carrying Core View's code and message."""
    code, message = f"http_{response.status_code}", response.text[:500]
    try:
        document = response.json()
    except ValueError:
        document = None
    if isinstance(document, dict):
        code = str(document.get("error", code))
        message = str(document.get("message", message))
    error_type = CoreViewConflictError if response.status_code == 409 else CoreViewRejectedError
    return error_type(response.status_code, code, message)
