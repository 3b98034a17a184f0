"""Triggers become the narrowest EventBridge patterns that still bring every event they match.

Pure: no AWS, no files. The patterns' behaviour against events is proven in
tests/integration/test_wiring_templates.py (moto's EventBridge, and the documented semantics
where moto falls short); here, their shape, the glob translation and the merging of rules.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.spec import Playbook, Trigger
from engine.wiring.globs import MAX_ALTERNATIVES, example_of, glob_matchers, literal
from engine.wiring.hub import hub_template
from engine.wiring.member import split_role
from engine.wiring.patterns import trigger_routes
from engine.wiring.routing import wiring_of
from engine.wiring.template import render, substituted
from tests.eventbridge_patterns import string_matches


def trigger(**fields: Any) -> Trigger:
    return Trigger.model_validate(fields)


def playbook(name: str, trigger_fields: dict[str, Any] | None, **extra: Any) -> Playbook:
    body: dict[str, Any] = {"name": name, "steps": [{"id": "log", "action": "core.log",
                                                     "with": {"message": "hi"}}], **extra}
    if trigger_fields is not None:
        body["trigger"] = trigger_fields
    return Playbook.model_validate(body)


def patterns(**fields: Any) -> list[dict[str, Any]]:
    return [route.pattern for route in trigger_routes(trigger(**fields)).routes]


# ---------------------------------------------------------------------------------------------
# CloudTrail


def test_a_known_api_call_names_its_service_event_source_and_detail_type() -> None:
    assert patterns(source=["cloudtrail"], event_name=["TerminateInstances"]) == [{
        "source": ["aws.ec2"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventSource": ["ec2.amazonaws.com"], "eventName": ["TerminateInstances"]},
    }]


def test_an_unknown_call_is_matched_by_name_alone_in_its_own_pattern() -> None:
    assert patterns(source=["cloudtrail"], event_name=["TerminateInstances", "DeleteInstances"]) \
        == [
            {"source": ["aws.ec2"], "detail-type": ["AWS API Call via CloudTrail"],
             "detail": {"eventSource": ["ec2.amazonaws.com"],
                        "eventName": ["TerminateInstances"]}},
            {"detail-type": [{"suffix": "via CloudTrail"}],
             "detail": {"eventName": ["DeleteInstances"]}},
        ]


def test_calls_of_one_service_share_a_pattern() -> None:
    [pattern] = patterns(source=["cloudtrail"], kind=["api-call"],
                         event_name=["StopInstances", "TerminateInstances"])
    assert pattern["detail"]["eventName"] == ["StopInstances", "TerminateInstances"]


def test_type_and_event_name_together_keep_the_names_the_glob_matches() -> None:
    assert patterns(source=["cloudtrail"], type="Terminate*",
                    event_name=["TerminateInstances", "StopInstances"]) == patterns(
        source=["cloudtrail"], event_name=["TerminateInstances"])
    found = trigger_routes(trigger(source=["cloudtrail"], type="Delete*",
                                   event_name=["TerminateInstances"]))
    assert found.routes == [] and "no CloudTrail event has" in found.unrouted[0]


def test_a_type_glob_on_cloudtrail_becomes_a_prefix_on_the_event_name() -> None:
    assert patterns(source=["cloudtrail"], kind=["api-call"], type="Terminate*") == [{
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventName": [{"prefix": "Terminate"}]},
    }]


def test_a_literal_type_is_an_event_name() -> None:
    assert patterns(source=["cloudtrail"], type="ConsoleLogin") == [{
        "source": ["aws.signin"],
        "detail-type": ["AWS Console Sign In via CloudTrail"],
        "detail": {"eventSource": ["signin.amazonaws.com"], "eventName": ["ConsoleLogin"]},
    }]


def test_a_cloudtrail_trigger_asking_for_severity_gets_no_rule_and_says_why() -> None:
    found = trigger_routes(trigger(source=["cloudtrail"], type="Terminate*",
                                   severity_at_least="MEDIUM"))
    assert found.routes == []
    assert "CloudTrail rates nothing" in found.unrouted[0]


def test_a_known_call_of_another_kind_is_left_out() -> None:
    found = trigger_routes(trigger(source=["cloudtrail"], kind=["api-call"],
                                   event_name=["ConsoleLogin"]))
    assert found.routes == [] and found.unrouted


def test_account_region_and_principal_type_narrow_a_cloudtrail_pattern() -> None:
    [pattern] = patterns(source=["cloudtrail"], event_name=["TerminateInstances"],
                         account=["111122223333"], region=["eu-west-1"],
                         principal_type=["IAMUser"])
    assert pattern["account"] == ["111122223333"] and pattern["region"] == ["eu-west-1"]
    assert pattern["detail"]["userIdentity"] == {"type": ["IAMUser"]}


def test_resources_stay_loose_on_cloudtrail() -> None:
    [route] = trigger_routes(trigger(source=["cloudtrail"], event_name=["TerminateInstances"],
                                     resources={"production": True})).routes
    assert route.loose == ("resources",)


# ---------------------------------------------------------------------------------------------
# GuardDuty and Security Hub


def test_the_shipped_guardduty_glob_is_four_exact_wildcards_on_findings_about_keys() -> None:
    [route] = trigger_routes(trigger(source=["guardduty"], type="[UC][nr]*Access:*",
                                     resources={"type": ["AwsIamAccessKey"]})).routes
    assert route.pattern == {
        "source": ["aws.guardduty"],
        "detail-type": ["GuardDuty Finding"],
        "detail": {
            "type": [{"wildcard": "Cn*Access:*"}, {"wildcard": "Cr*Access:*"},
                     {"wildcard": "Un*Access:*"}, {"wildcard": "Ur*Access:*"}],
            "resource": {"accessKeyDetails": {"accessKeyId": [{"exists": True}]}},
        },
    }
    assert route.loose == ()


@pytest.mark.parametrize(("floor", "severity"), [("LOW", 0.1), ("MEDIUM", 4.0), (70, 7.0),
                                                 (95, 9.5)])
def test_guardduty_severity_is_its_score_over_ten(floor: str | int, severity: float) -> None:
    [pattern] = patterns(source=["guardduty"], severity_at_least=floor)
    assert pattern["detail"]["severity"] == [{"numeric": [">=", severity]}]


def test_guardduty_account_is_the_findings_own_not_the_administrators() -> None:
    [pattern] = patterns(source=["guardduty"], account=["111122223333"], region=["us-east-2"])
    assert pattern["detail"]["accountId"] == ["111122223333"]
    assert pattern["region"] == ["us-east-2"]


def test_guardduty_kinds_other_than_finding_get_no_rule() -> None:
    assert trigger_routes(trigger(source=["guardduty"], kind=["api-call"])).routes == []


def test_securityhub_findings_match_types_labels_and_resource_types() -> None:
    [route] = trigger_routes(trigger(source=["securityhub"], kind=["finding"], type="[TUE]*",
                                     resources={"type": ["AwsIamAccessKey"]},
                                     severity_at_least="MEDIUM")).routes
    assert route.pattern == {
        "source": ["aws.securityhub"],
        "detail-type": ["Security Hub Findings - Imported"],
        "detail": {"findings": {
            "Types": [{"prefix": "E"}, {"prefix": "T"}, {"prefix": "U"}],
            "Severity": {"Label": ["MEDIUM", "HIGH", "CRITICAL"]},
            "Resources": {"Type": ["AwsIamAccessKey"]},
        }},
    }
    # Riposte reads a finding's first type; EventBridge matches any of them: a superset.
    assert route.loose == ("type: the first of a finding's Types",)


@pytest.mark.parametrize(("floor", "labels"), [
    (1, ["LOW", "MEDIUM", "HIGH", "CRITICAL"]),
    (50, ["MEDIUM", "HIGH", "CRITICAL"]),
    ("HIGH", ["HIGH", "CRITICAL"]),
    (90, ["CRITICAL"]),
])
def test_securityhub_severity_keeps_every_label_whose_band_reaches_the_floor(
    floor: str | int, labels: list[str]
) -> None:
    [pattern] = patterns(source=["securityhub"], kind=["finding"], severity_at_least=floor)
    assert pattern["detail"]["findings"]["Severity"]["Label"] == labels


def test_securityhub_without_a_kind_takes_custom_actions_and_insights_too() -> None:
    found = patterns(source=["securityhub"], type="TTPs*")
    assert [p["detail-type"] for p in found] == [
        ["Security Hub Findings - Imported", "Security Hub Findings - Custom Action"],
        ["Security Hub Insight Results"],
    ]
    assert found[1]["detail"] == {"insightName": [{"prefix": "TTPs"}]}


# ---------------------------------------------------------------------------------------------
# Other sources


def test_a_cloudwatch_alarm_trigger_gets_no_rule_but_the_alarm_route() -> None:
    found = trigger_routes(trigger(source=["cloudwatch"], kind=["alarm"],
                                   type="*instance-termination*"))
    assert found.routes == [] and found.alarms and found.unrouted == []


def test_a_trigger_without_source_is_routed_for_every_aws_security_source() -> None:
    found = trigger_routes(trigger(type="Terminate*"))
    assert [p.get("source", p["detail-type"]) for p in (r.pattern for r in found.routes)] == [
        [{"suffix": "via CloudTrail"}], ["aws.guardduty"], ["aws.securityhub"],
        ["aws.securityhub"],
    ]
    assert found.alarms
    assert "generic EventBridge events" in found.unrouted[0]


def test_generic_eventbridge_events_need_a_type() -> None:
    assert patterns(source=["eventbridge"], type="EC2 Instance State-change Notification") == [
        {"detail-type": ["EC2 Instance State-change Notification"]}
    ]
    assert trigger_routes(trigger(source=["eventbridge"])).routes == []


def test_a_source_aws_does_not_send_gets_no_rule_and_says_so() -> None:
    found = trigger_routes(trigger(source=["generic"]))
    assert found.routes == [] and "POST /v1/alerts" in found.unrouted[0]


# ---------------------------------------------------------------------------------------------
# Rules across playbooks


def test_a_playbook_without_trigger_adds_no_rule() -> None:
    wiring = wiring_of([playbook("by-hand", None)])
    assert wiring.rules == [] and wiring.alarm_playbooks == []
    assert wiring.notes == ["playbook by-hand: no trigger (started by hand only): no rule"]


def test_identical_patterns_of_two_playbooks_are_one_rule_naming_both() -> None:
    same = {"source": ["guardduty"], "type": "Recon:*"}
    wiring = wiring_of([playbook("second", same), playbook("first", {**same, "correlate": {
        "by": "principal.arn", "within": "1h"}})])
    [rule] = wiring.rules
    assert rule.playbooks == ["first", "second"]
    assert "first, second" in rule.description


def test_different_patterns_are_different_rules_with_stable_ids() -> None:
    books = [playbook("a", {"source": ["guardduty"], "type": "Recon:*"}),
             playbook("b", {"source": ["guardduty"], "type": "Trojan:*"})]
    first, again = wiring_of(books), wiring_of(reversed(books))
    assert [r.digest for r in first.rules] == [r.digest for r in again.rules]
    assert len({r.digest for r in first.rules}) == 2


def test_an_alarm_playbook_counting_calls_gets_an_alarm_its_trigger_matches() -> None:
    trigger_fields = {"source": ["cloudwatch"], "kind": ["alarm"],
                      "type": "*instance-termination*", "severity_at_least": "HIGH"}
    wiring = wiring_of([playbook("alarm", trigger_fields,
                                 vars={"event_names": ["TerminateInstances"], "threshold": 25})])
    [alarm] = wiring.alarms
    assert fnmatch.fnmatchcase(alarm.alarm_name, "*instance-termination*")
    assert (alarm.metric_name, alarm.threshold) == ("TerminateInstancesCount", 25)
    assert alarm.filter_pattern == (
        '{ (($.eventSource = "ec2.amazonaws.com") && ($.eventName = "TerminateInstances")) }'
    )


def test_an_alarm_playbook_naming_no_calls_gets_the_topic_only() -> None:
    wiring = wiring_of([playbook("alarm", {"source": ["cloudwatch"], "type": "cpu-*"})])
    assert wiring.alarm_playbooks == ["alarm"] and wiring.alarms == []
    assert "no vars.event_names" in wiring.notes[0]


# ---------------------------------------------------------------------------------------------
# Globs


@pytest.mark.parametrize(("glob", "matchers", "exact"), [
    ("TerminateInstances", ["TerminateInstances"], True),
    ("Terminate*", [{"prefix": "Terminate"}], True),
    ("*Access", [{"suffix": "Access"}], True),
    ("*instance-termination*", [{"wildcard": "*instance-termination*"}], True),
    ("[TUE]*", [{"prefix": "E"}, {"prefix": "T"}, {"prefix": "U"}], True),
    ("x[*]y*", [{"prefix": "x*y"}], True),
    ("a[*]b*c", [{"wildcard": "a\\*b*c"}], True),
    ("a?c", [{"wildcard": "a*c"}], False),
    ("[!a]bc", [{"suffix": "bc"}], False),
    ("[a-z]x", [{"suffix": "x"}], False),
    ("a[b", ["a[b"], True),
])
def test_globs_translate_to_the_narrowest_matchers(
    glob: str, matchers: list[Any], exact: bool
) -> None:
    translated = glob_matchers(glob)
    assert (translated.matchers, translated.exact) == (matchers, exact)


def test_a_glob_matching_everything_constrains_nothing() -> None:
    assert glob_matchers("**").matchers is None


def test_too_many_alternatives_widen_the_largest_class() -> None:
    translated = glob_matchers("[a-z][0-9]-x")
    assert translated.matchers is not None and len(translated.matchers) <= MAX_ALTERNATIVES
    assert not translated.exact


GLOB_PIECES = st.sampled_from(["a", "b", "*", "?", "[ab]", "[!a]", "[*]", "\\", "[a-c]", "-"])
TEXTS = st.text(alphabet="abc*\\-", max_size=6)


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(GLOB_PIECES, max_size=5), text=TEXTS)
def test_the_matchers_select_at_least_what_the_glob_does_and_exactly_when_they_say_so(
    pieces: list[str], text: str
) -> None:
    glob = "".join(pieces)
    translated = glob_matchers(glob)
    wanted = fnmatch.fnmatchcase(text, glob)
    selected = translated.matchers is None or any(
        string_matches(m, text) for m in translated.matchers
    )
    assert selected or not wanted  # never narrower
    if translated.exact:
        assert selected == wanted


def test_literal_and_example_read_globs_as_fnmatch_does() -> None:
    assert literal("[*]x") == "*x" and literal("a*") is None
    assert example_of("*instance-termination*", lead="riposte-") == "riposte-instance-termination"
    assert example_of("[!a]", lead="") is None


# ---------------------------------------------------------------------------------------------
# Template text


def test_substitution_wraps_pseudo_parameters_and_escapes_iam_policy_variables() -> None:
    policy = {"Resource": ["arn:${AWS::Partition}:iam::${AWS::AccountId}:user/${aws:username}",
                           "*"], "Sid": "x", "Count": 3}
    assert substituted(policy) == {
        "Resource": [{"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:user/"
                                 "${!aws:username}"}, "*"],
        "Sid": "x",
        "Count": 3,
    }
    assert substituted("${Name}/${Other}", names=frozenset({"Name"})) == {
        "Fn::Sub": "${Name}/${!Other}"}


@pytest.mark.parametrize(("role", "path", "name"), [
    ("riposte-responder", "/", "riposte-responder"),
    ("security/ir/riposte", "/security/ir/", "riposte"),
    ("/security/riposte/", "/security/", "riposte"),
])
def test_the_responder_role_setting_splits_into_path_and_name(
    role: str, path: str, name: str
) -> None:
    assert split_role(role) == (path, name)


def test_two_alarms_counting_the_same_calls_share_one_metric_filter() -> None:
    """Two filters writing one metric would count every call twice (and alarm at half)."""
    counted = {"vars": {"event_names": ["TerminateInstances"]}}
    wiring = wiring_of([
        playbook("prod", {"source": ["cloudwatch"], "type": "prod-termination"}, **counted),
        playbook("dev", {"source": ["cloudwatch"], "type": "dev-termination"}, **counted),
    ])
    resources = hub_template(wiring, api_key_header="x-key")["Resources"]
    kinds = [r["Type"] for r in resources.values()]
    assert kinds.count("AWS::Logs::MetricFilter") == 1
    assert sorted(r["Properties"]["AlarmName"] for r in resources.values()
                  if r["Type"] == "AWS::CloudWatch::Alarm") == ["dev-termination",
                                                               "prod-termination"]


def test_yaml_and_json_print_the_same_template() -> None:
    wiring = wiring_of([playbook("recon", {"source": ["guardduty"], "type": "Recon:*"})])
    body = hub_template(wiring, api_key_header="x-key")
    printed_yaml = render(body, "yaml", header="made here\nby a test")
    assert printed_yaml.startswith("# made here\n# by a test\nAWSTemplateFormatVersion:")
    assert yaml.safe_load(printed_yaml) == json.loads(render(body, "json")) == body
