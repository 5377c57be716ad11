"""Choice rules: comparison operators, their ``*Path`` variants, ``And``/``Or``/``Not``."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from state_machine.asl.paths import JsonPath, PathNotFoundError, parse_path

Reader = Callable[[JsonPath], Any]
Compare = Callable[[Any, Any], bool]

_ORDER: dict[str, Compare] = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "GreaterThan": operator.gt,
    "LessThanEquals": operator.le,
    "GreaterThanEquals": operator.ge,
}
_KINDS = ("String", "Numeric", "Timestamp")
COMPARISONS: frozenset[str] = frozenset(
    {kind + suffix for kind in _KINDS for suffix in _ORDER}
    | {"BooleanEquals", "StringMatches"}
    | {kind + suffix + "Path" for kind in _KINDS for suffix in _ORDER}
    | {"BooleanEqualsPath"}
)
TYPE_TESTS: frozenset[str] = frozenset(
    {"IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp"}
)
_RULE_KEYS = frozenset({"Variable", "Next", "Comment"})


class ChoiceRuleError(ValueError):
    """A Choice rule is malformed or uses an unsupported operator."""


def validate_rule(rule: Mapping[str, Any], *, top_level: bool) -> None:
    """Check a rule's shape and operators (recursively), so bad rules fail at load time."""
    if top_level and "Next" not in rule:
        raise ChoiceRuleError(f"rule {rule!r} has no Next")
    if not top_level and "Next" in rule:
        raise ChoiceRuleError(f"nested rule {rule!r} must not have Next")
    for combinator in ("And", "Or"):
        if combinator in rule:
            for nested in rule[combinator]:
                validate_rule(nested, top_level=False)
            return
    if "Not" in rule:
        validate_rule(rule["Not"], top_level=False)
        return
    operators = set(rule) - _RULE_KEYS
    if "Variable" not in rule or len(operators) != 1:
        raise ChoiceRuleError(f"rule {rule!r} needs a Variable and exactly one operator")
    (name,) = operators
    if name not in COMPARISONS | TYPE_TESTS:
        raise ChoiceRuleError(f"unsupported Choice operator {name!r}")
    parse_path(rule["Variable"])
    if name.endswith("Path"):
        parse_path(rule[name])


def matches(rule: Mapping[str, Any], read: Reader) -> bool:
    """Evaluate a rule against the state input (``read`` resolves ``$``/``$$`` paths).

    Raises
    ------
    PathNotFoundError
        When the Variable (or a ``*Path`` operand) is missing, except under ``IsPresent``.
    """
    if "And" in rule:
        return all(matches(nested, read) for nested in rule["And"])
    if "Or" in rule:
        return any(matches(nested, read) for nested in rule["Or"])
    if "Not" in rule:
        return not matches(rule["Not"], read)
    (name,) = set(rule) - _RULE_KEYS
    variable = parse_path(rule["Variable"])
    if name == "IsPresent":
        return bool(_is_present(variable, read) == rule[name])
    value = read(variable)
    if name in TYPE_TESTS:
        return bool(_type_test(name, value) == rule[name])
    expected = read(parse_path(rule[name])) if name.endswith("Path") else rule[name]
    return _compare(name.removesuffix("Path"), value, expected)


def _is_present(variable: JsonPath, read: Reader) -> bool:
    try:
        read(variable)
    except PathNotFoundError:
        return False
    return True


def _type_test(name: str, value: Any) -> bool:
    tests: dict[str, Callable[[Any], bool]] = {
        "IsNull": lambda v: v is None,
        "IsNumeric": _is_number,
        "IsString": lambda v: isinstance(v, str),
        "IsBoolean": lambda v: isinstance(v, bool),
        "IsTimestamp": lambda v: _timestamp(v) is not None,
    }
    return tests[name](value)


def _compare(name: str, value: Any, expected: Any) -> bool:
    if name == "BooleanEquals":
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    if name == "StringMatches":
        return isinstance(value, str) and _wildcard(expected).fullmatch(value) is not None
    kind = next(kind for kind in _KINDS if name.startswith(kind))
    compare = _ORDER[name.removeprefix(kind)]
    if kind == "String":
        both = isinstance(value, str) and isinstance(expected, str)
        return both and bool(compare(value, expected))
    if kind == "Numeric":
        return _is_number(value) and _is_number(expected) and bool(compare(value, expected))
    left, right = _timestamp(value), _timestamp(expected)
    return left is not None and right is not None and compare(left, right)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _wildcard(pattern: str) -> re.Pattern[str]:
    # '*' matches any run of characters; '\*' is a literal star.
    pieces = re.split(r"(\\\*|\*)", pattern)
    regex = "".join(
        ".*" if piece == "*" else re.escape("*") if piece == "\\*" else re.escape(piece)
        for piece in pieces
    )
    return re.compile(regex, re.DOTALL)
