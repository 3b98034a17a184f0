"""Sandboxed Jinja2 for playbook text only; alert data is passed in as values, never rendered."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, Undefined, nodes
from jinja2.environment import TemplateExpression
from jinja2.parser import Parser
from jinja2.sandbox import SandboxedEnvironment

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
# A parameter that is exactly one expression keeps the expression's native type.
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}).)*)\}\}\s*$", re.S)
# What the sandbox provides besides the context: a static check accepts these names only.
FILTERS: frozenset[str] = frozenset(_ENV.filters)
TESTS: frozenset[str] = frozenset(_ENV.tests)
GLOBALS: frozenset[str] = frozenset(_ENV.globals)


class TemplateFailure(Exception):
    """A playbook template that does not render: syntax, undefined name or sandbox refusal."""


def is_template(value: str) -> bool:
    """Tell whether a playbook string holds Jinja2 markup."""
    return "{{" in value or "{%" in value


# Playbook text is finite and pinned per run: compile each template or expression once.
@lru_cache(maxsize=4096)
def _expression(source: str) -> TemplateExpression:
    return _ENV.compile_expression(source, undefined_to_none=False)


@lru_cache(maxsize=4096)
def _template(source: str) -> Template:
    return _ENV.from_string(source)


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """Evaluate a bare expression (``when``, ``for_each``) to its native value."""
    try:
        result = _expression(expression)(**context)
        if isinstance(result, Undefined):
            result._fail_with_undefined_error()
        return result
    except TemplateError as exc:
        raise TemplateFailure(f"{expression!r}: {exc}") from exc


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every template string inside ``value`` (dicts and lists walked recursively)."""
    if isinstance(value, str):
        if not is_template(value):
            return value
        single = _SINGLE_EXPRESSION.match(value)
        if single:
            return evaluate(single.group("expr"), context)
        try:
            return _template(value).render(**context)
        except TemplateError as exc:
            raise TemplateFailure(f"{value!r}: {exc}") from exc
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    return value


def parse(source: str, *, expression: bool = False) -> nodes.Node:
    """Parse a template or bare expression into its syntax tree; raise ``TemplateSyntaxError``.

    An expression is read as ``compile_expression`` reads it, so a check sees what will run.
    """
    if not expression:
        return _ENV.parse(source)
    parser = Parser(_ENV, source, state="variable")
    tree = parser.parse_expression()
    if not parser.stream.eos:
        raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno)
    return tree
