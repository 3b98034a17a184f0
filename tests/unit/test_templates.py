"""Templates come from playbook text only and run in Jinja2's sandbox."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.templates import TemplateFailure, evaluate, render

CONTEXT = {
    "alert": {"title": "{{ 7*7 }}", "principal": {"name": "Roboman1"}, "count": 3},
    "vars": {"ids": ["i-1", "i-2"]},
}


def test_a_single_expression_keeps_its_native_type() -> None:
    assert render("{{ vars.ids }}", CONTEXT) == ["i-1", "i-2"]
    assert render("{{ alert.count + 1 }}", CONTEXT) == 4


def test_text_around_an_expression_renders_a_string() -> None:
    assert render("user {{ alert.principal.name }}!", CONTEXT) == "user Roboman1!"


def test_alert_values_that_look_like_templates_stay_literal() -> None:
    assert render("{{ alert.title }}", CONTEXT) == "{{ 7*7 }}"
    assert render("title: {{ alert.title }}", CONTEXT) == "title: {{ 7*7 }}"


def test_nested_structures_are_rendered_throughout() -> None:
    value = {"a": ["{{ alert.count }}", {"b": "x{{ alert.count }}"}], "n": 5}
    assert render(value, CONTEXT) == {"a": [3, {"b": "x3"}], "n": 5}


def test_undefined_names_fail_loudly() -> None:
    with pytest.raises(TemplateFailure, match="nope"):
        render("{{ alert.nope }}", CONTEXT)
    with pytest.raises(TemplateFailure):
        render("x {{ missing }}", CONTEXT)


def test_the_sandbox_refuses_python_internals_in_playbook_text() -> None:
    with pytest.raises(TemplateFailure):
        render("{{ ''.__class__.__mro__ }}", CONTEXT)


def test_when_expressions_evaluate_natively() -> None:
    assert evaluate("alert.count > 2", CONTEXT) is True
    assert evaluate("'i-1' in vars.ids", CONTEXT) is True


@given(st.text())
def test_any_alert_string_reaches_the_output_unchanged(payload: str) -> None:
    context = {"alert": {"title": payload}}
    assert render("{{ alert.title }}", context) == payload
