"""The cross-check fixture ``publish_flow`` on the local runner: paths, retry, catch, events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from state_machine.runner import DefinitionError, LocalRunner, StateEvent
from tests.fixtures.asl import fixture_text, function_arn
from tests.unit.state_machine.helpers import FakeSleep, Scripted, resources

SUBSTITUTIONS = {
    "ValidateFunction": "validate",
    "PublishFunction": "publish",
    "RecordFailureArn": function_arn("record_failure"),
}


class TransientError(Exception):
    pass


class PeriodsHeldError(Exception):
    pass


def validate(event: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": f"run-{event['execution']}", "parts": [0, 1, 2]}


def publish(event: dict[str, Any]) -> dict[str, Any]:
    return {"part": event["part"], "index": event["index"], "acked": True}


def make_runner(
    validate_handler: Any = validate,
    *,
    sleep: FakeSleep | None = None,
    events: list[StateEvent] | None = None,
) -> tuple[LocalRunner, Scripted]:
    recorder = Scripted(lambda event: None)
    runner = LocalRunner(
        fixture_text("publish_flow"),
        resources=resources(validate=validate_handler, publish=publish, record_failure=recorder),
        substitutions=SUBSTITUTIONS,
        sleep=sleep or FakeSleep(),
        on_event=events.append if events is not None else None,
    )
    return runner, recorder


def test_happy_path_publishes_every_part_in_order() -> None:
    # GIVEN the flow with three parts to publish
    runner, _ = make_runner()
    # WHEN it runs
    execution = runner.start({"periods": ["2026-10"]}, name="e1")
    # THEN every state ran in order, the Map saw index and value, and the summary used intrinsics
    assert execution.status == "SUCCEEDED"
    assert execution.entered_states == [
        "Validate input",
        "Anything to publish?",
        "Publish parts",
        "Publish part",
        "Publish part",
        "Publish part",
        "Summarise",
    ]
    assert execution.output == {
        "run_id": "run-e1",
        "parts": 3,
        "message": "run run-e1 published 3 parts",
    }


def test_dry_run_takes_the_skip_branch() -> None:
    # GIVEN a dry run WHEN it runs THEN the Choice's And rule skips publishing
    runner, _ = make_runner()
    execution = runner.start({"periods": ["2026-10"], "dry_run": True}, name="e2")
    assert execution.entered_states == [
        "Validate input",
        "Anything to publish?",
        "Skip publishing",
        "Summarise",
    ]
    assert execution.output["parts"] == 0


def test_transient_error_is_retried_once_after_the_interval() -> None:
    # GIVEN validation failing once with a transient error
    sleep = FakeSleep()
    flaky = Scripted(validate, failures=[TransientError("database busy")])
    runner, _ = make_runner(flaky, sleep=sleep)
    # WHEN it runs THEN the second attempt succeeds after one 1-second delay
    execution = runner.start({"periods": ["2026-10"]}, name="e3")
    assert execution.status == "SUCCEEDED"
    assert sleep.delays == [1.0]
    assert len(flaky.events) == 2


def test_handler_error_is_caught_recorded_and_fails_with_lambda_cause() -> None:
    # GIVEN validation raising a domain error that no retrier covers
    events: list[StateEvent] = []
    failing = Scripted(validate, failures=[PeriodsHeldError("2026-10 is held by run r0")])
    runner, recorder = make_runner(failing, events=events)
    # WHEN it runs
    execution = runner.start({"periods": ["2026-10"]}, name="e4")
    # THEN the Catch routes to the recorder and the Fail state re-raises the Lambda error
    assert execution.status == "FAILED"
    assert execution.entered_states == ["Validate input", "Record failure", "Settlement failed"]
    assert execution.error == "PeriodsHeldError"
    assert json.loads(execution.cause or "") == {
        "errorMessage": "2026-10 is held by run r0",
        "errorType": "PeriodsHeldError",
    }
    assert recorder.events == [
        {"execution": "e4", "error": "PeriodsHeldError", "cause": execution.cause}
    ]
    kinds = [(event.kind, event.state) for event in events]
    assert ("caught", "Validate input") in kinds
    assert kinds[-1] == ("failed", "Settlement failed")


def test_exhausted_retries_fall_through_to_the_catch() -> None:
    # GIVEN validation failing transiently three times (MaxAttempts is 2)
    sleep = FakeSleep()
    failing = Scripted(validate, failures=[TransientError("busy")] * 3)
    runner, _ = make_runner(failing, sleep=sleep)
    # WHEN it runs THEN it retried twice with backoff and then took the Catch
    execution = runner.start({"periods": ["2026-10"]}, name="e5")
    assert sleep.delays == [1.0, 2.0]
    assert execution.error == "TransientError"
    assert execution.entered_states[-1] == "Settlement failed"


def test_missing_substitution_is_refused() -> None:
    # GIVEN no value for ${PublishFunction} WHEN loading THEN the placeholder is named
    with pytest.raises(DefinitionError, match="PublishFunction"):
        LocalRunner(
            fixture_text("publish_flow"),
            resources=resources(),
            substitutions={"ValidateFunction": "v", "RecordFailureArn": "arn"},
        )
