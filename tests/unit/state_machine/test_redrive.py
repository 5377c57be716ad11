"""Redrive: a FAILED execution re-runs from the failed state; succeeded work is not repeated."""

from __future__ import annotations

from typing import Any

import pytest

from state_machine.runner import LocalRunner
from tests.unit.state_machine.helpers import FakeSleep, resources


class OutageError(Exception):
    pass


class Service:
    """A handler that fails while ``down`` holds the item, and records every call."""

    def __init__(self, *down: Any) -> None:
        self.down = set(down)
        self.calls: list[Any] = []

    def __call__(self, event: Any) -> Any:
        self.calls.append(event)
        if event in self.down:
            raise OutageError(f"item {event} unavailable")
        return {"done": event}


def task(function: str, **fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": f"arn:aws:lambda:r:1:function:{function}", **fields}


def test_redrive_restarts_at_the_failed_state_with_its_input() -> None:
    # GIVEN a two-step machine whose second step fails
    first, second = Service(), Service("x")
    definition = {
        "StartAt": "First",
        "States": {
            "First": task("first", InputPath="$.item", ResultPath="$.first", Next="Second"),
            "Second": task("second", InputPath="$.item", End=True),
        },
    }
    runner = LocalRunner(definition, resources=resources(first=first, second=second))
    failed = runner.start({"item": "x"}, name="r1")
    assert (failed.status, failed.error) == ("FAILED", "OutageError")
    # WHEN the service recovers and the execution is redriven
    second.down.clear()
    redriven = failed.redrive()
    # THEN only the failed state ran again, with the input it had, and the run succeeds
    assert redriven.status == "SUCCEEDED"
    assert redriven.output == {"done": "x"}
    assert redriven.entered_states == ["Second"]
    assert (first.calls, second.calls) == (["x"], ["x", "x"])
    assert (redriven.name, redriven.redrive_count) == ("r1", 1)


def test_redrive_of_a_map_reruns_only_unsucceeded_iterations_from_their_failed_state() -> None:
    # GIVEN a Map of three items, each iteration Prepare -> Publish; publishing item 1 fails
    prepare, publish = Service(), Service(1)
    definition = {
        "StartAt": "Publish all",
        "States": {
            "Publish all": {
                "Type": "Map",
                "MaxConcurrency": 1,
                "ItemProcessor": {
                    "StartAt": "Prepare",
                    "States": {
                        "Prepare": task("prepare", ResultPath=None, Next="Publish"),
                        "Publish": task("publish", End=True),
                    },
                },
                "End": True,
            }
        },
    }
    runner = LocalRunner(definition, resources=resources(prepare=prepare, publish=publish))
    failed = runner.start([0, 1, 2], name="r2")
    assert failed.status == "FAILED"
    # WHEN redriven after the outage
    publish.down.clear()
    redriven = runner.redrive(failed)
    # THEN item 0 is not repeated, item 1 resumes at Publish, item 2 runs fully
    assert redriven.status == "SUCCEEDED"
    assert redriven.output == [{"done": 0}, {"done": 1}, {"done": 2}]
    assert prepare.calls == [0, 1, 2]
    assert publish.calls == [0, 1, 1, 2]
    assert redriven.entered_states == ["Publish all", "Publish", "Prepare", "Publish"]


def test_redrive_of_a_parallel_keeps_the_succeeded_branch() -> None:
    left, right = Service(), Service("in")
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "L", "States": {"L": task("left", End=True)}},
                    {"StartAt": "R", "States": {"R": task("right", End=True)}},
                ],
                "End": True,
            }
        },
    }
    runner = LocalRunner(definition, resources=resources(left=left, right=right), sleep=FakeSleep())
    failed = runner.start("in", name="r3")
    right.down.clear()
    redriven = failed.redrive()
    assert redriven.output == [{"done": "in"}, {"done": "in"}]
    assert (left.calls, right.calls) == (["in"], ["in", "in"])


def test_only_failed_executions_can_be_redriven() -> None:
    runner = LocalRunner(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, resources=resources()
    )
    with pytest.raises(ValueError, match="only a FAILED execution"):
        runner.start({}, name="ok").redrive()
