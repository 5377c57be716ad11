"""Intrinsic functions (``States.Format(...)`` and friends) for the ``.$`` fields of ASL.

The expression is parsed into a small tree first, so an unknown function or a malformed call is
reported when the definition is loaded, not halfway through an execution.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from state_machine.asl.errors import STATES_INTRINSIC_FAILURE, StatesError
from state_machine.asl.paths import JsonPath, parse_path


class IntrinsicSyntaxError(ValueError):
    """The expression is not a supported intrinsic function call."""


@dataclass(frozen=True)
class Call:
    """A parsed intrinsic call: its name and its arguments."""

    name: str
    args: tuple[Argument, ...]


Argument = Call | JsonPath | str | int | float | bool | None
PathReader = Callable[[JsonPath], Any]


def is_intrinsic(text: str) -> bool:
    """True when a ``.$`` value is an intrinsic call rather than a path."""
    return text.startswith("States.")


def parse_intrinsic(text: str) -> Call:
    """Parse ``States.Name(arg, ...)``; arguments may be literals, paths or nested calls.

    Raises
    ------
    IntrinsicSyntaxError
        When the text is malformed or names an unsupported function.
    """
    parser = _Parser(text)
    call = parser.call()
    parser.skip_spaces()
    if not parser.at_end():
        raise IntrinsicSyntaxError(f"{text!r}: unexpected text after the call")
    return call


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def at_end(self) -> bool:
        return self.position >= len(self.text)

    def skip_spaces(self) -> None:
        while not self.at_end() and self.text[self.position] == " ":
            self.position += 1

    def call(self) -> Call:
        start = self.position
        while not self.at_end() and self.text[self.position] not in "( ":
            self.position += 1
        name = self.text[start : self.position]
        if name not in FUNCTIONS:
            raise IntrinsicSyntaxError(f"{self.text!r}: unsupported intrinsic function {name!r}")
        self.expect("(")
        args: list[Argument] = []
        self.skip_spaces()
        if self.peek() == ")":
            self.position += 1
            return Call(name, ())
        while True:
            self.skip_spaces()
            args.append(self.argument())
            self.skip_spaces()
            if self.peek() == ")":
                self.position += 1
                return Call(name, tuple(args))
            self.expect(",")

    def peek(self) -> str:
        if self.at_end():
            raise IntrinsicSyntaxError(f"{self.text!r}: unexpected end")
        return self.text[self.position]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise IntrinsicSyntaxError(f"{self.text!r}: expected {char!r} at {self.position}")
        self.position += 1

    def argument(self) -> Argument:
        char = self.peek()
        if char == "'":
            return self.string()
        if char == "$":
            return parse_path(self.bare_token())
        if self.text.startswith("States.", self.position):
            return self.call()
        return self.literal(self.bare_token())

    def bare_token(self) -> str:
        start = self.position
        depth = 0
        while not self.at_end():
            char = self.text[self.position]
            if char == "[":
                depth += 1
            elif char == "]":
                depth -= 1
            elif char in ",)" and depth == 0:
                break
            self.position += 1
        return self.text[start : self.position].strip()

    def string(self) -> str:
        self.expect("'")
        chars: list[str] = []
        while True:
            char = self.peek()
            self.position += 1
            if char == "\\":
                chars.append("\\" + self.peek())
                self.position += 1
            elif char == "'":
                return "".join(chars)
            else:
                chars.append(char)

    def literal(self, token: str) -> Argument:
        try:
            value: Argument = json.loads(token)
        except json.JSONDecodeError as exc:
            raise IntrinsicSyntaxError(f"{self.text!r}: bad argument {token!r}") from exc
        if isinstance(value, dict | list):
            raise IntrinsicSyntaxError(f"{self.text!r}: bad argument {token!r}")
        return value


def evaluate(call: Call, read: PathReader) -> Any:
    """Evaluate a parsed call; ``read`` resolves path arguments (input or context).

    Raises
    ------
    StatesError
        ``States.IntrinsicFailure`` when the arguments do not suit the function.
    """
    values = [_argument_value(arg, read) for arg in call.args]
    try:
        return FUNCTIONS[call.name](call, values)
    except StatesError:
        raise
    except (TypeError, ValueError, IndexError) as exc:
        raise _failure(call, str(exc)) from exc


def _argument_value(arg: Argument, read: PathReader) -> Any:
    if isinstance(arg, Call):
        return evaluate(arg, read)
    if isinstance(arg, JsonPath):
        return read(arg)
    if isinstance(arg, str):
        return _unescape(arg)
    return arg


def _unescape(text: str) -> str:
    # Escapes in string literals: \' \{ \} \\ become the character itself.
    return text.replace("\\'", "'").replace("\\\\", "\\")


def _failure(call: Call, message: str) -> StatesError:
    return StatesError(STATES_INTRINSIC_FAILURE, f"{call.name}: {message}")


def _format(call: Call, values: list[Any]) -> str:
    if not values or not isinstance(values[0], str):
        raise _failure(call, "the first argument must be a template string")
    template, *fills = values
    pieces = _split_template(template)
    if len(pieces) - 1 != len(fills):
        raise _failure(call, f"the template has {len(pieces) - 1} '{{}}' but got {len(fills)}")
    rendered = [pieces[0]]
    for fill, piece in zip(fills, pieces[1:], strict=True):
        rendered.extend([_format_value(call, fill), piece])
    return "".join(rendered)


def _split_template(template: str) -> list[str]:
    pieces, current, index = [], [], 0
    while index < len(template):
        if template.startswith("\\{", index) or template.startswith("\\}", index):
            current.append(template[index + 1])
            index += 2
        elif template.startswith("{}", index):
            pieces.append("".join(current))
            current, index = [], index + 2
        else:
            current.append(template[index])
            index += 1
    pieces.append("".join(current))
    return pieces


def _format_value(call: Call, value: Any) -> str:
    if isinstance(value, dict | list):
        raise _failure(call, "arguments must be strings, numbers, booleans or null")
    return value if isinstance(value, str) else json.dumps(value)


def _string_to_json(call: Call, values: list[Any]) -> Any:
    (text,) = values
    if not isinstance(text, str):
        raise _failure(call, "the argument must be a string")
    return json.loads(text)


def _json_to_string(call: Call, values: list[Any]) -> str:
    (value,) = values
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _array(call: Call, values: list[Any]) -> list[Any]:
    return list(values)


def _array_length(call: Call, values: list[Any]) -> int:
    (array,) = values
    if not isinstance(array, list):
        raise _failure(call, "the argument must be an array")
    return len(array)


def _array_partition(call: Call, values: list[Any]) -> list[list[Any]]:
    array, size = values
    if not isinstance(array, list) or not _is_int(size) or size < 1:
        raise _failure(call, "expects an array and a positive integer chunk size")
    return [array[start : start + size] for start in range(0, len(array), size)]


def _array_get_item(call: Call, values: list[Any]) -> Any:
    array, index = values
    if not isinstance(array, list) or not _is_int(index):
        raise _failure(call, "expects an array and an integer index")
    return array[index]


def _array_contains(call: Call, values: list[Any]) -> bool:
    array, value = values
    if not isinstance(array, list):
        raise _failure(call, "the first argument must be an array")
    return value in array


def _uuid(call: Call, values: list[Any]) -> str:
    if values:
        raise _failure(call, "takes no arguments")
    return str(uuid.uuid4())


def _math_add(call: Call, values: list[Any]) -> int:
    left, right = values
    if not (_is_int(left) and _is_int(right)):
        raise _failure(call, "both arguments must be integers")
    return int(left) + int(right)


def _string_split(call: Call, values: list[Any]) -> list[str]:
    text, separators = values
    if not isinstance(text, str) or not isinstance(separators, str):
        raise _failure(call, "both arguments must be strings")
    parts = [text]
    for separator in separators:
        parts = [piece for part in parts for piece in part.split(separator)]
    return [part for part in parts if part]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


FUNCTIONS: dict[str, Callable[[Call, list[Any]], Any]] = {
    "States.Format": _format,
    "States.StringToJson": _string_to_json,
    "States.JsonToString": _json_to_string,
    "States.Array": _array,
    "States.ArrayLength": _array_length,
    "States.ArrayPartition": _array_partition,
    "States.ArrayGetItem": _array_get_item,
    "States.ArrayContains": _array_contains,
    "States.UUID": _uuid,
    "States.MathAdd": _math_add,
    "States.StringSplit": _string_split,
}
