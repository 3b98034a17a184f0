"""A small IAM evaluator for the policy tests: which Allow statements let a request through.

Written for the tests from IAM's documented rules, not from ``actions/policy.py``, so what the
tests conclude does not depend on the code under test. It knows what a least-privilege policy of
Allow statements uses: ``Action`` and ``Resource`` wildcards (``*`` and ``?``; an ARN matched
segment by segment, ``*`` alone matching anything) and the condition operators ``StringEquals``,
``StringLike``, ``ArnEquals``, ``ArnLike`` and ``Null``, alone or qualified ``ForAllValues:`` /
``ForAnyValue:``. An operator it does not know fails the test instead of being ignored.

A request is one authorisation AWS makes: an IAM action on one resource ARN, with the request
context's condition keys (a multivalued key, e.g. ``aws:TagKeys``, as a tuple).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

ContextValue = str | tuple[str, ...]


@dataclass(frozen=True)
class Request:
    """One authorisation: ``action`` on ``resource`` with the request's condition keys."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)

    def __str__(self) -> str:
        context = ", ".join(f"{k}={v}" for k, v in sorted(self.context.items()))
        return f"{self.action} on {self.resource}" + (f" [{context}]" if context else "")


def allowing(policy: Mapping[str, Any], request: Request) -> list[str]:
    """The Sids of the policy's Allow statements that match ``request`` (none: denied)."""
    return [
        str(statement.get("Sid", "?"))
        for statement in policy["Statement"]
        if statement["Effect"] == "Allow" and statement_matches(statement, request)
    ]


def statement_matches(statement: Mapping[str, Any], request: Request) -> bool:
    """Whether the statement's actions, resources and every condition cover ``request``."""
    if "NotAction" in statement or "NotResource" in statement:
        raise AssertionError(f"statement {statement.get('Sid')}: NotAction/NotResource unknown")
    actions = _listed(statement["Action"])
    if not any(fnmatchcase(request.action.lower(), a.lower()) for a in actions):
        return False
    resources = _listed(statement["Resource"])
    if not any(arn_matches(pattern, request.resource) for pattern in resources):
        return False
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, wanted in keys.items():
            if not condition_holds(operator, key, _listed(wanted), request.context):
                return False
    return True


def arn_matches(pattern: str, arn: str) -> bool:
    """IAM's ARN matching: ``*`` alone matches all; otherwise each of the 6 segments matches."""
    if pattern == "*":
        return True
    wanted, given = pattern.split(":", 5), arn.split(":", 5)
    if len(wanted) != 6 or len(given) != 6:
        return False
    return all(fnmatchcase(g, w) for w, g in zip(wanted, given, strict=True))


def condition_holds(
    operator: str, key: str, wanted: list[str], context: Mapping[str, ContextValue]
) -> bool:
    """Evaluate one condition key of one operator block against the request context."""
    qualifier, _, base = operator.rpartition(":")
    present = key in context
    if base == "Null":
        assert wanted in (["true"], ["false"]), (operator, key, wanted)
        return present != (wanted == ["true"])
    if base.endswith("IfExists"):
        raise AssertionError(f"operator {operator} not known to this evaluator")
    value = context.get(key)
    values = [] if value is None else [value] if isinstance(value, str) else list(value)
    if qualifier == "ForAllValues":
        return all(any(_compare(base, v, w) for w in wanted) for v in values)
    if qualifier == "ForAnyValue":
        return any(_compare(base, v, w) for v in values for w in wanted)
    if qualifier:
        raise AssertionError(f"operator {operator} not known to this evaluator")
    if not present:
        return False
    assert len(values) == 1, f"{key} is multivalued: qualify {operator} with ForAllValues/Any"
    return any(_compare(base, values[0], w) for w in wanted)


def _compare(base: str, value: str, wanted: str) -> bool:
    if base == "StringEquals":
        return value == wanted
    if base == "StringLike":
        return fnmatchcase(value, wanted)
    if base in ("ArnEquals", "ArnLike"):
        return arn_matches(wanted, value)
    raise AssertionError(f"operator {base} not known to this evaluator")


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
