"""Intrinsic functions and the strict JSONPath evaluator."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from state_machine.asl.errors import StatesError
from state_machine.asl.intrinsics import IntrinsicSyntaxError, evaluate, parse_intrinsic
from state_machine.asl.paths import (
    JsonPath,
    PathNotFoundError,
    PathSyntaxError,
    parse_path,
    read_path,
    write_result,
)

DATA: dict[str, Any] = {
    "run": "r1",
    "n": 4,
    "list": ["a", "b", "c"],
    "obj": {"k": [1, 2]},
    "text": '{"x": [1]}',
    "odd key": {"a-b": 1},
}


def call(expression: str) -> Any:
    def read(path: JsonPath) -> Any:
        return read_path(path, DATA)

    return evaluate(parse_intrinsic(expression), read)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("States.Format('run {} has {} items', $.run, $.n)", "run r1 has 4 items"),
        ("States.Format('literal \\{\\} and it\\'s {}', $.run)", "literal {} and it's r1"),
        ("States.Format('{}/{}', true, null)", "true/null"),
        ("States.JsonToString($.obj)", '{"k":[1,2]}'),
        ("States.StringToJson($.text)", {"x": [1]}),
        ("States.Array($.run, 1, 'two', $.obj.k)", ["r1", 1, "two", [1, 2]]),
        ("States.ArrayLength($.list)", 3),
        ("States.MathAdd($.n, -1)", 3),
        ("States.MathAdd(States.ArrayLength($.list), 1)", 4),
        ("States.ArrayPartition($.list, 2)", [["a", "b"], ["c"]]),
        ("States.ArrayGetItem($.list, 1)", "b"),
        ("States.ArrayContains($.list, 'c')", True),
        ("States.StringSplit('a,b;c', ',;')", ["a", "b", "c"]),
    ],
)
def test_intrinsic_functions(expression: str, expected: Any) -> None:
    # GIVEN an intrinsic call WHEN evaluated against DATA THEN it gives the AWS result
    assert call(expression) == expected


def test_uuid_is_a_fresh_version_4_uuid() -> None:
    first, second = call("States.UUID()"), call("States.UUID()")
    assert uuid.UUID(first).version == 4
    assert first != second


@pytest.mark.parametrize(
    "expression",
    ["States.Hash($.run, 'SHA-1')", "States.Format('x'", "States.Array($.a[?(@.x)])", "Foo()"],
)
def test_unsupported_or_malformed_calls_are_refused(expression: str) -> None:
    with pytest.raises((IntrinsicSyntaxError, PathSyntaxError)):
        parse_intrinsic(expression)


@pytest.mark.parametrize(
    "expression",
    ["States.Format('{} {}', $.run)", "States.MathAdd($.run, 1)", "States.ArrayLength($.n)"],
)
def test_bad_arguments_fail_with_intrinsic_failure(expression: str) -> None:
    with pytest.raises(StatesError) as raised:
        call(expression)
    assert raised.value.error == "States.IntrinsicFailure"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", DATA),
        ("$.run", "r1"),
        ("$.list[2]", "c"),
        ("$['obj']['k'][1]", 2),
        ("$.obj.k[*]", [1, 2]),
        ("$['odd key'].a-b", 1),
    ],
)
def test_reference_paths(path: str, expected: Any) -> None:
    assert read_path(parse_path(path), DATA) == expected


@pytest.mark.parametrize("path", ["$..run", "$.list[0:2]", "$.list[?(@ == 'a')]", "run", "$.a[-1]"])
def test_unsupported_path_features_are_refused(path: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_path(path)


def test_missing_paths_raise() -> None:
    for path in ("$.absent", "$.list[3]", "$.run.deeper"):
        with pytest.raises(PathNotFoundError):
            read_path(parse_path(path), DATA)


def test_write_result_creates_nested_objects_without_touching_the_input() -> None:
    original = {"a": {"b": 1}}
    assert write_result(original, parse_path("$.a.c.d"), 2) == {"a": {"b": 1, "c": {"d": 2}}}
    assert original == {"a": {"b": 1}}
    with pytest.raises(StatesError, match="ResultPathMatchFailure"):
        write_result(["not", "an", "object"], parse_path("$.x"), 1)
