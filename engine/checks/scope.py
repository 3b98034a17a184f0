"""Check every template of a playbook against what its step can read, step by step.

Read from the playbook's data as written (not the validated model), so a step with a
structural mistake still has its templates checked. A step reads the alert, the run, the
steps before it, the ``vars`` the playbook and the steps before it set, and ``item`` in the
``with:`` of a ``for_each`` step; ``when`` and ``for_each`` are evaluated before the items.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from engine import templates
from engine.checks import Finding, Loc
from engine.checks.context import (
    FREE,
    Shape,
    alert_shape,
    alerts_shape,
    renamed,
    run_shape,
    steps_shape,
    vars_shape,
)
from engine.checks.expressions import expression_problems
from engine.checks.fields import path_text

# Actions that put names into ``vars`` (``ActionContext.set_vars``), beside core.set, whose
# names are the keys of its ``values``. A test proves every action calling set_vars is here.
VARS_SET_BY: Mapping[str, tuple[str, ...]] = {
    "investigation.assess": ("findings", "open_questions", "verdict"),
    "investigation.narrate": ("narrative", "recommendation"),
}
_SHOWN = 80  # characters of an expression a message repeats


def template_problems(data: Mapping[str, Any]) -> list[Finding]:
    """Return every problem of the playbook's ``when``, ``for_each`` and ``with`` templates."""
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list):
        return []
    steps = [step if isinstance(step, dict) else {} for step in raw_steps]
    ids = [str(step["id"]) if isinstance(step.get("id"), str) else None for step in steps]
    playbook_vars = data.get("vars")
    known_vars: list[str] | None = (
        [str(key) for key in playbook_vars] if isinstance(playbook_vars, dict) else []
    )
    problems: list[Finding] = []
    for index, step in enumerate(steps):
        names: dict[str, Shape] = {
            "alert": alert_shape(),
            "alerts": alerts_shape(),
            "run": run_shape(),
            "steps": steps_shape(
                [i for i in ids[:index] if i], [i for i in ids[index + 1:] if i], ids[index]
            ),
            "vars": vars_shape(known_vars),
        }
        problems += _step_problems(index, step, names)
        known_vars = _vars_after(step, known_vars)
    return problems


def _step_problems(index: int, step: dict[str, Any], names: dict[str, Shape]) -> list[Finding]:
    problems: list[Finding] = []
    when = step.get("when")
    if isinstance(when, str):
        found, _ = expression_problems(when, names, expression=True)
        problems += _located(("steps", index, "when"), "when", when, found)
    for_each = step.get("for_each")
    item: Shape | None = FREE if "for_each" in step and for_each is not None else None
    if isinstance(for_each, str):
        found, shape = expression_problems(for_each, names, expression=True)
        problems += _located(("steps", index, "for_each"), "for_each", for_each, found)
        listed = shape.item if shape.kind == "list" else None
        item = FREE if listed is None else renamed(listed, "item")
    params = step.get("with")
    if isinstance(params, dict):
        scope = names if item is None else {**names, "item": item}
        for loc, source in template_strings(params, ("with",)):
            found, _ = expression_problems(source, scope, expression=False)
            problems += _located(("steps", index, *loc), path_text(loc), source, found)
    return problems


def _located(loc: Loc, where: str, source: str, found: list[str]) -> list[Finding]:
    shown = re.sub(r"\s+", " ", source).strip()
    if len(shown) > _SHOWN:
        shown = shown[: _SHOWN - 1] + "…"
    return [(loc, f'{where} "{shown}": {problem}') for problem in found]


def _vars_after(step: dict[str, Any], known: list[str] | None) -> list[str] | None:
    """Return the ``vars`` names known once ``step`` ran (None: it sets names not known)."""
    if known is None:
        return None
    action = step.get("action")
    if action == "core.set":
        params = step.get("with")
        values = params.get("values") if isinstance(params, dict) else None
        if not isinstance(values, dict):
            return None  # a template: which names it sets is known only when it runs
        return [*known, *(str(key) for key in values)]
    if isinstance(action, str) and action in VARS_SET_BY:
        return [*known, *VARS_SET_BY[action]]
    return known


def template_strings(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """Yield every string holding Jinja2 markup inside ``value``, with its location."""
    if isinstance(value, str) and templates.is_template(value):
        yield loc, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from template_strings(inner, (*loc, str(key)))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from template_strings(inner, (*loc, index))
