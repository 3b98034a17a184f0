"""Check a step's ``with:`` against its action's input model, whatever else is wrong with it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from actions import registry
from engine.checks import Finding, did_you_mean
from engine.checks.fields import describe, field_names
from engine.checks.scope import template_strings


def parameter_problems(step: Mapping[str, Any]) -> list[Finding]:
    """Return the unknown action or every wrong parameter of one step, located in the step.

    A templated parameter is known only when the run renders it: its name is checked here,
    its value at run time.
    """
    name = step.get("action")
    if not isinstance(name, str):
        return []  # the step's own validation says what `action` must be
    try:
        action = registry.get(name)
    except KeyError as exc:
        return [(("action",), str(exc.args[0]))]
    params = step.get("with", {})
    if not isinstance(params, dict):
        return []  # not a mapping: the step's own validation says so
    known = field_names(action.Input, ()) or []
    templated = {key for key, value in params.items() if any(template_strings(value, ()))}
    problems: list[Finding] = [
        (("with", key), f"{name}: unknown parameter {key!r}{did_you_mean(str(key), known)}")
        for key in params
        if key in templated and key not in known
    ]
    literal = {key: value for key, value in params.items() if key not in templated}
    try:
        action.Input.model_validate(literal)
    except ValidationError as exc:
        for loc, message in describe(exc.errors(), literal, action.Input, root=("with",),
                                     noun="parameter"):
            if message.startswith("missing parameter") and loc and loc[0] in templated:
                continue
            problems.append((("with", *loc), f"{name}: {message}"))
    return problems
