"""Playbook validation: every action is well declared, and every mistake is reported precisely."""

from __future__ import annotations

import re
import textwrap
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from actions import registry
from actions.base import Action, ActionInput
from engine.playbooks import PlaybookInvalid, PlaybookProblem, parse_playbook
from tests.step_examples import example_playbook

ACTIONS = registry.all_actions()
YAML_EXAMPLE = re.compile(r"```yaml\n(?P<body>.*?)```", re.S)
# An imperative first line starts with a verb, not "This action…" / "Writes…" / "A helper…".
NOT_IMPERATIVE = re.compile(r"^(This|The|A|An|It)\b|^\w+s\b")


def problems(text: str) -> list[PlaybookProblem]:
    with pytest.raises(PlaybookInvalid) as caught:
        parse_playbook(textwrap.dedent(text), "bad.yml")
    return caught.value.problems


def one_problem(text: str) -> PlaybookProblem:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def docstring_example(action: type[Action[Any]]) -> str:
    match = YAML_EXAMPLE.search(textwrap.dedent(action.__doc__ or ""))
    assert match, f"{action.name}: the docstring has no ```yaml``` example"
    return textwrap.dedent(match["body"])


# ---------------------------------------------------------------------------------------------
# The registry, action by action (STYLE.md "Actions")


def test_the_registry_holds_the_core_actions() -> None:
    assert {"core.log", "core.set", "core.fail", "core.sleep"} <= set(ACTIONS)


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_an_action_is_registered_under_its_own_name(name: str) -> None:
    action = ACTIONS[name]
    assert action.name == name
    assert re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)+", name), "names are dotted: service.verb"


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_an_action_input_model_refuses_unknown_parameters(name: str) -> None:
    action = ACTIONS[name]
    assert issubclass(action.Input, ActionInput)
    assert action.Input.model_config.get("extra") == "forbid"
    schema = action.Input.model_json_schema()
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_an_action_declares_the_iam_permissions_it_needs(name: str) -> None:
    action = ACTIONS[name]
    assert isinstance(action.permissions, tuple)
    assert all(re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9*]+", p) for p in action.permissions), (
        f"{name}: permissions are IAM actions like 'iam:PutUserPolicy'"
    )
    if name.startswith("aws."):
        assert action.permissions, f"{name} calls AWS, so it must declare its IAM permissions"
    if action.mutating:
        assert action.plan is not Action.plan, f"{name} is mutating: it must say what it would do"


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_an_action_docstring_starts_with_one_imperative_sentence(name: str) -> None:
    doc = ACTIONS[name].__doc__
    assert doc, f"{name} has no docstring"
    first = doc.strip().splitlines()[0]
    assert first.endswith("."), f"{name}: {first!r} is not one sentence"
    assert first[0].isupper() and not NOT_IMPERATIVE.match(first), (
        f"{name}: {first!r} should start with a verb in the imperative (e.g. 'Write …')"
    )


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_an_action_docstring_example_is_a_valid_step_of_that_action(name: str) -> None:
    example = docstring_example(ACTIONS[name])
    steps = yaml.safe_load(example)
    assert isinstance(steps, list) and len(steps) == 1, "the example is one step, as a list item"
    assert steps[0]["action"] == name, "the example shows the action it documents"
    loaded = parse_playbook(example_playbook(example), f"{name} docstring")
    assert loaded.spec.steps[-1].action == name


# ---------------------------------------------------------------------------------------------
# Errors name file, line and step, and say what to do


def test_a_typo_in_an_action_names_file_line_step_and_suggests_the_action() -> None:
    problem = one_problem(
        """\
        name: typo
        steps:
          - id: hello
            action: core.logg
            with:
              message: hi
        """
    )
    assert (problem.file, problem.line, problem.step) == ("bad.yml", 4, "hello")
    assert "unknown action 'core.logg'" in problem.message
    assert "did you mean 'core.log'" in problem.message
    assert str(problem).startswith("bad.yml:4: step 'hello': ")


def test_an_unknown_field_in_a_step_names_its_line() -> None:
    problem = one_problem(
        """\
        name: unknown-field
        steps:
          - id: hello
            action: core.log
            with: {message: hi}
            retyr:
              attempts: 3
        """
    )
    assert (problem.line, problem.step) == (6, "hello")
    assert "unknown field 'retyr'" in problem.message


def test_a_parameter_of_the_wrong_type_names_the_parameter_and_action() -> None:
    problem = one_problem(
        """\
        name: wrong-type
        steps:
          - id: nap
            action: core.sleep
            with:
              seconds: a while
        """
    )
    assert (problem.line, problem.step) == (6, "nap")
    assert "core.sleep" in problem.message and "seconds" in problem.message


def test_an_unknown_parameter_is_refused() -> None:
    problem = one_problem(
        """\
        name: unknown-param
        steps:
          - id: hello
            action: core.log
            with: {message: hi, colour: red}
        """
    )
    assert problem.step == "hello"
    assert problem.message == "core.log: unknown parameter 'colour'"


def test_a_missing_required_parameter_is_refused() -> None:
    problem = one_problem(
        """\
        name: missing-param
        steps:
          - id: hello
            action: core.log
        """
    )
    assert problem.step == "hello"
    assert problem.message == "core.log: missing parameter 'message'"


def test_a_templated_parameter_is_checked_at_run_time_not_at_load_time() -> None:
    loaded = parse_playbook(
        textwrap.dedent(
            """\
            name: templated
            vars: {delay: 1}
            steps:
              - id: nap
                action: core.sleep
                with:
                  seconds: "{{ vars.delay }}"
            """
        )
    )
    assert loaded.spec.steps[0].with_ == {"seconds": "{{ vars.delay }}"}


def test_duplicate_step_ids_are_refused_at_the_second_one() -> None:
    problem = one_problem(
        """\
        name: dup
        steps:
          - id: same
            action: core.log
            with: {message: one}
          - id: same
            action: core.log
            with: {message: two}
        """
    )
    assert (problem.line, problem.step) == (6, "same")
    assert "duplicate step id 'same'" in problem.message


@pytest.mark.parametrize("target", ["nowhere", "first", "second"])
def test_on_error_must_name_a_later_step(target: str) -> None:
    problem = one_problem(
        f"""\
        name: jumps
        steps:
          - id: first
            action: core.log
            with: {{message: one}}
          - id: second
            action: core.fail
            on_error: {target}
          - id: third
            action: core.log
            with: {{message: three}}
        """
    )
    assert (problem.line, problem.step) == (8, "second")
    assert f"on_error '{target}'" in problem.message


@pytest.mark.parametrize(
    ("covered", "expected"),
    [
        ("nowhere", "covers 'nowhere', which is not a later step's id"),
        ("first", "covers 'first', which is not a later step's id"),
        ("guarded", "covers 'guarded', which is not a later step's id"),
        ("own", "covers 'own', which asks an approval of its own"),
    ],
)
def test_an_approval_covers_only_later_steps_without_an_approval(
    covered: str, expected: str
) -> None:
    problem = one_problem(
        f"""\
        name: covers
        steps:
          - id: first
            action: core.log
            with: {{message: one}}
          - id: guarded
            action: core.log
            approval:
              covers: [later, {covered}]
            with: {{message: two}}
          - id: later
            action: core.log
            with: {{message: three}}
          - id: own
            action: core.log
            approval: {{required: 1}}
            with: {{message: four}}
        """
    )
    assert (problem.line, problem.step) == (9, "guarded")
    assert expected in problem.message


def test_on_error_may_jump_forward() -> None:
    loaded = parse_playbook(
        textwrap.dedent(
            """\
            name: jumps
            steps:
              - id: first
                action: core.fail
                on_error: third
              - id: second
                action: core.log
                with: {message: two}
              - id: third
                action: core.log
                with: {message: three}
            """
        )
    )
    assert loaded.spec.steps[0].on_error == "third"


def test_a_jinja_syntax_error_in_with_names_its_line() -> None:
    problem = one_problem(
        """\
        name: jinja
        steps:
          - id: hello
            action: core.log
            with:
              message: "hello {{ alert.title "
        """
    )
    assert (problem.line, problem.step) == (6, "hello")
    assert problem.message == (
        'with.message "hello {{ alert.title": template syntax error: unexpected end of '
        "template, expected 'end of print statement'."
    )


def test_a_syntax_error_in_when_is_an_expression_error() -> None:
    problem = one_problem(
        """\
        name: when
        steps:
          - id: hello
            action: core.log
            when: "alert.severity >="
            with: {message: hi}
        """
    )
    assert (problem.line, problem.step) == (5, "hello")
    assert problem.message == (
        "when \"alert.severity >=\": expression syntax error: unexpected 'end of template'"
    )


def test_a_yaml_syntax_error_gives_its_line() -> None:
    problem = one_problem(
        """\
        name: yaml
        steps:
          - id: hello
            action: core.log
            with: {message: "unclosed
          - id: two
        """
    )
    assert problem.file == "bad.yml"
    assert problem.line is not None and problem.line >= 5
    assert problem.message.startswith("YAML:")


def test_every_error_in_a_file_is_reported_not_only_the_first() -> None:
    found = problems(
        """\
        name: many
        steps:
          - id: one
            action: core.logg
            with: {message: hi}
          - id: two
            action: core.log
            with: {message: hi}
            retyr: 3
          - id: three
            action: core.sleep
            with: {seconds: soon}
        """
    )
    by_step = {p.step: p for p in found}
    assert set(by_step) == {"one", "two", "three"}
    assert by_step["one"].line == 4
    assert by_step["two"].line == 9
    assert by_step["three"].line == 12


def test_a_playbook_with_no_steps_is_refused() -> None:
    problem = one_problem("name: empty\nsteps: []\n")
    assert "steps" in problem.message


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    problem = one_problem("- just\n- a list\n")
    assert problem.message == "a playbook must be a mapping"


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("250ms", 0.25), ("1.5h", 5400.0), (45, 45.0)],
)
def test_durations_take_units(written: str | int, seconds: float) -> None:
    loaded = parse_playbook(
        "name: durations\nsteps:\n  - id: nap\n    action: core.sleep\n"
        f"    with: {{seconds: 1}}\n    timeout: {written}\n"
        f"    retry: {{backoff: {written}, max_delay: {written}}}\n"
        f"    approval: {{expires_in: {written}}}\n"
    )
    step = loaded.spec.steps[0]
    assert step.timeout == seconds
    assert step.retry is not None and step.retry.backoff == step.retry.max_delay == seconds
    assert step.approval is not None and step.approval.expires_in == seconds


@pytest.mark.parametrize("written", ["soon", "5 minutes", "-5s", "5x"])
def test_a_malformed_duration_is_refused_with_an_example(written: str) -> None:
    problem = one_problem(
        f"name: durations\nsteps:\n  - id: nap\n    action: core.sleep\n"
        f"    with: {{seconds: 1}}\n    timeout: {written}\n"
    )
    assert (problem.line, problem.step) == (6, "nap")
    assert "timeout" in problem.message


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.text(alphabet="name: steps-id:action{}[]\"'\n #&*!|>%@`core.log{{ }}", max_size=200),
    )
)
def test_any_text_either_parses_or_raises_playbook_invalid(text: str) -> None:
    try:
        parse_playbook(text, "fuzz.yml")
    except PlaybookInvalid as exc:
        assert exc.problems
        assert all(p.file == "fuzz.yml" and p.message for p in exc.problems)


def test_a_self_referencing_yaml_alias_is_a_problem_not_a_crash() -> None:
    found = problems("name: loop\nsteps:\n  - &s {id: a, action: core.log, with: {message: *s}}\n")
    assert [(p.line, p.message) for p in found] == [
        (3, "YAML: aliases (*name) are not allowed in playbooks")
    ]


# ---------------------------------------------------------------------------------------------
# Correlation and threshold triggers

STEPS = "steps:\n  - {id: note, action: core.log, with: {message: hi}}\n"


def test_the_seed_threshold_trigger_loads() -> None:
    loaded = parse_playbook(
        "name: mass-termination\n"
        "trigger:\n"
        "  source: [cloudtrail]\n"
        "  event_name: [TerminateInstances, DeleteInstances]\n"
        "  resources: {production: true}\n"
        "  threshold:\n"
        "    count: 20\n"
        "    within: 5m\n"
        "    group_by: principal.arn\n"
        "    count_resources: true\n" + STEPS
    )
    [trigger] = loaded.spec.triggers
    assert trigger.threshold is not None
    assert (trigger.threshold.count, trigger.threshold.within) == (20, 300.0)
    assert trigger.threshold.group_by == ["principal.arn"]
    assert trigger.resources is not None and trigger.resources.production


def test_a_correlation_trigger_loads() -> None:
    loaded = parse_playbook(
        "name: fold\ntrigger:\n  source: [guardduty]\n"
        "  correlate: {by: [principal.arn, type], within: 1h}\n" + STEPS
    )
    [trigger] = loaded.spec.triggers
    assert trigger.correlate is not None and trigger.correlate.within == 3600.0


def test_a_threshold_count_below_one_names_its_line() -> None:
    problem = one_problem(
        "name: t\ntrigger:\n  threshold:\n    count: 0\n    within: 5m\n" + STEPS
    )
    assert (problem.line, problem.step) == (4, None)
    assert "count" in problem.message and "greater than or equal to 1" in problem.message


@pytest.mark.parametrize(
    ("block", "line"),
    [
        ("  threshold:\n    count: 20\n    within: 5m\n    group_by: principal.rn\n", 6),
        ("  correlate:\n    by: [type, principal.rn]\n    within: 1h\n", 4),
    ],
    ids=["threshold.group_by", "correlate.by"],
)
def test_an_unknown_alert_field_is_named_with_its_line_and_a_suggestion(
    block: str, line: int
) -> None:
    problem = one_problem("name: t\ntrigger:\n" + block + STEPS)
    assert problem.line == line
    assert "unknown alert field 'principal.rn' (did you mean 'principal.arn'?)" in problem.message
    assert "principal.arn" in problem.message.split("one of ")[1]


def test_an_unknown_field_is_reported_even_when_a_step_is_broken_too() -> None:
    found = problems(
        "name: t\ntrigger:\n  correlate: {by: [user], within: 1h}\n"
        "steps:\n  - {id: a, action: core.logg, with: {message: hi}}\n"
    )
    assert sorted(p.line or 0 for p in found) == [3, 5]
    assert any("unknown alert field 'user'" in p.message for p in found)


def test_a_trigger_cannot_both_correlate_and_count() -> None:
    problem = one_problem(
        "name: t\ntrigger:\n  correlate: {by: type, within: 1h}\n"
        "  threshold: {count: 2, within: 5m}\n" + STEPS
    )
    assert problem.line == 4
    assert "not both" in problem.message


@pytest.mark.parametrize("within", ["0s", "soon", "31d", "-5m"])
def test_a_window_must_be_a_positive_duration_of_at_most_thirty_days(within: str) -> None:
    problem = one_problem(
        f"name: t\ntrigger:\n  threshold: {{count: 2, within: {within}}}\n" + STEPS
    )
    assert problem.line == 3
    assert "within" in problem.message


def test_correlate_needs_at_least_one_field() -> None:
    problem = one_problem("name: t\ntrigger:\n  correlate: {by: [], within: 1h}\n" + STEPS)
    assert "by" in problem.message


def test_unknown_keys_in_a_threshold_are_refused() -> None:
    problem = one_problem(
        "name: t\ntrigger:\n  threshold: {count: 2, within: 5m, groupby: type}\n" + STEPS
    )
    assert "unknown field 'groupby'" in problem.message
