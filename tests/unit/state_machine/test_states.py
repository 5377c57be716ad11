"""Each state type and each input/output field on small definitions."""

from __future__ import annotations

from typing import Any

from state_machine.runner import LocalRunner, TaskResources
from tests.fixtures.asl import fixture_text
from tests.unit.state_machine.helpers import FakeSleep, one_task, resources


def run(definition: dict[str, Any], data: Any, **handlers: Any) -> Any:
    runner = LocalRunner(definition, resources=resources(**handlers), sleep=FakeSleep())
    return runner.start(data, name="test")


def pass_state(**fields: Any) -> dict[str, Any]:
    return {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True, **fields}}}


def test_pass_result_goes_to_result_path_and_output_path_selects() -> None:
    # GIVEN a Pass with a Result under $.added and an OutputPath
    definition = pass_state(Result={"x": 1}, ResultPath="$.added.deep", OutputPath="$.added")
    # WHEN it runs THEN the result is nested into the input and then selected
    assert run(definition, {"keep": True}).output == {"deep": {"x": 1}}


def test_pass_parameters_with_nested_dynamic_keys_and_input_path() -> None:
    # GIVEN Parameters with nested .$ keys, lists and literals, after an InputPath
    definition = pass_state(
        InputPath="$.run",
        Parameters={
            "id.$": "$.id",
            "nested": {"first.$": "$.items[0]", "all.$": "$.items", "name.$": "$$.Execution.Name"},
            "list": [{"second.$": "$.items[1].v"}, 7],
            "literal": "as-is",
        },
    )
    output = run(definition, {"run": {"id": "r1", "items": [{"v": 1}, {"v": 2}]}}).output
    # THEN every .$ key is resolved (including inside lists) and renamed without the suffix
    assert output == {
        "id": "r1",
        "nested": {"first": {"v": 1}, "all": [{"v": 1}, {"v": 2}], "name": "test"},
        "list": [{"second": 2}, 7],
        "literal": "as-is",
    }


def test_result_path_null_keeps_the_input_and_null_paths_give_empty_objects() -> None:
    # GIVEN ResultPath null on a task, and a Pass with InputPath null
    task = one_task({"ResultPath": None})
    assert run(task, {"a": 1}, work=lambda event: {"ignored": True}).output == {"a": 1}
    assert run(pass_state(InputPath=None), {"a": 1}).output == {}
    assert run(pass_state(OutputPath=None), {"a": 1}).output == {}


def test_task_result_selector_and_wildcard_path() -> None:
    # GIVEN a task whose ResultSelector picks fields with a [*] path
    task = one_task({"ResultSelector": {"ids.$": "$.rows[*].id"}, "ResultPath": "$.result"})
    rows = {"rows": [{"id": "a"}, {"id": "b"}]}
    # WHEN it runs THEN the selection is a list and lands in ResultPath
    output = run(task, {"in": 1}, work=lambda event: rows).output
    assert output == {"in": 1, "result": {"ids": ["a", "b"]}}


def test_missing_input_path_is_a_runtime_error_naming_the_state_and_field() -> None:
    # GIVEN an InputPath that does not exist in the input
    execution = run(pass_state(InputPath="$.absent"), {"a": 1})
    # THEN the execution fails with States.Runtime naming the state, field and path
    assert execution.status == "FAILED"
    assert execution.error == "States.Runtime"
    assert "'P'" in (execution.cause or "")
    assert "InputPath" in (execution.cause or "")
    assert "$.absent" in (execution.cause or "")


def test_wait_uses_seconds_and_seconds_path_through_the_injected_sleep() -> None:
    # GIVEN two Wait states WHEN run THEN the fake sleep receives both durations
    sleep = FakeSleep()
    definition = {
        "StartAt": "W1",
        "States": {
            "W1": {"Type": "Wait", "Seconds": 5, "Next": "W2"},
            "W2": {"Type": "Wait", "SecondsPath": "$.pause", "End": True},
        },
    }
    runner = LocalRunner(definition, resources=resources(), sleep=sleep)
    assert runner.start({"pause": 2}, name="w").output == {"pause": 2}
    assert sleep.delays == [5.0, 2.0]


def test_fail_with_literal_and_path_error_and_cause() -> None:
    # GIVEN Fail states with literals and with ErrorPath/CausePath
    literal = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Bad", "Cause": "why"}}}
    by_path = {
        "StartAt": "F",
        "States": {"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}},
    }
    first, second = run(literal, {}), run(by_path, {"e": "E1", "c": "C1"})
    # THEN the execution fails with those names
    assert (first.status, first.error, first.cause) == ("FAILED", "Bad", "why")
    assert (second.error, second.cause) == ("E1", "C1")


def test_no_matching_choice_without_default_fails() -> None:
    # GIVEN a Choice whose only rule does not match and no Default
    definition = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "S"}],
            },
            "S": {"Type": "Succeed"},
        },
    }
    # THEN States.NoChoiceMatched; a missing variable is States.Runtime
    assert run(definition, {"n": 2}).error == "States.NoChoiceMatched"
    assert run(definition, {}).error == "States.Runtime"
    assert run(definition, {"n": 1}).status == "SUCCEEDED"


def test_map_item_selector_sees_context_item_index_and_value() -> None:
    # GIVEN a Map with ItemSelector using $$.Map.Item and a nested Pass
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {
                    "i.$": "$$.Map.Item.Index",
                    "v.$": "$$.Map.Item.Value",
                    "run.$": "$.run",
                },
                "ItemProcessor": {
                    "StartAt": "Inner",
                    "States": {"Inner": {"Type": "Pass", "End": True}},
                },
                "ResultPath": "$.results",
                "End": True,
            }
        },
    }
    output = run(definition, {"items": ["a", "b"], "run": "r"}).output
    # THEN each iteration got its own index/value and the results are in order
    assert output["results"] == [{"i": 0, "v": "a", "run": "r"}, {"i": 1, "v": "b", "run": "r"}]


def test_map_with_legacy_iterator_and_parameters() -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "Parameters": {"x.$": "$$.Map.Item.Value"},
                "Iterator": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }
    assert run(definition, [1, 2]).output == [{"x": 1}, {"x": 2}]


def test_map_items_must_be_an_array() -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }
    assert run(definition, {"not": "a list"}).error == "States.Runtime"


def test_parallel_fixture_runs_branches_intrinsics_and_choice_operators() -> None:
    # GIVEN the parallel fixture with a counting Lambda
    sleep = FakeSleep()
    runner = LocalRunner(
        fixture_text("parallel_pass"),
        resources=TaskResources(lambdas={"count": lambda event: {"count": len(event["periods"])}}),
        substitutions={"CountFunction": "count"},
        sleep=sleep,
    )
    # WHEN it runs on one period
    execution = runner.start(
        {"periods": ["2026-10"], "request_json": '{"pause": 3, "dry_run": false}'}, name="p"
    )
    # THEN both branches ran (the Wait used SecondsPath) and Succeed applied its OutputPath
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output == {"count": 1, "kind": "month"}
    assert sleep.delays == [3.0]
    assert execution.entered_states == [
        "Prepare",
        "Both",
        "Pause",
        "Count periods",
        "Classify",
        "Month",
        "Done?",
        "Done",
    ]


def test_context_object_fields() -> None:
    # GIVEN a Pass reading the context object WHEN it runs THEN the fields are present
    definition = pass_state(
        Parameters={
            "id.$": "$$.Execution.Id",
            "name.$": "$$.Execution.Name",
            "input.$": "$$.Execution.Input",
            "state.$": "$$.State.Name",
        }
    )
    output = run(definition, {"a": 1}).output
    assert output["id"].endswith(":execution:local:test")
    assert (output["name"], output["input"], output["state"]) == ("test", {"a": 1}, "P")


def test_task_result_must_be_json() -> None:
    # GIVEN a raw service resource returning something JSON cannot hold (a set)
    definition = one_task({"Resource": "custom"})
    runner = LocalRunner(
        definition, resources=TaskResources(services={"custom": lambda event: {1, 2}})
    )
    # THEN the task fails with States.Runtime instead of leaking a Python object
    assert runner.start({}, name="x").error == "States.Runtime"
