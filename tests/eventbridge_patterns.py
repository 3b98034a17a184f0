"""EventBridge event-pattern matching as AWS documents it: an oracle written apart from the code.

https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html and
eb-create-pattern-operators.html: every field of the pattern must match (and); a field's list
of matchers matches if any does (or); a value that is an array in the event matches if any of
its elements does, and a path through an array of objects reaches the field in every element
(``detail.findings.Types`` collects the Types of every finding); a missing field matches only
``{"exists": false}``. Matchers: a literal (string, number, boolean, null), ``prefix``,
``suffix``, ``wildcard`` (``*`` any run of characters, ``\\*`` a star, ``\\\\`` a backslash),
``numeric`` and ``exists``. Anything else raises, so a test never passes on a matcher this
oracle does not know.

It exists because moto, the local AWS the suite uses, does not descend into arrays of objects
(``moto/events/models.py`` ``EventPattern._flatten_dict`` keeps a list as one value), so it
cannot evaluate Security Hub patterns; the integration tests use moto wherever it can.
"""

from __future__ import annotations

import operator
import re
from typing import Any

_MISSING = object()
_NUMERIC = {"<": operator.lt, "<=": operator.le, "=": operator.eq, ">=": operator.ge,
            ">": operator.gt}


def matches(pattern: dict[str, Any], event: Any) -> bool:
    """Tell whether ``event`` (an object, or a list of the objects a path went through)
    matches ``pattern``."""
    return all(_field_matches(value, _values(event, key)) for key, value in pattern.items())


def string_matches(matcher: Any, value: str) -> bool:
    """Tell whether one string matcher (literal, prefix, suffix, wildcard) matches ``value``."""
    return _one_matches(matcher, value)


def _field_matches(spec: Any, values: list[Any]) -> bool:
    if isinstance(spec, dict):
        return matches(spec, values)  # the fields below, through every value (flattened)
    if not isinstance(spec, list):
        raise ValueError(f"a pattern field must be an object or an array, not {spec!r}")
    leaves = [v for value in values for v in (value if isinstance(value, list) else [value])]
    return any(_matcher_matches(matcher, leaves) for matcher in spec)


def _values(node: Any, key: str) -> list[Any]:
    """The values at ``key``: one per element when ``node`` is an array of objects."""
    if isinstance(node, list):
        return [v for item in node for v in _values(item, key)]
    if isinstance(node, dict) and key in node:
        return [node[key]]
    return []


def _matcher_matches(matcher: Any, leaves: list[Any]) -> bool:
    if isinstance(matcher, dict) and set(matcher) == {"exists"}:
        return bool(leaves) == matcher["exists"]
    return any(_one_matches(matcher, leaf) for leaf in leaves)


def _one_matches(matcher: Any, value: Any) -> bool:
    if not isinstance(matcher, dict):
        return type(matcher) is type(value) and matcher == value
    [(kind, operand)] = matcher.items()
    if kind == "prefix":
        return isinstance(value, str) and value.startswith(operand)
    if kind == "suffix":
        return isinstance(value, str) and value.endswith(operand)
    if kind == "wildcard":
        return isinstance(value, str) and re.fullmatch(_wildcard_regex(operand), value) is not None
    if kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        pairs = zip(operand[::2], operand[1::2], strict=True)
        return all(_NUMERIC[op](value, bound) for op, bound in pairs)
    raise ValueError(f"this oracle does not know the matcher {matcher!r}")


def _wildcard_regex(wildcard: str) -> str:
    regex, i = "", 0
    while i < len(wildcard):
        if wildcard[i] == "\\" and i + 1 < len(wildcard) and wildcard[i + 1] in "*\\":
            regex += re.escape(wildcard[i + 1])
            i += 2
        elif wildcard[i] == "*":
            regex += ".*"
            i += 1
        else:
            regex += re.escape(wildcard[i])
            i += 1
    return regex
