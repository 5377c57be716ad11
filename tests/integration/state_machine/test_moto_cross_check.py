"""The local runner and moto's independent ASL interpreter agree on path, output and errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from state_machine.runner import Execution, LocalRunner, TaskFailed, TaskResources
from tests.fixtures.asl import fixture_text, function_arn
from tests.support.moto_sfn import MotoExecution, run_on_moto

Handlers = dict[str, Callable[[Any], Any]]
PUBLISH_FLOW = {
    "ValidateFunction": "validate",
    "PublishFunction": "publish",
    "RecordFailureArn": function_arn("record_failure"),
}


class TransientError(Exception):
    pass


class PeriodsHeldError(Exception):
    pass


def substitute(text: str, substitutions: dict[str, str]) -> str:
    for key, value in substitutions.items():
        text = text.replace("${" + key + "}", value)
    return text


def run_both(
    fixture: str,
    substitutions: dict[str, str],
    make_handlers: Callable[[], Handlers],
    data: Any,
    make_jobs: Callable[[], Handlers] = dict,
) -> tuple[Execution, MotoExecution]:
    """Run the fixture on both interpreters, each with fresh (stateful) handlers."""
    text = substitute(fixture_text(fixture), substitutions)
    resources = TaskResources(lambdas=make_handlers(), glue_jobs=make_jobs())
    local = LocalRunner(text, resources=resources, sleep=lambda seconds: None).start(
        data, name="x1"
    )
    moto = run_on_moto(text, make_handlers(), make_jobs(), input=data, name="x1")
    return local, moto


def fails_first(
    times: int, error: Exception, handler: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    calls = []

    def flaky(event: Any) -> Any:
        calls.append(event)
        if len(calls) <= times:
            raise error
        return handler(event)

    return flaky


def publish_handlers(validate: Callable[[Any], Any] | None = None) -> Handlers:
    return {
        "validate": validate
        or (lambda event: {"run_id": f"run-{event['execution']}", "parts": [0, 1, 2]}),
        "publish": lambda event: {"part": event["part"], "index": event["index"], "acked": True},
        "record_failure": lambda event: {"recorded": event["error"]},
    }


def assert_same(local: Execution, moto: MotoExecution) -> None:
    assert (local.status, local.error) == (moto.status, moto.error)
    assert local.entered_states == moto.entered_states
    assert local.output == moto.output
    if local.cause is not None or moto.cause is not None:
        assert json.loads(local.cause or "") == json.loads(moto.cause or "")


def test_publish_flow_happy_path_agrees() -> None:
    # GIVEN the publish flow with three parts WHEN run on both interpreters
    local, moto = run_both("publish_flow", PUBLISH_FLOW, publish_handlers, {"periods": ["2026-10"]})
    # THEN they take the same path through the Choice and the Map and produce the same output
    assert local.status == "SUCCEEDED"
    assert_same(local, moto)


def test_retry_that_succeeds_on_the_second_attempt_agrees() -> None:
    # GIVEN validation failing once with a retried error
    def handlers() -> Handlers:
        base = publish_handlers()
        return {**base, "validate": fails_first(1, TransientError("busy"), base["validate"])}

    local, moto = run_both("publish_flow", PUBLISH_FLOW, handlers, {"periods": ["2026-10"]})
    # THEN both succeed after the retry, along the same path
    assert local.status == "SUCCEEDED"
    assert_same(local, moto)
    assert sum(event["type"] == "TaskFailed" for event in moto.events) == 1


def test_catch_to_fail_path_agrees_on_error_and_cause() -> None:
    # GIVEN validation raising an error no retrier covers
    def handlers() -> Handlers:
        held = PeriodsHeldError("2026-10 is held by run r0")
        return publish_handlers(fails_first(99, held, lambda event: None))

    local, moto = run_both("publish_flow", PUBLISH_FLOW, handlers, {"periods": ["2026-10"]})
    # THEN both record the failure and fail with the Lambda error name and payload as cause
    assert (local.status, local.error) == ("FAILED", "PeriodsHeldError")
    assert local.entered_states == ["Validate input", "Record failure", "Settlement failed"]
    assert_same(local, moto)


def test_parallel_intrinsics_and_choices_agree() -> None:
    # GIVEN the Parallel fixture (branches run concurrently on moto, one after another locally)
    def handlers() -> Handlers:
        return {"count": lambda event: {"count": len(event["periods"])}}

    data = {
        "periods": ["2026-07", "2026-08", "2026-09"],
        "request_json": '{"pause": 0, "dry_run": true}',
    }
    local, moto = run_both("parallel_pass", {"CountFunction": "count"}, handlers, data)
    # THEN outputs match; the entered states match as a multiset (branch order may interleave)
    assert local.status == moto.status == "SUCCEEDED"
    assert local.output == moto.output == {"count": 3, "kind": "quarter"}
    assert sorted(local.entered_states) == sorted(moto.entered_states)


@pytest.mark.parametrize(
    ("outcome", "expected_status", "expected_states"),
    [
        ("ok", "SUCCEEDED", ["Calculate commissions", "Calculated"]),
        ("busy once", "SUCCEEDED", ["Calculate commissions", "Calculated"]),
        ("crash", "FAILED", ["Calculate commissions", "Calculation failed"]),
    ],
)
def test_glue_job_run_agrees(
    outcome: str, expected_status: str, expected_states: list[str]
) -> None:
    # GIVEN a Glue .sync task whose job succeeds, is refused once for concurrency, or crashes
    def jobs() -> Handlers:
        def crash(arguments: Any) -> None:
            raise ValueError("executor lost")

        def ok(arguments: Any) -> None:
            return None

        busy = TaskFailed("Glue.ConcurrentRunsExceededException", "Concurrent runs exceeded")
        job = {"ok": ok, "busy once": fails_first(1, busy, ok), "crash": crash}[outcome]
        return {"calc": job}

    data = {"run_id": "r1", "periods": ["2026-10"]}
    local, moto = run_both("glue_job", {"CalculationJob": "calc"}, dict, data, make_jobs=jobs)
    # THEN both take the same path to the same result
    assert local.status == expected_status
    assert local.entered_states == moto.entered_states == expected_states
    assert (local.output, local.error, local.cause) == (moto.output, moto.error, moto.cause)
