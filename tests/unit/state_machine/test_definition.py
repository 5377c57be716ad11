"""Unsupported or malformed definitions are refused at load time, naming the state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from state_machine.runner import DefinitionError, LocalRunner
from tests.unit.state_machine.helpers import resources


def load(states: dict[str, Any], **top: Any) -> LocalRunner:
    return LocalRunner(
        {"StartAt": next(iter(states)), "States": states, **top}, resources=resources()
    )


PASS_END: dict[str, Any] = {"Type": "Pass", "End": True}


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"Type": "Sleep", "End": True}, "unsupported state type 'Sleep'"),
        ({"Type": "Pass", "End": True, "Assign": {"x": 1}}, "unsupported Pass state field"),
        ({"Type": "Pass", "End": True, "Parameters": {"x.$": "$..deep"}}, "recursive descent"),
        (
            {"Type": "Pass", "End": True, "Parameters": {"x.$": "States.Hash($, 'MD5')"}},
            "States.Hash",
        ),
        ({"Type": "Pass", "End": True, "OutputPath": "$.a[?(@.b)]"}, "unsupported JSONPath"),
        ({"Type": "Pass", "End": True, "ResultPath": "$.a[*]"}, "reference path"),
        ({"Type": "Pass"}, "exactly one of Next or End"),
        ({"Type": "Pass", "Next": "Nowhere"}, "unknown state 'Nowhere'"),
        ({"Type": "Wait", "Timestamp": "2026-01-01T00:00:00Z", "End": True}, "Timestamp"),
        ({"Type": "Task", "End": True}, "needs a Resource"),
        (
            {
                "Type": "Task",
                "Resource": "r",
                "End": True,
                "Retry": [{"ErrorEquals": ["States.ALL", "X"]}],
            },
            "States.ALL must appear alone",
        ),
        (
            {
                "Type": "Task",
                "Resource": "r",
                "End": True,
                "Retry": [{"ErrorEquals": ["X"], "Jitter": 1}],
            },
            "unsupported Retry field",
        ),
        (
            {
                "Type": "Choice",
                "Choices": [{"Variable": "$.a", "StringContains": "x", "Next": "S"}],
            },
            "StringContains",
        ),
        (
            {
                "Type": "Map",
                "End": True,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED"},
                    "StartAt": "I",
                    "States": {"I": PASS_END},
                },
            },
            "inline Map",
        ),
        ({"Type": "Map", "End": True, "ItemReader": {}, "Iterator": {}}, "ItemReader"),
    ],
)
def test_unsupported_features_name_the_state(state: dict[str, Any], message: str) -> None:
    # GIVEN a definition whose state "Odd one" uses something unsupported
    # WHEN loading it THEN a DefinitionError names the state and the feature
    with pytest.raises(DefinitionError) as raised:
        load({"Odd one": state, "S": {"Type": "Succeed"}})
    assert raised.value.state == "Odd one"
    assert message in str(raised.value)


def test_nested_states_are_validated_too() -> None:
    inner = {"StartAt": "Deep", "States": {"Deep": {"Type": "Pass", "End": True, "Bogus": 1}}}
    with pytest.raises(DefinitionError) as raised:
        load({"P": {"Type": "Parallel", "Branches": [inner], "End": True}})
    assert raised.value.state == "Deep"


def test_jsonata_and_unknown_top_level_fields_are_refused() -> None:
    with pytest.raises(DefinitionError, match="JSONata"):
        load({"P": PASS_END}, QueryLanguage="JSONata")
    with pytest.raises(DefinitionError, match="unsupported definition field"):
        load({"P": PASS_END}, Foo=1)


def test_definition_loads_from_a_file_path(tmp_path: Path) -> None:
    # GIVEN the definition in a file with a placeholder
    file = tmp_path / "m.asl.json"
    file.write_text(
        json.dumps(
            {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "${Value}", "End": True}}}
        )
    )
    # WHEN loaded by Path and by str path THEN the substitution applies in both
    for definition in (file, str(file)):
        runner = LocalRunner(definition, resources=resources(), substitutions={"Value": "v1"})
        assert runner.start({}, name="f").output == "v1"


def test_unknown_task_resource_fails_loudly() -> None:
    runner = load(
        {"T": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": True}}
    )
    with pytest.raises(DefinitionError, match="sqs:sendMessage") as raised:
        runner.start({}, name="x")
    assert raised.value.state == "T"
