"""Loading and validating an ASL definition: every unsupported type, field, path or function is
refused up front, naming the state."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from state_machine.asl.choice import ChoiceRuleError, validate_rule
from state_machine.asl.errors import STATES_ALL, DefinitionError
from state_machine.asl.intrinsics import IntrinsicSyntaxError, is_intrinsic, parse_intrinsic
from state_machine.asl.paths import PathSyntaxError, parse_path

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_TOP_FIELDS = frozenset(
    {"StartAt", "States", "Comment", "TimeoutSeconds", "Version", "QueryLanguage"}
)
_COMMON = frozenset({"Type", "Comment"})
_FLOW = frozenset({"Next", "End"})
_IO = frozenset({"InputPath", "OutputPath"})
_RESULT = frozenset({"ResultPath", "ResultSelector"})
_ERRORS = frozenset({"Retry", "Catch"})
# TimeoutSeconds is accepted on Task but not enforced locally (a hung task hangs the process).
FIELDS: dict[str, frozenset[str]] = {
    "Task": _COMMON
    | _FLOW
    | _IO
    | _RESULT
    | _ERRORS
    | {"Resource", "Parameters", "TimeoutSeconds"},
    "Pass": _COMMON | _FLOW | _IO | {"Parameters", "Result", "ResultPath"},
    "Choice": _COMMON | _IO | {"Choices", "Default"},
    "Wait": _COMMON | _FLOW | _IO | {"Seconds", "SecondsPath"},
    "Succeed": _COMMON | _IO,
    "Fail": _COMMON | {"Error", "Cause", "ErrorPath", "CausePath"},
    "Map": _COMMON
    | _FLOW
    | _IO
    | _RESULT
    | _ERRORS
    | {"ItemProcessor", "Iterator", "ItemsPath", "ItemSelector", "Parameters", "MaxConcurrency"},
    "Parallel": _COMMON | _FLOW | _IO | _RESULT | _ERRORS | {"Branches", "Parameters"},
}
_RETRY_FIELDS = frozenset(
    {
        "ErrorEquals",
        "IntervalSeconds",
        "MaxAttempts",
        "BackoffRate",
        "MaxDelaySeconds",
        "JitterStrategy",
        "Comment",
    }
)
_CATCH_FIELDS = frozenset({"ErrorEquals", "ResultPath", "Next", "Comment"})
_PROCESSOR_FIELDS = frozenset({"ProcessorConfig", "StartAt", "States", "Comment"})


def load_definition(
    definition: Mapping[str, Any] | str | Path, substitutions: Mapping[str, str]
) -> dict[str, Any]:
    """Read the definition (a dict, JSON text or a file path), substitute ``${Name}``
    placeholders like CDK's DefinitionSubstitutions, parse and validate it.

    Raises
    ------
    DefinitionError
        When a placeholder has no substitution or the definition is not supported.
    """
    text = _definition_text(definition)
    for key, value in substitutions.items():
        text = text.replace("${" + key + "}", value)
    missing = sorted(set(_PLACEHOLDER.findall(text)))
    if missing:
        raise DefinitionError("<definition>", f"no substitution for {', '.join(missing)}")
    parsed: dict[str, Any] = json.loads(text)
    validate_machine(parsed, "<definition>", top_level=True)
    return parsed


def _definition_text(definition: Mapping[str, Any] | str | Path) -> str:
    if isinstance(definition, Path):
        return definition.read_text(encoding="utf-8")
    if isinstance(definition, str):
        return (
            definition
            if definition.lstrip().startswith("{")
            else Path(definition).read_text(encoding="utf-8")
        )
    return json.dumps(definition)


def validate_machine(machine: Mapping[str, Any], owner: str, *, top_level: bool = False) -> None:
    """Validate a state machine or a Map/Parallel branch (``owner`` names it in errors)."""
    allowed = _TOP_FIELDS if top_level else _PROCESSOR_FIELDS
    _only(owner, machine, allowed, "definition")
    if machine.get("QueryLanguage", "JSONPath") != "JSONPath":
        raise DefinitionError(owner, "only QueryLanguage JSONPath is supported (not JSONata)")
    states = machine.get("States")
    if not isinstance(states, dict) or machine.get("StartAt") not in states:
        raise DefinitionError(owner, "StartAt must name one of the States")
    for name, state in states.items():
        _validate_state(name, state, states)


def _only(state: str, fields: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise DefinitionError(state, f"unsupported {what} field(s) {', '.join(unknown)}")


def _validate_state(name: str, state: Mapping[str, Any], states: Mapping[str, Any]) -> None:
    kind = state.get("Type")
    if kind not in FIELDS:
        raise DefinitionError(name, f"unsupported state type {kind!r}")
    _only(name, state, FIELDS[kind], f"{kind} state")
    _check_transition(name, state, states, kind)
    try:
        _check_paths(name, state)
        _check_templates(state)
        if kind == "Choice":
            _check_choice(name, state, states)
    except (PathSyntaxError, IntrinsicSyntaxError, ChoiceRuleError) as exc:
        raise DefinitionError(name, str(exc)) from exc
    for retrier in state.get("Retry", []):
        _check_retrier(name, retrier)
    for catcher in state.get("Catch", []):
        _check_catcher(name, catcher, states)
    _check_kind_specific(name, state, kind)


def _check_transition(
    name: str, state: Mapping[str, Any], states: Mapping[str, Any], kind: str
) -> None:
    if "Next" not in FIELDS[kind]:
        return
    if ("Next" in state) == bool(state.get("End")):
        raise DefinitionError(name, "needs exactly one of Next or End: true")
    if "Next" in state and state["Next"] not in states:
        raise DefinitionError(name, f"Next names unknown state {state['Next']!r}")


def _check_paths(name: str, state: Mapping[str, Any]) -> None:
    for field in (
        "InputPath",
        "OutputPath",
        "ResultPath",
        "ItemsPath",
        "SecondsPath",
        "ErrorPath",
        "CausePath",
    ):
        value = state.get(field)
        if isinstance(value, str):
            path = parse_path(value)
            if field == "ResultPath" and (path.context or path.has_wildcard):
                raise PathSyntaxError(f"ResultPath {value!r} must be a reference path")


def _check_templates(state: Mapping[str, Any]) -> None:
    for field in ("Parameters", "ResultSelector", "ItemSelector"):
        if field in state:
            check_template(state[field])


def check_template(template: Any) -> None:
    """Parse every ``.$`` value of a payload template (recursively)."""
    if isinstance(template, list):
        for item in template:
            check_template(item)
    if not isinstance(template, dict):
        return
    for key, value in template.items():
        if not key.endswith(".$"):
            check_template(value)
        elif not isinstance(value, str):
            raise PathSyntaxError(f"{key!r} must hold a path or an intrinsic function")
        elif is_intrinsic(value):
            parse_intrinsic(value)
        else:
            parse_path(value)


def _check_choice(name: str, state: Mapping[str, Any], states: Mapping[str, Any]) -> None:
    choices = state.get("Choices")
    if not isinstance(choices, list) or not choices:
        raise ChoiceRuleError("Choices must be a non-empty list")
    for rule in choices:
        validate_rule(rule, top_level=True)
        if rule["Next"] not in states:
            raise ChoiceRuleError(f"Choice Next names unknown state {rule['Next']!r}")
    if "Default" in state and state["Default"] not in states:
        raise ChoiceRuleError(f"Default names unknown state {state['Default']!r}")


def _check_error_equals(name: str, entry: Mapping[str, Any], what: str) -> None:
    errors = entry.get("ErrorEquals")
    if not isinstance(errors, list) or not errors:
        raise DefinitionError(name, f"{what} needs a non-empty ErrorEquals")
    if STATES_ALL in errors and len(errors) > 1:
        raise DefinitionError(name, f"{what}: States.ALL must appear alone in ErrorEquals")


def _check_retrier(name: str, retrier: Mapping[str, Any]) -> None:
    _only(name, retrier, _RETRY_FIELDS, "Retry")
    _check_error_equals(name, retrier, "Retry")
    if retrier.get("JitterStrategy", "NONE") not in ("NONE", "FULL"):
        raise DefinitionError(name, "JitterStrategy must be NONE or FULL")


def _check_catcher(name: str, catcher: Mapping[str, Any], states: Mapping[str, Any]) -> None:
    _only(name, catcher, _CATCH_FIELDS, "Catch")
    _check_error_equals(name, catcher, "Catch")
    if catcher.get("Next") not in states:
        raise DefinitionError(name, f"Catch Next names unknown state {catcher.get('Next')!r}")
    if isinstance(catcher.get("ResultPath"), str):
        try:
            parse_path(catcher["ResultPath"])
        except PathSyntaxError as exc:
            raise DefinitionError(name, str(exc)) from exc


def _check_kind_specific(name: str, state: Mapping[str, Any], kind: str) -> None:
    if kind == "Wait" and ("Seconds" in state) == ("SecondsPath" in state):
        raise DefinitionError(name, "Wait needs exactly one of Seconds or SecondsPath")
    if kind == "Task" and not isinstance(state.get("Resource"), str):
        raise DefinitionError(name, "Task needs a Resource")
    if kind == "Map":
        validate_machine(processor_of(name, state), name)
    if kind == "Parallel":
        branches = state.get("Branches")
        if not isinstance(branches, list) or not branches:
            raise DefinitionError(name, "Parallel needs a non-empty Branches list")
        for branch in branches:
            validate_machine(branch, name)


def processor_of(name: str, state: Mapping[str, Any]) -> dict[str, Any]:
    """The inline ItemProcessor (or legacy Iterator) of a Map state, without ProcessorConfig."""
    processor = state.get("ItemProcessor", state.get("Iterator"))
    if not isinstance(processor, dict):
        raise DefinitionError(name, "Map needs an ItemProcessor (or Iterator)")
    config = processor.get("ProcessorConfig", {})
    if config.get("Mode", "INLINE") != "INLINE" or set(config) - {"Mode"}:
        raise DefinitionError(name, "only inline Map (ProcessorConfig Mode INLINE) is supported")
    return {key: value for key, value in processor.items() if key != "ProcessorConfig"}
