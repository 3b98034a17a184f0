"""Static checks of playbooks: every mistake that would fail at 3 a.m. is found by validate.

The corpus in tests/playbooks/broken/ holds one deliberate mistake per playbook and, beside
each, the exact lines `riposte validate` must print for it (``<name>.expected``).
"""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actions import registry
from engine import conductor
from engine.alerts import NormalizedAlert, Principal, Resource, template_view
from engine.checks.context import STEP_RESULT, alert_shape
from engine.checks.scope import VARS_SET_BY
from engine.checks.triggers import KINDS_OF_SOURCE, PRINCIPAL_TYPES, RESOURCE_TYPES
from engine.normalize.files import read_alert_file
from engine.playbooks import PlaybookInvalid, load_all, parse_playbook, playbook_files
from riposte.cli import app
from tests import samples

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests" / "playbooks" / "broken"
CORPUS = sorted(BROKEN.glob("*.yml"))


def problem_lines(text: str, file: str = "book.yml", *, pinned: bool = False) -> list[str]:
    try:
        parse_playbook(textwrap.dedent(text), file, pinned=pinned)
    except PlaybookInvalid as exc:
        return [str(problem) for problem in exc.problems]
    return []


def expected_lines(playbook: Path) -> list[str]:
    return playbook.with_suffix(".expected").read_text(encoding="utf-8").splitlines()


# ---------------------------------------------------------------------------------------------
# The corpus: one mistake each, the exact message for each


def test_the_corpus_holds_every_mistake_the_issue_names() -> None:
    names = {path.stem for path in CORPUS}
    assert {
        "alert-field-typo", "unknown-filter", "when-unknown-name", "step-not-defined",
        "nested-alert-field", "trigger-source-typo", "parameter-beside-structural-error",
        "bad-enum-value", "unknown-top-level-key", "item-outside-for-each", "later-step",
        "jinja-syntax-error",
    } <= names
    assert all(path.with_suffix(".expected").is_file() for path in CORPUS)


@pytest.mark.parametrize("playbook", CORPUS, ids=[path.stem for path in CORPUS])
def test_a_broken_playbook_gets_exactly_its_expected_messages(playbook: Path) -> None:
    relative = str(playbook.relative_to(ROOT))
    found = problem_lines(playbook.read_text(encoding="utf-8"), relative)
    assert found == expected_lines(playbook)
    assert found, "each playbook of the corpus holds a mistake"


def test_validate_prints_the_corpus_problems_in_file_and_line_order_and_fails() -> None:
    result = CliRunner().invoke(app, ["validate", str(BROKEN)])
    assert result.exit_code == 1, result.output
    printed = result.output.splitlines()
    wanted = [line.replace("tests/playbooks/broken/", f"{BROKEN}/")
              for path in CORPUS for line in expected_lines(path)]
    assert printed[:-1] == wanted
    assert printed[-1] == f"{len(wanted)} problem(s) in {len(CORPUS)} file(s)"


def test_the_shipped_playbooks_validate_clean() -> None:
    loaded, problems = load_all([ROOT / "playbooks"])
    assert [str(problem) for problem in problems] == []
    assert len(loaded) == len(playbook_files([ROOT / "playbooks"]))


# ---------------------------------------------------------------------------------------------
# What a step may read


def test_templates_read_what_the_runner_gives_them() -> None:
    assert problem_lines("""\
        name: reads
        vars: {threshold: 2}
        steps:
          - id: first-look
            action: core.set
            with:
              values:
                seen: "{{ alert.resources | map(attribute='id') | list }}"
          - id: assess
            action: investigation.assess
            with:
              alerts: "{{ alerts }}"
          - id: report
            action: core.log
            when: >-
              steps['first-look'].status == 'succeeded' and vars.verdict
              and (steps['first-look'].output or {}).get('seen') and vars.x is not defined
            for_each: alert.resources
            with:
              message: >-
                {% set who = alert.principal.name | default('unknown') %}{{ who }}
                {% for other in alerts %}{{ loop.index }} {{ other.title }}{% endfor %}
                {{ item.tags.get('Name') }} {{ alerts[0].event_time }} {{ vars.seen | length }}
                {{ vars.threshold }} {{ run.id }} {{ steps.assess.error.code }}
                {{ vars.later | default('none') }} {{ alert.details.anything.goes }}
        """) == []


def test_vars_set_by_a_templated_core_set_are_not_judged() -> None:
    assert problem_lines("""\
        name: open-vars
        steps:
          - id: remember
            action: core.set
            with: {values: "{{ alert.details }}"}
          - id: use
            action: core.log
            with: {message: "{{ vars.whatever }}"}
        """) == []


def test_a_pinned_playbook_is_read_as_it_was_when_its_run_began() -> None:
    text = """\
        name: pinned
        trigger: {source: [gaurdduty]}
        steps:
          - {id: a, action: core.log, with: {message: "{{ vars.gone }}"}}
        """
    assert problem_lines(text, pinned=True) == []
    assert len(problem_lines(text)) == 2


def test_each_trigger_of_several_is_checked_and_named_by_its_place() -> None:
    assert problem_lines("""\
        name: two-triggers
        trigger:
          - {source: [guardduty], kind: [findings]}
          - {source: [securityhub], resources: {type: [AwsIamAccesKey]}}
        steps:
          - {id: a, action: core.log, with: {message: hi}}
        """) == [
        "book.yml:3: trigger[0].kind: no guardduty alert has kind 'findings' (did you mean "
        "'finding'?); guardduty alerts have finding",
        "book.yml:4: trigger[1].resources.type: no alert has resource type 'AwsIamAccesKey' "
        "(did you mean 'AwsIamAccessKey'?); the resource types are AwsCloudWatchAlarm, "
        "AwsEc2Instance, AwsEc2SecurityGroup, AwsEc2Volume, AwsIamAccessKey, AwsIamPolicy, "
        "AwsIamRole, AwsIamUser, AwsLambdaFunction, AwsS3Bucket, Other",
    ]


def test_problems_are_printed_in_line_order_whatever_found_them() -> None:
    found = problem_lines("""\
        name: order
        steps:
          - id: a
            action: core.log
            with: {message: "{{ alert.tpye }}"}
          - id: b
            action: core.sleep
            with: {seconds: soon}
          - id: c
            action: core.log
            retyr: 2
            with: {message: hi}
        """)
    lines = [int(line.split(":")[1]) for line in found]
    assert lines == [5, 8, 11]


def test_every_parameter_of_a_step_with_several_mistakes_is_checked() -> None:
    assert problem_lines("""\
        name: several
        steps:
          - id: isolate
            action: aws.ec2.isolate_instance
            timeout: soon
            with: {instance_id: "{{ alert.resources[0].id }}", region: 5, acount: x}
        """) == [
        "book.yml:5: step 'isolate': timeout: 'soon' is not a duration (e.g. 30, '30s', '5m', "
        "'1h')",
        "book.yml:6: step 'isolate': aws.ec2.isolate_instance: unknown parameter 'instance_id' "
        "(did you mean 'instance_ids'?)",
        "book.yml:6: step 'isolate': aws.ec2.isolate_instance: unknown parameter 'acount' "
        "(did you mean 'account'?)",
    ]


# ---------------------------------------------------------------------------------------------
# The checks' knowledge is the code's own (independent oracles)


def test_the_alert_shape_is_what_templates_see_of_an_alert() -> None:
    alert = NormalizedAlert(
        source="cloudtrail", kind="api-call", title="t", severity=0,
        severity_label="INFORMATIONAL", principal=Principal(name="p"),
        resources=[Resource(type="AwsEc2Instance", id="i-1")],
    )
    view = template_view("a-1", alert)
    shape = alert_shape()
    assert shape.fields is not None and set(shape.fields) == set(view)
    principal = shape.fields["principal"].fields
    assert principal is not None and set(principal) == set(view["principal"])
    resource = shape.fields["resources"].item
    assert resource is not None and resource.fields is not None
    assert set(resource.fields) == set(view["resources"][0])


def test_a_step_result_has_the_fields_the_conductor_records() -> None:
    playbook = parse_playbook("name: p\nsteps:\n  - {id: a, action: core.log, "
                              "with: {message: hi}}\n").spec
    state = conductor.apply(conductor.initial_state(playbook), "claim")
    state = conductor.approval_requested(state, "a", "request-1")
    state = conductor.approval_decided(state, "a", approved=True)
    state = conductor.apply(state, "claim")
    state = conductor.step_finished(playbook, state, "a", status="succeeded")
    assert set(state["steps"]["a"]) == set(STEP_RESULT)
    assert set(state["steps"]["a"]["approval"]) == {"request", "status"}


def test_every_action_that_sets_vars_is_known_to_the_checks() -> None:
    setting = {name for name, action in registry.all_actions().items()
               if "set_vars(" in inspect.getsource(action)}
    assert setting - {"core.set"} == set(VARS_SET_BY)


def test_the_trigger_vocabulary_covers_what_the_normalizers_give_the_samples() -> None:
    def generic(body: dict[str, object]) -> NormalizedAlert:
        raise AssertionError(f"a sample read as a generic alert: {body}")

    alerts = [alert for name in samples.names()
              for alert in read_alert_file(samples.SAMPLES / f"{name}.json", generic=generic)]
    assert {alert.source for alert in alerts} <= set(KINDS_OF_SOURCE)
    for alert in alerts:
        assert alert.kind in KINDS_OF_SOURCE[alert.source], alert.title
        assert {r.type for r in alert.resources} <= set(RESOURCE_TYPES), alert.title
        if alert.principal is not None and alert.principal.type is not None:
            assert alert.principal.type in PRINCIPAL_TYPES, alert.title
