"""The HTTP client's retry rules and token hygiene, against an in-process httpx transport."""

from __future__ import annotations

import gzip
import json
import logging
import random
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import boto3
import httpx
import pytest
from moto import mock_aws

from settlement.adapters.coreview import (
    CoreViewRejectedError,
    CoreViewUnavailableError,
    HttpCoreViewClient,
    RetryPolicy,
    TokenSource,
    connect,
)
from settlement.config import load_settings
from settlement.domain.publishing import RunFigures, RunHeader, encode_batch
from tests.fixtures.coreview import make_delta_records

SECRET = "s3cr3t-token-value-9c2b"

# One scripted reply: (status, headers, JSON body), or an exception the transport raises.
Answer = tuple[int, Mapping[str, str], Mapping[str, object]] | Exception


class ScriptedCoreView:
    """Answers requests from a script of (status, headers, body) or exceptions, in order."""

    def __init__(self, *answers: Answer):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        status, headers, body = answer
        return httpx.Response(status, headers=headers, json=body)


def client_for(
    script: ScriptedCoreView, sleeps: list[float], attempts: int = 5
) -> HttpCoreViewClient:
    retry = RetryPolicy(
        max_attempts=attempts,
        base_delay=0.1,
        max_delay=0.4,
        sleep=sleeps.append,
        rng=random.Random(1),
    )
    return HttpCoreViewClient(
        "http://core-view.test",
        TokenSource(SECRET),
        retry=retry,
        transport=httpx.MockTransport(script),
    )


OK: Answer = (200, {}, {"created": True})


def test_batch_is_gzip_json_with_bearer_token() -> None:
    """GIVEN records WHEN put THEN one gzip JSON PUT to the batch address with the token."""
    script, records = ScriptedCoreView(OK), list(make_delta_records(3))

    client_for(script, []).put_batch("run 1", 2, 7, records)

    (request,) = script.requests
    assert (request.method, request.url.raw_path) == ("PUT", b"/v1/runs/run%201/parts/2/batches/7")
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert gzip.decompress(request.content) == encode_batch(records)


@pytest.mark.parametrize(
    "failure",
    [
        (503, {}, {"error": "unavailable", "message": "x"}),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("peer closed connection"),
        httpx.ConnectError("refused"),
    ],
)
def test_transient_failures_are_retried_with_bounded_full_jitter(
    failure: Answer,
) -> None:
    """GIVEN three transient failures then success WHEN put THEN 4 attempts and jittered
    sleeps within min(max_delay, base * 2**n)."""
    script = ScriptedCoreView(failure, failure, failure, OK)
    sleeps: list[float] = []

    client_for(script, sleeps).put_run("r1", _header())

    assert len(script.requests) == 4
    assert len(sleeps) == 3
    assert all(0 <= s <= bound for s, bound in zip(sleeps, (0.1, 0.2, 0.4), strict=True))


def test_retries_are_bounded() -> None:
    """GIVEN Core View always 502 WHEN put THEN CoreViewUnavailableError after max_attempts,
    with a back-off between attempts and none after the last."""
    script = ScriptedCoreView((502, {}, {"error": "bad_gateway", "message": "x"}))
    sleeps: list[float] = []

    with pytest.raises(CoreViewUnavailableError, match=re.escape("after 5 attempts (last: 502")):
        client_for(script, sleeps).put_run("r1", _header())
    assert len(script.requests) == 5
    assert len(sleeps) == 4


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("2", 2.0), ("0.25", 0.25), ("999", 60.0)],
)
def test_429_waits_for_retry_after(retry_after: str, expected: float) -> None:
    """GIVEN a 429 with Retry-After WHEN put THEN the client sleeps that long (capped)."""
    too_many = (429, {"Retry-After": retry_after}, {"error": "too_many_requests", "message": "x"})
    script = ScriptedCoreView(too_many, OK)
    sleeps: list[float] = []

    client_for(script, sleeps).put_run("r1", _header())

    assert sleeps == [expected]


def test_a_retry_after_that_is_not_a_number_of_seconds_falls_back_to_the_backoff() -> None:
    """GIVEN a 429 with Retry-After "nan" WHEN put THEN the client backs off as usual (sleeping
    NaN seconds would have raised) and the retry succeeds."""
    too_many = (429, {"Retry-After": "nan"}, {"error": "too_many_requests", "message": "x"})
    script = ScriptedCoreView(too_many, OK)
    sleeps: list[float] = []

    client_for(script, sleeps).put_run("r1", _header())

    assert len(sleeps) == 1
    assert 0 <= sleeps[0] <= 0.1  # the first backoff: uniform(0, base_delay)


def test_429_with_an_http_date() -> None:
    """GIVEN Retry-After as an HTTP date 3 s ahead WHEN put THEN the sleep is about 3 s."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    script = ScriptedCoreView((429, {"Retry-After": when}, {}), OK)
    sleeps: list[float] = []

    client_for(script, sleeps).put_run("r1", _header())

    assert 1.5 < sleeps[0] <= 3.0


def test_other_4xx_fail_at_once_with_core_views_message() -> None:
    """GIVEN a 422 WHEN put THEN no retry and the error carries Core View's code and message."""
    refusal: Answer = (
        422,
        {},
        {"error": "invalid_record", "message": "records[3].delta is not a decimal"},
    )
    script = ScriptedCoreView(refusal)
    sleeps: list[float] = []

    expected = re.escape("invalid_record: records[3].delta")
    with pytest.raises(CoreViewRejectedError, match=expected) as caught:
        client_for(script, sleeps).put_batch("r1", 0, 0, list(make_delta_records(1)))

    assert (caught.value.status, len(script.requests), sleeps) == (422, 1, [])


def test_commit_answers_core_views_figures() -> None:
    """GIVEN Core View answering its figures WHEN committing THEN the receipt holds them."""
    answer = {
        "run_id": "r1",
        "records": 2,
        "totals": [
            {"currency": "EUR", "base_delta": "1.00", "bonus_delta": "0.50", "delta": "1.50"}
        ],
    }
    script = ScriptedCoreView((200, {}, answer))

    receipt = client_for(script, []).commit("r1", RunFigures(2))

    assert receipt.figures == RunFigures.from_payload(answer)
    assert json.loads(script.requests[0].content) == {"records": 2, "totals": []}


def test_token_never_reaches_logs_reprs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    """GIVEN retries, a refusal and DEBUG logging WHEN publishing THEN the token appears
    nowhere: not in any log record, repr, or exception message."""
    caplog.set_level(logging.DEBUG)
    refusal: Answer = (400, {}, {"error": "bad", "message": "no"})
    script = ScriptedCoreView((503, {}, {}), httpx.ReadTimeout("t"), refusal)
    client = client_for(script, [])

    with pytest.raises(CoreViewRejectedError) as caught:
        client.put_batch("r1", 0, 0, list(make_delta_records(1)))

    settings = load_settings(".", coreview_url="http://x", coreview_token=SECRET)
    seen = [
        caplog.text,
        repr(client),
        repr(settings),
        repr(connect(settings)),
        str(caught.value),
        repr(caught.value),
        repr(TokenSource(SECRET)),
    ]
    assert len(caplog.records) >= 2
    assert not [text for text in seen if SECRET in text]


def test_a_trailing_line_break_of_the_token_is_trimmed() -> None:
    """GIVEN a token pasted with its line break WHEN the client sends THEN the token is sent."""
    script = ScriptedCoreView(OK)
    client = HttpCoreViewClient(
        "http://cv.test", TokenSource(f"{SECRET}\n"), transport=httpx.MockTransport(script)
    )
    client.put_run("r1", _header())
    assert script.requests[0].headers["authorization"] == f"Bearer {SECRET}"


@pytest.mark.parametrize("stored", [f"{SECRET}\r\nX-Injected: 1", f"{SECRET} {SECRET}"])
def test_a_token_a_header_cannot_carry_is_refused_without_showing_it(stored: str) -> None:
    """GIVEN a configured token with a line break or a space inside WHEN the client sends
    THEN it refuses before any request, naming where the token came from, never the token
    (the HTTP library's own error would have quoted the whole header)."""
    script = ScriptedCoreView(OK)
    client = HttpCoreViewClient(
        "http://cv.test", TokenSource(stored), transport=httpx.MockTransport(script)
    )
    with pytest.raises(ValueError, match="coreview_token holds characters") as refused:
        client.put_run("r1", _header())
    assert SECRET not in str(refused.value)
    assert script.requests == []


def test_token_from_secrets_manager_is_fetched_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN the token in Secrets Manager (JSON) WHEN the client sends THEN it uses it,
    fetched on first use only."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    with mock_aws():
        source = TokenSource("ignored-local-token", "settlement/coreview-token")
        secrets = boto3.client("secretsmanager", region_name="eu-central-1")
        secrets.create_secret(
            Name="settlement/coreview-token", SecretString=json.dumps({"token": SECRET})
        )
        script = ScriptedCoreView(OK)
        client = HttpCoreViewClient("http://cv.test", source, transport=httpx.MockTransport(script))

        client.put_run("r1", _header())
        client.put_run("r1", _header())

    assert {r.headers["authorization"] for r in script.requests} == {f"Bearer {SECRET}"}


def _header() -> RunHeader:
    return RunHeader(("2026-10",), RunFigures(0))
