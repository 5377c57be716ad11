"""Choice comparison operators, type tests, Path variants and combinators."""

from __future__ import annotations

from typing import Any

import pytest

from state_machine.asl.choice import ChoiceRuleError, matches, validate_rule
from state_machine.asl.paths import JsonPath, read_path

DATA: dict[str, Any] = {
    "s": "2026-10",
    "n": 5,
    "f": 2.5,
    "b": True,
    "z": None,
    "t": "2026-10-01T00:00:00Z",
    "later": "2026-10-02T00:00:00+00:00",
    "other_n": 5,
    "other_s": "2026-11",
}


def rule_matches(rule: dict[str, Any]) -> bool:
    def read(path: JsonPath) -> Any:
        return read_path(path, DATA)

    validate_rule({**rule, "Next": "X"}, top_level=True)
    return matches(rule, read)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"Variable": "$.s", "StringEquals": "2026-10"}, True),
        ({"Variable": "$.s", "StringLessThan": "2026-11"}, True),
        ({"Variable": "$.s", "StringGreaterThanEquals": "2026-10"}, True),
        ({"Variable": "$.s", "StringMatches": "2026-*"}, True),
        ({"Variable": "$.s", "StringMatches": "2027-*"}, False),
        ({"Variable": "$.s", "StringEqualsPath": "$.other_s"}, False),
        ({"Variable": "$.s", "StringLessThanPath": "$.other_s"}, True),
        ({"Variable": "$.n", "NumericEquals": 5}, True),
        ({"Variable": "$.n", "NumericGreaterThan": 5}, False),
        ({"Variable": "$.f", "NumericLessThanEquals": 2.5}, True),
        ({"Variable": "$.n", "NumericEqualsPath": "$.other_n"}, True),
        ({"Variable": "$.n", "StringEquals": "5"}, False),
        ({"Variable": "$.s", "NumericEquals": 5}, False),
        ({"Variable": "$.b", "BooleanEquals": True}, True),
        ({"Variable": "$.n", "BooleanEquals": True}, False),
        ({"Variable": "$.t", "TimestampLessThan": "2026-10-01T00:00:01Z"}, True),
        ({"Variable": "$.t", "TimestampLessThanPath": "$.later"}, True),
        ({"Variable": "$.z", "IsNull": True}, True),
        ({"Variable": "$.absent", "IsPresent": False}, True),
        ({"Variable": "$.n", "IsNumeric": True}, True),
        ({"Variable": "$.s", "IsString": True}, True),
        ({"Variable": "$.b", "IsBoolean": True}, True),
        ({"Variable": "$.t", "IsTimestamp": True}, True),
        ({"Variable": "$.s", "IsTimestamp": True}, False),
        (
            {
                "And": [
                    {"Variable": "$.n", "NumericEquals": 5},
                    {"Variable": "$.b", "BooleanEquals": False},
                ]
            },
            False,
        ),
        (
            {
                "Or": [
                    {"Variable": "$.n", "NumericEquals": 4},
                    {"Variable": "$.b", "BooleanEquals": True},
                ]
            },
            True,
        ),
        ({"Not": {"Variable": "$.s", "StringEquals": "x"}}, True),
    ],
)
def test_operators(rule: dict[str, Any], expected: bool) -> None:
    # GIVEN a rule WHEN evaluated against DATA THEN it matches as AWS defines
    assert rule_matches(rule) is expected


@pytest.mark.parametrize(
    "rule",
    [
        {"Variable": "$.s", "StringContains": "x", "Next": "X"},
        {"Variable": "$.s", "Next": "X"},
        {"Variable": "$.s", "StringEquals": "a", "NumericEquals": 1, "Next": "X"},
        {"And": [{"Variable": "$.s", "StringEquals": "a", "Next": "X"}], "Next": "X"},
    ],
)
def test_malformed_rules_are_refused(rule: dict[str, Any]) -> None:
    with pytest.raises(ChoiceRuleError):
        validate_rule(rule, top_level=True)
