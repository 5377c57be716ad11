"""Retry timing and matching, Catch ordering, and Lambda-style errors."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

from state_machine.runner import LocalRunner, StateEvent, TaskFailed, as_lambda
from tests.unit.state_machine.helpers import FakeSleep, Scripted, one_task, resources


class ThrottledError(Exception):
    pass


class OtherError(Exception):
    pass


def ok(event: Any) -> dict[str, bool]:
    return {"ok": True}


def run_task(task: dict[str, Any], handler: Scripted, sleep: FakeSleep, **runner: Any) -> Any:
    then = {
        "Caught A": {"Type": "Pass", "End": True},
        "Caught B": {"Type": "Pass", "End": True},
    }
    definition = one_task(task, then=then)
    return LocalRunner(definition, resources=resources(work=handler), sleep=sleep, **runner).start(
        {"in": 1}, name="r"
    )


def test_backoff_sequence_with_cap() -> None:
    # GIVEN a retrier 2s x3 capped at 10s, and a task failing four times
    sleep = FakeSleep()
    retry = {
        "ErrorEquals": ["ThrottledError"],
        "IntervalSeconds": 2,
        "MaxAttempts": 5,
        "BackoffRate": 3.0,
        "MaxDelaySeconds": 10,
    }
    handler = Scripted(ok, failures=[ThrottledError()] * 4)
    # WHEN it runs THEN the delays are 2, 6, 10 (capped), 10 and the fifth attempt succeeds
    execution = run_task({"Retry": [retry]}, handler, sleep)
    assert execution.status == "SUCCEEDED"
    assert sleep.delays == [2.0, 6.0, 10.0, 10.0]


def test_defaults_are_one_second_doubling_three_attempts() -> None:
    sleep = FakeSleep()
    handler = Scripted(ok, failures=[ThrottledError()] * 4)
    execution = run_task({"Retry": [{"ErrorEquals": ["States.ALL"]}]}, handler, sleep)
    # THEN three retries (1, 2, 4 seconds) and then the error stands
    assert sleep.delays == [1.0, 2.0, 4.0]
    assert execution.error == "ThrottledError"
    assert len(handler.events) == 4


def test_max_attempts_zero_never_retries() -> None:
    sleep = FakeSleep()
    retry = [{"ErrorEquals": ["ThrottledError"], "MaxAttempts": 0}, {"ErrorEquals": ["States.ALL"]}]
    handler = Scripted(ok, failures=[ThrottledError()])
    # GIVEN the first matching retrier allows 0 attempts WHEN it fails THEN no later retrier applies
    execution = run_task({"Retry": retry}, handler, sleep)
    assert (execution.status, sleep.delays) == ("FAILED", [])


def test_full_jitter_draws_below_the_backoff() -> None:
    sleep = FakeSleep()
    retry = {
        "ErrorEquals": ["ThrottledError"],
        "IntervalSeconds": 4,
        "MaxAttempts": 2,
        "JitterStrategy": "FULL",
    }
    handler = Scripted(ok, failures=[ThrottledError()] * 2)
    run_task({"Retry": [retry]}, handler, sleep, rng=random.Random(7))
    expected = random.Random(7)
    # THEN each delay is uniform in [0, 4 * 2**n), drawn from the injected rng
    assert sleep.delays == [expected.uniform(0, 4.0), expected.uniform(0, 8.0)]


def test_catch_uses_the_first_matching_catcher_and_places_error_output() -> None:
    # GIVEN two catchers that both match (a named one first, then States.ALL)
    catch = [
        {
            "ErrorEquals": ["OtherError", "ThrottledError"],
            "ResultPath": "$.error",
            "Next": "Caught A",
        },
        {"ErrorEquals": ["States.ALL"], "Next": "Caught B"},
    ]
    handler = Scripted(ok, failures=[ThrottledError("slow down")])
    execution = run_task({"Catch": catch, "Next": "Caught B"}, handler, FakeSleep())
    # THEN the first one wins and the error object is merged into the original input
    assert execution.entered_states == ["Work", "Caught A"]
    assert execution.output == {
        "in": 1,
        "error": {
            "Error": "ThrottledError",
            "Cause": json.dumps(
                {"errorMessage": "slow down", "errorType": "ThrottledError"}, separators=(",", ":")
            ),
        },
    }


def test_catch_without_result_path_replaces_the_input() -> None:
    catch = [{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught B"}]
    handler = Scripted(ok, failures=[OtherError("x")])
    execution = run_task({"Catch": catch, "Next": "Caught A"}, handler, FakeSleep())
    # THEN States.TaskFailed matched the custom error and the output is just the error object
    assert execution.entered_states == ["Work", "Caught B"]
    assert execution.output["Error"] == "OtherError"


def test_runtime_errors_are_not_retried_or_caught() -> None:
    # GIVEN a task whose Parameters read a missing path, with catch-all Retry and Catch
    task = {
        "Parameters": {"x.$": "$.missing"},
        "Retry": [{"ErrorEquals": ["States.ALL"]}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught A"}],
        "Next": "Caught B",
    }
    sleep = FakeSleep()
    execution = run_task(task, Scripted(ok), sleep)
    # THEN it fails with States.Runtime, as on AWS
    assert (execution.error, sleep.delays) == ("States.Runtime", [])
    assert "$.missing" in (execution.cause or "")


def test_task_failed_raised_by_a_resolver_keeps_its_error_name() -> None:
    def concurrent(event: Any) -> Any:
        raise TaskFailed("Glue.ConcurrentRunsExceededException", "too many runs")

    catch = [{"ErrorEquals": ["Glue.ConcurrentRunsExceededException"], "Next": "Caught A"}]
    execution = run_task({"Catch": catch, "Next": "Caught B"}, Scripted(concurrent), FakeSleep())
    assert execution.entered_states == ["Work", "Caught A"]
    assert execution.output == {
        "Error": "Glue.ConcurrentRunsExceededException",
        "Cause": "too many runs",
    }


def test_as_lambda_turns_exceptions_and_unserialisable_results_into_task_failed() -> None:
    # GIVEN handlers that raise, and that return a Decimal
    def raises(event: Any) -> Any:
        raise ValueError("bad period")

    failures = []
    for handler in (raises, lambda event: {"amount": Decimal("1.00")}):
        try:
            as_lambda(handler)({})
        except TaskFailed as failed:
            failures.append((failed.error, failed.cause))
    # THEN the error is the class name (or Runtime.MarshalError) with Lambda's payload as cause
    assert failures[0] == ("ValueError", '{"errorMessage":"bad period","errorType":"ValueError"}')
    assert failures[1][0] == "Runtime.MarshalError"


def test_retry_on_a_map_reruns_the_whole_map() -> None:
    # GIVEN a Map whose second item fails once, with a retrier on the Map
    calls: list[Any] = []

    def flaky(event: Any) -> Any:
        calls.append(event)
        if event == 2 and calls.count(2) == 1:
            raise ThrottledError()
        return event * 10

    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "Retry": [{"ErrorEquals": ["ThrottledError"], "IntervalSeconds": 3}],
                "ItemProcessor": {
                    "StartAt": "T",
                    "States": {
                        "T": {
                            "Type": "Task",
                            "Resource": "arn:aws:lambda:r:1:function:f",
                            "End": True,
                        }
                    },
                },
                "End": True,
            }
        },
    }
    sleep = FakeSleep()
    execution = LocalRunner(definition, resources=resources(f=flaky), sleep=sleep).start(
        [1, 2], name="m"
    )
    # THEN the whole Map ran again after 3 seconds (item 1 twice) and succeeded
    assert execution.output == [10, 20]
    assert calls == [1, 2, 1, 2]
    assert sleep.delays == [3.0]


def test_branch_error_keeps_its_name_for_the_parallel_catch_and_events_tell_the_story() -> None:
    # GIVEN a Parallel whose second branch raises, caught by name on the Parallel state
    def refuse(event: Any) -> Any:
        raise OtherError("refused")

    branch = {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:r:1:function:f", "End": True}},
    }
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Fine", "States": {"Fine": {"Type": "Pass", "End": True}}},
                    branch,
                ],
                "Catch": [
                    {"ErrorEquals": ["OtherError"], "ResultPath": "$.failure", "Next": "Handled"}
                ],
                "Next": "Handled",
            },
            "Handled": {"Type": "Succeed"},
        },
    }
    events: list[StateEvent] = []
    execution = LocalRunner(
        definition, resources=resources(f=refuse), on_event=events.append
    ).start({"x": 1}, name="p")
    # THEN the original error name reached the Parallel's Catch
    assert execution.output["failure"]["Error"] == "OtherError"
    # AND the events show where each state sat and how it ended
    assert [(event.kind, event.state, event.scope) for event in events] == [
        ("entered", "Both", ""),
        ("entered", "Fine", "Both[0]"),
        ("succeeded", "Fine", "Both[0]"),
        ("entered", "T", "Both[1]"),
        ("failed", "T", "Both[1]"),
        ("caught", "Both", ""),
        ("exited", "Both", ""),
        ("entered", "Handled", ""),
        ("succeeded", "Handled", ""),
    ]
