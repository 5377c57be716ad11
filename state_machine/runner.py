"""The local Amazon States Language interpreter: runs ``settlement.asl.json`` without AWS.

Supported (anything else is refused at load time, naming the state): Task, Choice, Map (inline),
Parallel, Pass, Wait, Fail, Succeed; InputPath, Parameters, ResultSelector, ResultPath, OutputPath;
Retry and Catch; the context object ``$$``; the intrinsic functions in ``asl/intrinsics.py``.
Map iterations and Parallel branches run one after another. ``TimeoutSeconds`` is not enforced.

Executions are synchronous; ``redrive`` re-runs a failed execution from the state that failed,
keeping the succeeded Map iterations and Parallel branches, like the Step Functions console.
"""

from __future__ import annotations

import copy
import json
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from state_machine.asl import choice
from state_machine.asl.definition import load_definition, processor_of
from state_machine.asl.errors import (
    STATES_ALL,
    STATES_NO_CHOICE_MATCHED,
    STATES_RUNTIME,
    STATES_TASK_FAILED,
    STATES_TIMEOUT,
    DefinitionError,
    StatesError,
    StatesRuntimeError,
    TaskFailed,
)
from state_machine.asl.intrinsics import evaluate, is_intrinsic, parse_intrinsic
from state_machine.asl.paths import JsonPath, PathNotFoundError, parse_path, read_path, write_result
from state_machine.asl.resources import TaskResources, as_lambda, lambda_error

__all__ = [
    "DefinitionError",
    "Execution",
    "LocalRunner",
    "ResourceResolver",
    "StateEvent",
    "StatesError",
    "TaskFailed",
    "TaskResources",
    "as_lambda",
    "lambda_error",
]

Status = Literal["SUCCEEDED", "FAILED"]
EventKind = Literal["entered", "succeeded", "failed", "retrying", "caught", "exited"]
_ACCOUNT = "123456789012"
_REGION = "local"


class ResourceResolver(Protocol):
    """Runs a Task: given its Resource ARN and effective input, returns the raw result.

    Raises ``TaskFailed`` to fail the task with an ASL error name.
    """

    def __call__(self, resource: str, parameters: Any, /) -> Any: ...


@dataclass(frozen=True)
class StateEvent:
    """One step of an execution, as the history and ``on_event`` see it.

    ``scope`` locates nested states: ``""`` at top level, ``"Publish deltas[2]"`` inside the
    third Map iteration, ``"Both[0]/Inner map[1]"`` deeper down. ``kind`` is ``entered``, then
    ``retrying``/``caught`` as they happen, and last ``succeeded``, ``exited`` (left through a
    Catch) or ``failed``; ``data`` is the input on entry, the output on exit, the delay on retry.
    """

    kind: EventKind
    state: str
    scope: str = ""
    data: Any = None
    error: str | None = None
    cause: str | None = None


@dataclass(frozen=True)
class _Resume:
    """Where a failed (sub-)machine stopped: the failed state, its raw input and, for a Map or
    Parallel state, the outcome of each iteration/branch (output or a nested ``_Resume``)."""

    state: str
    raw_input: Any
    children: Mapping[int, _Done | _Resume] | None = None


@dataclass(frozen=True)
class _Done:
    output: Any


@dataclass
class Execution:
    """The result of one run: status, output or error/cause, and the ordered history."""

    name: str
    execution_id: str
    input: Any
    status: Status
    output: Any = None
    error: str | None = None
    cause: str | None = None
    history: list[StateEvent] = field(default_factory=list)
    redrive_count: int = 0
    _resume: _Resume | None = field(default=None, repr=False)
    _runner: LocalRunner | None = field(default=None, repr=False)

    @property
    def entered_states(self) -> list[str]:
        """Names of the states entered, in order (nested states included)."""
        return [event.state for event in self.history if event.kind == "entered"]

    def redrive(self) -> Execution:
        """Re-run this FAILED execution from the failed state (see ``LocalRunner.redrive``)."""
        if self._runner is None:
            raise ValueError(f"execution {self.name!r} has no runner to redrive it")
        return self._runner.redrive(self)


@dataclass(frozen=True)
class _Scope:
    """What the states of one (sub-)machine share: the execution and where they sit."""

    execution: Execution
    label: str
    started: str


@dataclass(frozen=True)
class _Outcome:
    output: Any
    next_state: str | None
    caught: bool = False


class _MachineError(Exception):
    def __init__(self, error: StatesError, resume: _Resume) -> None:
        super().__init__(str(error))
        self.error = error
        self.resume = resume


class _ChildrenError(StatesError):
    """A Map iteration or Parallel branch failed; carries every child's outcome for redrive."""

    def __init__(self, error: StatesError, children: dict[int, _Done | _Resume]) -> None:
        super().__init__(error.error, error.cause)
        self.children = children
        self.runtime = isinstance(error, StatesRuntimeError)


class LocalRunner:
    """Executes an ASL definition in-process.

    Parameters
    ----------
    definition
        The definition as a dict, JSON text, or a path to the ``.asl.json`` file.
    resources
        Runs Task states (see ``TaskResources`` for Lambda and Glue).
    substitutions
        Values for ``${Name}`` placeholders, as CDK's DefinitionSubstitutions.
    sleep
        Called for Wait states and Retry delays (tests pass a fake).
    on_event
        Called for every ``StateEvent`` (progress display).
    rng
        Random source for ``JitterStrategy: FULL``.
    """

    def __init__(
        self,
        definition: Mapping[str, Any] | str | Path,
        *,
        resources: ResourceResolver,
        substitutions: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_event: Callable[[StateEvent], None] | None = None,
        rng: random.Random | None = None,
        state_machine_name: str = "local",
    ) -> None:
        self.definition = load_definition(definition, substitutions or {})
        self._resources = resources
        self._sleep = sleep
        self._on_event = on_event
        self._rng = rng or random.Random()
        self._machine_arn = f"arn:aws:states:{_REGION}:{_ACCOUNT}:stateMachine:{state_machine_name}"

    def start(self, input: Any, *, name: str | None = None) -> Execution:
        """Run an execution to its end and return it (SUCCEEDED or FAILED)."""
        name = name or str(uuid.uuid4())
        execution_id = self._machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        execution = Execution(name, execution_id, copy.deepcopy(input), "FAILED", _runner=self)
        return self._run(execution, None)

    def redrive(self, execution: Execution) -> Execution:
        """Re-run a FAILED execution from the state that failed, with the input it had there.

        Succeeded states are not run again; inside a failed Map or Parallel state only the
        iterations/branches that did not succeed run again. Returns a new ``Execution`` (same
        name and id, ``redrive_count`` + 1) whose history holds only the redriven part.
        """
        if execution.status != "FAILED" or execution._resume is None:
            raise ValueError(f"only a FAILED execution can be redriven ({execution.name!r})")
        again = Execution(
            execution.name,
            execution.execution_id,
            execution.input,
            "FAILED",
            redrive_count=execution.redrive_count + 1,
            _runner=self,
        )
        return self._run(again, execution._resume)

    def _run(self, execution: Execution, resume: _Resume | None) -> Execution:
        scope = _Scope(execution, "", datetime.now(UTC).isoformat())
        try:
            output = self._run_machine(self.definition, execution.input, scope, resume)
        except _MachineError as failed:
            execution.error, execution.cause = failed.error.error, failed.error.cause
            execution._resume = failed.resume
            return execution
        execution.status, execution.output = "SUCCEEDED", output
        return execution

    # ------------------------------------------------------------------ machines and states
    def _run_machine(
        self, machine: Mapping[str, Any], data: Any, scope: _Scope, resume: _Resume | None
    ) -> Any:
        name: str = resume.state if resume else machine["StartAt"]
        data = resume.raw_input if resume else data
        children = resume.children if resume else None
        while True:
            try:
                outcome = self._run_state(name, machine["States"][name], data, scope, children)
            except StatesError as error:
                resumed = getattr(error, "children", None)
                raise _MachineError(error, _Resume(name, data, resumed)) from error
            if outcome.next_state is None:
                return outcome.output
            name, data, children = outcome.next_state, outcome.output, None

    def _run_state(
        self,
        name: str,
        state: Mapping[str, Any],
        data: Any,
        scope: _Scope,
        children: Mapping[int, _Done | _Resume] | None,
    ) -> _Outcome:
        self._emit(scope, StateEvent("entered", name, scope.label, data))
        try:
            outcome = self._with_error_handling(name, state, data, scope, children)
        except StatesError as error:
            self._emit(
                scope, StateEvent("failed", name, scope.label, None, error.error, error.cause)
            )
            raise
        kind: EventKind = "exited" if outcome.caught else "succeeded"
        self._emit(scope, StateEvent(kind, name, scope.label, outcome.output))
        return outcome

    def _with_error_handling(
        self,
        name: str,
        state: Mapping[str, Any],
        data: Any,
        scope: _Scope,
        children: Mapping[int, _Done | _Resume] | None,
    ) -> _Outcome:
        retries = [0] * len(state.get("Retry", []))
        while True:
            try:
                return self._execute(
                    name, state, data, scope, children=children, retry_count=sum(retries)
                )
            except StatesError as error:
                if _is_runtime(error):
                    raise
                delay = self._retry_delay(state.get("Retry", []), retries, error)
                if delay is None:
                    return self._catch(name, state, data, scope, error)
                self._emit(
                    scope,
                    StateEvent("retrying", name, scope.label, delay, error.error, error.cause),
                )
                self._sleep(delay)
                children = None  # a retried Map/Parallel runs every child again

    def _retry_delay(
        self, retriers: list[dict[str, Any]], retries: list[int], error: StatesError
    ) -> float | None:
        for index, retrier in enumerate(retriers):
            if not _error_matches(retrier["ErrorEquals"], error.error):
                continue
            if retries[index] >= retrier.get("MaxAttempts", 3):
                return None  # the first matching retrier decides; exhausted means no retry
            delay = (
                float(retrier.get("IntervalSeconds", 1))
                * float(retrier.get("BackoffRate", 2.0)) ** retries[index]
            )
            if "MaxDelaySeconds" in retrier:
                delay = min(delay, float(retrier["MaxDelaySeconds"]))
            if retrier.get("JitterStrategy") == "FULL":
                delay = self._rng.uniform(0, delay)
            retries[index] += 1
            return delay
        return None

    def _catch(
        self, name: str, state: Mapping[str, Any], data: Any, scope: _Scope, error: StatesError
    ) -> _Outcome:
        for catcher in state.get("Catch", []):
            if _error_matches(catcher["ErrorEquals"], error.error):
                self._emit(
                    scope, StateEvent("caught", name, scope.label, None, error.error, error.cause)
                )
                payload = {"Error": error.error, "Cause": error.cause}
                output = self._place_result(name, data, catcher.get("ResultPath", "$"), payload)
                return _Outcome(output, catcher["Next"], caught=True)
        raise error

    def _execute(
        self,
        name: str,
        state: Mapping[str, Any],
        data: Any,
        scope: _Scope,
        *,
        children: Mapping[int, _Done | _Resume] | None,
        retry_count: int,
    ) -> _Outcome:
        context = self._context(scope, name, retry_count)
        kind = state["Type"]
        if kind == "Fail":
            raise self._fail_error(name, state, data, context)
        if kind == "Choice":
            return self._choice(name, state, data, context)
        effective = self._select(name, "InputPath", state, data, context)
        if kind in ("Succeed", "Wait"):
            if kind == "Wait":
                self._wait(name, state, effective)
            output = self._select(name, "OutputPath", state, effective, context)
            return _Outcome(output, None if kind == "Succeed" else state.get("Next"))
        if "Parameters" in state and kind != "Map":
            effective = self._template(name, state["Parameters"], effective, context)
        result = self._result(name, state, effective, scope, context=context, children=children)
        if "ResultSelector" in state:
            result = self._template(name, state["ResultSelector"], result, context)
        output = self._place_result(name, data, state.get("ResultPath", "$"), result)
        output = self._select(name, "OutputPath", state, output, context)
        return _Outcome(output, state.get("Next"))

    def _result(
        self,
        name: str,
        state: Mapping[str, Any],
        effective: Any,
        scope: _Scope,
        *,
        context: dict[str, Any],
        children: Mapping[int, _Done | _Resume] | None,
    ) -> Any:
        kind = state["Type"]
        if kind == "Pass":
            return copy.deepcopy(state["Result"]) if "Result" in state else effective
        if kind == "Task":
            return self._task(name, state["Resource"], effective)
        if kind == "Parallel":
            branches = state["Branches"]
            inputs = [(branch, effective) for branch in branches]
            return self._children(name, inputs, scope, children)
        return self._map(name, state, effective, scope, context=context, children=children)

    # ------------------------------------------------------------------ state kinds
    def _task(self, name: str, resource: str, effective: Any) -> Any:
        try:
            result = self._resources(resource, copy.deepcopy(effective))
        except DefinitionError as unsupported:
            raise DefinitionError(name, str(unsupported)) from unsupported
        try:
            return json.loads(json.dumps(result))
        except (TypeError, ValueError) as exc:
            raise StatesRuntimeError(f"state {name!r}: task result is not JSON: {exc}") from exc

    def _choice(
        self, name: str, state: Mapping[str, Any], data: Any, context: dict[str, Any]
    ) -> _Outcome:
        effective = self._select(name, "InputPath", state, data, context)

        def read(path: JsonPath) -> Any:
            return read_path(path, context if path.context else effective)

        try:
            chosen = next(
                (rule["Next"] for rule in state["Choices"] if choice.matches(rule, read)), None
            )
        except PathNotFoundError as missing:
            raise StatesRuntimeError(
                f"state {name!r}: Invalid path {missing}: no results in input {_dump(effective)}"
            ) from missing
        chosen = chosen or state.get("Default")
        if chosen is None:
            raise StatesError(STATES_NO_CHOICE_MATCHED, f"No Choice rule matched in state {name!r}")
        output = self._select(name, "OutputPath", state, effective, context)
        return _Outcome(output, chosen)

    def _wait(self, name: str, state: Mapping[str, Any], effective: Any) -> None:
        seconds = state.get("Seconds")
        if "SecondsPath" in state:
            seconds = self._read(name, "SecondsPath", parse_path(state["SecondsPath"]), effective)
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
            raise StatesRuntimeError(f"state {name!r}: Wait seconds must be a non-negative integer")
        self._sleep(float(seconds))

    def _fail_error(
        self, name: str, state: Mapping[str, Any], data: Any, context: dict[str, Any]
    ) -> StatesError:
        error, cause = state.get("Error", ""), state.get("Cause", "")
        if "ErrorPath" in state:
            error = self._read_any(name, "ErrorPath", state["ErrorPath"], data, context)
        if "CausePath" in state:
            cause = self._read_any(name, "CausePath", state["CausePath"], data, context)
        if not isinstance(error, str) or not isinstance(cause, str):
            raise StatesRuntimeError(f"state {name!r}: ErrorPath/CausePath must select strings")
        return StatesError(error, cause)

    def _map(
        self,
        name: str,
        state: Mapping[str, Any],
        effective: Any,
        scope: _Scope,
        *,
        context: dict[str, Any],
        children: Mapping[int, _Done | _Resume] | None,
    ) -> list[Any]:
        items = self._read(name, "ItemsPath", parse_path(state.get("ItemsPath", "$")), effective)
        if not isinstance(items, list):
            raise StatesRuntimeError(
                f"state {name!r}: ItemsPath must select an array, got {_dump(items)}"
            )
        processor = processor_of(name, state)
        selector = state.get("ItemSelector", state.get("Parameters"))
        inputs = []
        for index, item in enumerate(items):
            item_context = {**context, "Map": {"Item": {"Index": index, "Value": item}}}
            item_input = (
                item
                if selector is None
                else self._template(name, selector, effective, item_context)
            )
            inputs.append((processor, item_input))
        return self._children(name, inputs, scope, children)

    def _children(
        self,
        name: str,
        inputs: Sequence[tuple[Mapping[str, Any], Any]],
        scope: _Scope,
        previous: Mapping[int, _Done | _Resume] | None,
    ) -> list[Any]:
        outcomes: dict[int, _Done | _Resume] = {}
        for index, (machine, child_input) in enumerate(inputs):
            earlier = (previous or {}).get(index)
            if isinstance(earlier, _Done):
                outcomes[index] = earlier
                continue
            label = f"{scope.label}/{name}[{index}]".lstrip("/")
            child_scope = _Scope(scope.execution, label, scope.started)
            try:
                output = self._run_machine(machine, child_input, child_scope, earlier)
            except _MachineError as failed:
                outcomes[index] = failed.resume
                raise _ChildrenError(failed.error, outcomes) from failed
            outcomes[index] = _Done(output)
        return [_output_of(outcomes[index]) for index in range(len(inputs))]

    # ------------------------------------------------------------------ paths and payloads
    def _select(
        self, name: str, field: str, state: Mapping[str, Any], data: Any, context: dict[str, Any]
    ) -> Any:
        if field not in state:
            return data
        if state[field] is None:
            return {}
        return self._read_any(name, field, state[field], data, context)

    def _read_any(
        self, name: str, field: str, text: str, data: Any, context: dict[str, Any]
    ) -> Any:
        path = parse_path(text)
        return self._read(name, field, path, context if path.context else data)

    def _read(self, name: str, field: str, path: JsonPath, data: Any) -> Any:
        try:
            return copy.deepcopy(read_path(path, data))
        except PathNotFoundError as missing:
            raise StatesRuntimeError(
                f"state {name!r}: The JSONPath {path.text!r} specified for the field {field!r} "
                f"could not be found in the input {_dump(data)}"
            ) from missing

    def _template(self, name: str, template: Any, data: Any, context: dict[str, Any]) -> Any:
        if isinstance(template, list):
            return [self._template(name, item, data, context) for item in template]
        if not isinstance(template, dict):
            return copy.deepcopy(template)
        rendered: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                rendered[key[:-2]] = self._dynamic(name, key, value, data, context)
            else:
                rendered[key] = self._template(name, value, data, context)
        return rendered

    def _dynamic(self, name: str, key: str, text: str, data: Any, context: dict[str, Any]) -> Any:
        if not is_intrinsic(text):
            return self._read_any(name, key, text, data, context)

        def read(path: JsonPath) -> Any:
            return self._read(name, key, path, context if path.context else data)

        return evaluate(parse_intrinsic(text), read)

    def _place_result(self, name: str, data: Any, result_path: str | None, result: Any) -> Any:
        if result_path is None:
            return data
        return write_result(data, parse_path(result_path), result)

    def _context(self, scope: _Scope, name: str, retry_count: int) -> dict[str, Any]:
        execution = scope.execution
        return {
            "Execution": {
                "Id": execution.execution_id,
                "Name": execution.name,
                "Input": copy.deepcopy(execution.input),
                "StartTime": scope.started,
                "RedriveCount": execution.redrive_count,
            },
            "StateMachine": {"Id": self._machine_arn, "Name": self._machine_arn.rsplit(":", 1)[-1]},
            "State": {
                "Name": name,
                "EnteredTime": datetime.now(UTC).isoformat(),
                "RetryCount": retry_count,
            },
        }

    def _emit(self, scope: _Scope, event: StateEvent) -> None:
        scope.execution.history.append(event)
        if self._on_event is not None:
            self._on_event(event)


def _output_of(outcome: _Done | _Resume) -> Any:
    if not isinstance(outcome, _Done):
        raise TypeError("a child that did not finish has no output")
    return outcome.output


def _is_runtime(error: StatesError) -> bool:
    return error.error == STATES_RUNTIME and (
        isinstance(error, StatesRuntimeError) or getattr(error, "runtime", False)
    )


def _error_matches(error_equals: list[str], error: str) -> bool:
    """ASL matching: exact name, ``States.ALL``, or ``States.TaskFailed`` (any but Timeout)."""
    if error in error_equals or STATES_ALL in error_equals:
        return True
    return STATES_TASK_FAILED in error_equals and error != STATES_TIMEOUT


def _dump(data: Any) -> str:
    return json.dumps(data, default=str)[:1000]
