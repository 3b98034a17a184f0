"""``trigger_mismatches``: which condition of a trigger an alert fails, and with what value."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.alerts import NormalizedAlert, Principal, Resource, trigger_matches, trigger_mismatches
from engine.spec import ResourceFilter, Trigger

ALERT = NormalizedAlert(
    source="securityhub", kind="finding", type="TTPs/Initial Access", title="t", severity=40,
    severity_label="MEDIUM", account="111122223333", region="us-east-1",
    principal=Principal(type="IAMUser", name="anaya"), event_name="ListBuckets",
    resources=[Resource(type="AwsIamUser", id="anaya")],
)


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        ({"source": ["guardduty"]},
         "trigger.source: wants [guardduty], the alert's source is 'securityhub'"),
        ({"kind": ["alarm", "finding-x"]},
         "trigger.kind: wants [alarm, finding-x], the alert's kind is 'finding'"),
        ({"event_name": ["TerminateInstances"]},
         "trigger.event_name: wants [TerminateInstances], the alert's event name is "
         "'ListBuckets'"),
        ({"account": ["999999999999"]},
         "trigger.account: wants [999999999999], the alert's account is '111122223333'"),
        ({"region": ["eu-west-1"]},
         "trigger.region: wants [eu-west-1], the alert's region is 'us-east-1'"),
        ({"principal_type": ["Root"]},
         "trigger.principal_type: wants [Root], the alert's principal type is 'IAMUser'"),
        ({"type": "Effects/*"},
         "trigger.type: wants a type matching 'Effects/*', the alert's type is "
         "'TTPs/Initial Access'"),
        ({"severity_at_least": "HIGH"},
         "trigger.severity_at_least: wants HIGH (70) or more, the alert's severity is 40 "
         "(MEDIUM)"),
        ({"severity_at_least": 41},
         "trigger.severity_at_least: wants 41 (41) or more, the alert's severity is 40 (MEDIUM)"),
        ({"resources": {"type": ["AwsIamAccessKey"]}},
         "trigger.resources: wants a resource of type [AwsIamAccessKey], the alert names "
         "AwsIamUser anaya, none of which counts"),
        ({"resources": {"production": True}},
         "trigger.resources: wants a resource that may be production, the alert names "
         "AwsIamUser anaya, none of which counts"),
    ],
)
def test_each_failed_condition_is_named_with_what_it_wants_and_the_alerts_value(
    trigger: dict[str, object], expected: str
) -> None:
    parsed = Trigger.model_validate(trigger)
    assert trigger_mismatches(parsed, ALERT, is_production=None) == [expected]
    assert not trigger_matches(parsed, ALERT, is_production=None)


def test_every_failed_condition_is_listed_in_the_triggers_order() -> None:
    trigger = Trigger.model_validate({"source": ["guardduty"], "severity_at_least": "CRITICAL",
                                      "principal_type": ["IAMUser"]})
    assert [m.split(":")[0] for m in trigger_mismatches(trigger, ALERT, is_production=None)] == [
        "trigger.source", "trigger.severity_at_least",
    ]


def test_a_value_the_alert_does_not_carry_is_said_unknown() -> None:
    alert = ALERT.model_copy(update={"principal": None, "resources": []})
    trigger = Trigger.model_validate({"principal_type": ["IAMUser"],
                                      "resources": {"type": ["AwsEc2Instance"]}})
    assert trigger_mismatches(trigger, alert, is_production=None) == [
        "trigger.principal_type: wants [IAMUser], the alert's principal type is not known",
        "trigger.resources: wants a resource of type [AwsEc2Instance], the alert names no "
        "resource",
    ]


NAMES = st.sampled_from(["guardduty", "securityhub", "cloudtrail", "IAMUser", "Root", "x"])


@given(
    sources=st.lists(NAMES, max_size=2), kinds=st.lists(NAMES, max_size=2),
    principal_types=st.lists(NAMES, max_size=2), pattern=st.none() | st.sampled_from(
        ["*", "TTPs/*", "[TE]*", "Effects/*"]),
    floor=st.none() | st.integers(0, 100),
    resource_types=st.none() | st.lists(st.sampled_from(["AwsIamUser", "AwsEc2Instance"]),
                                        max_size=2),
)
def test_no_mismatch_exactly_when_the_trigger_matches(
    sources: list[str], kinds: list[str], principal_types: list[str], pattern: str | None,
    floor: int | None, resource_types: list[str] | None,
) -> None:
    trigger = Trigger(
        source=sources, kind=kinds, principal_type=principal_types, type=pattern,
        severity_at_least=floor,
        resources=None if resource_types is None else ResourceFilter(type=resource_types),
    )
    mismatches = trigger_mismatches(trigger, ALERT, is_production=None)
    assert (mismatches == []) == trigger_matches(trigger, ALERT, is_production=None)
