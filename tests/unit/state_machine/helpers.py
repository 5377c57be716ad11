"""Small builders shared by the runner's unit tests: recording sleep and scripted tasks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from state_machine.runner import TaskResources


class FakeSleep:
    """Records every requested delay instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Scripted:
    """A handler that raises the scripted exceptions first, then returns ``result(event)``."""

    def __init__(self, result: Callable[[Any], Any], failures: Iterable[Exception] = ()) -> None:
        self.result = result
        self.failures = list(failures)
        self.events: list[Any] = []

    def __call__(self, event: Any) -> Any:
        self.events.append(event)
        if self.failures:
            raise self.failures.pop(0)
        return self.result(event)


def one_task(
    task: dict[str, Any], *, then: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A machine whose first state is the Task ``Work`` (``task`` adds/overrides its fields)."""
    work = {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:work", "End": True}
    work.update(task)
    if "Next" in task:
        work.pop("End")
    return {"StartAt": "Work", "States": {"Work": work, **(then or {})}}


def resources(**handlers: Callable[[Any], Any]) -> TaskResources:
    """Lambda resources by function name."""
    return TaskResources(lambdas=handlers)
