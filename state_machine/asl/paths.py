"""A strict evaluator for the JSONPath forms ASL uses: ``$``, ``$.a.b``, ``$['a']``, ``$.a[0]``,
``$.a[*].b``, and context paths ``$$.Execution.Id``.

Anything else (filters, recursive descent, slices, unions) is refused with ``PathSyntaxError`` so a
definition cannot depend on a feature whose local behaviour would be a guess.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

from state_machine.asl.errors import STATES_RESULT_PATH_MATCH_FAILURE, StatesError

_NAME = re.compile(r"\.([A-Za-z0-9_\-:@#$%^&+=~ ]+?)(?=[.\[]|$)")
_BRACKET_INDEX = re.compile(r"\[(\d+)\]")
_BRACKET_QUOTED = re.compile(r"\[(?:'([^']*)'|\"([^\"]*)\")\]")
_WILDCARD = "*"


class PathSyntaxError(ValueError):
    """The path uses JSONPath syntax this evaluator does not support."""


class PathNotFoundError(LookupError):
    """The path does not resolve in the data."""


Segment = str | int


@dataclass(frozen=True)
class JsonPath:
    """A parsed path: whether it addresses the context object, and its segments."""

    text: str
    context: bool
    segments: tuple[Segment, ...]

    @property
    def has_wildcard(self) -> bool:
        """True when the path may select several values (and so returns a list)."""
        return _WILDCARD in self.segments


def parse_path(text: str) -> JsonPath:
    """Parse a path such as ``$.a['b'][0]`` or ``$$.Map.Item.Value``.

    Raises
    ------
    PathSyntaxError
        When the text is not a path of the supported forms.
    """
    if text.startswith("$$"):
        context, rest = True, text[2:]
    elif text.startswith("$"):
        context, rest = False, text[1:]
    else:
        raise PathSyntaxError(f"path {text!r} must start with '$'")
    segments: list[Segment] = []
    position = 0
    while position < len(rest):
        segment, position = _next_segment(text, rest, position)
        segments.append(segment)
    return JsonPath(text, context, tuple(segments))


def _next_segment(text: str, rest: str, position: int) -> tuple[Segment, int]:
    if rest.startswith(".*", position):
        return _WILDCARD, position + 2
    if rest.startswith("[*]", position):
        return _WILDCARD, position + 3
    if rest.startswith("..", position):
        raise PathSyntaxError(f"path {text!r}: recursive descent '..' is not supported")
    for pattern in (_NAME, _BRACKET_INDEX, _BRACKET_QUOTED):
        match = pattern.match(rest, position)
        if match:
            return _segment_value(pattern, match), match.end()
    raise PathSyntaxError(
        f"path {text!r}: unsupported JSONPath syntax at {rest[position:]!r} "
        "(only .name, ['name'], [index] and [*] are supported)"
    )


def _segment_value(pattern: re.Pattern[str], match: re.Match[str]) -> Segment:
    if pattern is _BRACKET_INDEX:
        return int(match.group(1))
    if pattern is _BRACKET_QUOTED:
        return match.group(1) if match.group(1) is not None else match.group(2)
    return match.group(1)


def read_path(path: JsonPath, data: Any) -> Any:
    """Select the value at ``path``; a path with ``[*]`` yields the list of matches.

    Raises
    ------
    PathNotFoundError
        When a field or index along a wildcard-free path is missing.
    """
    if path.has_wildcard:
        return _read_many(path.segments, data)
    return _read_one(path, data)


def _read_one(path: JsonPath, data: Any) -> Any:
    current = data
    for segment in path.segments:
        current = _step(current, segment, path.text)
    return current


def _step(current: Any, segment: Segment, text: str) -> Any:
    if isinstance(segment, int) and isinstance(current, list) and segment < len(current):
        return current[segment]
    if isinstance(segment, str) and isinstance(current, dict) and segment in current:
        return current[segment]
    raise PathNotFoundError(text)


def _read_many(segments: tuple[Segment, ...], data: Any) -> list[Any]:
    matches: list[Any] = [data]
    for segment in segments:
        matches = [value for current in matches for value in _expand(current, segment)]
    return matches


def _expand(current: Any, segment: Segment) -> list[Any]:
    if segment == _WILDCARD:
        if isinstance(current, dict):
            return list(current.values())
        return list(current) if isinstance(current, list) else []
    try:
        return [_step(current, segment, "")]
    except PathNotFoundError:
        return []


def write_result(raw_input: Any, path: JsonPath, result: Any) -> Any:
    """Place ``result`` into a copy of ``raw_input`` at ``path`` (ASL ``ResultPath``).

    Raises
    ------
    StatesError
        ``States.ResultPathMatchFailure`` when the path cannot be placed into the input.
    """
    if not path.segments:
        return result
    if path.has_wildcard or path.context:
        raise PathSyntaxError(f"ResultPath {path.text!r} must be a reference path")
    if not isinstance(raw_input, dict):
        raise _match_failure(path, raw_input)
    output = copy.deepcopy(raw_input)
    _assign(output, path, result)
    return output


def _assign(output: dict[str, Any], path: JsonPath, result: Any) -> None:
    current: Any = output
    for position, segment in enumerate(path.segments):
        last = position == len(path.segments) - 1
        if isinstance(segment, int):
            if not isinstance(current, list) or segment >= len(current):
                raise _match_failure(path, output)
            if last:
                current[segment] = result
            current = current[segment]
            continue
        if not isinstance(current, dict):
            raise _match_failure(path, output)
        if last:
            current[segment] = result
        else:
            current = current.setdefault(segment, {})


def _match_failure(path: JsonPath, data: Any) -> StatesError:
    return StatesError(
        STATES_RESULT_PATH_MATCH_FAILURE,
        f"Unable to apply ResultPath {path.text!r} to input {json.dumps(data, default=str)}",
    )
