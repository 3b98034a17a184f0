"""Security Hub events give one alert per finding, with ASFF severity, resources and principal."""

from __future__ import annotations

from typing import Any

import pytest

from engine.normalize import normalize_eventbridge, normalize_securityhub_finding
from tests.samples import load

# Findings: aws-solutions/automated-security-response-on-aws, simtest/simdata/afsbp-ec2.2.json and
# simtest/simdata/afsbp-iam.8.json. Envelopes: awsdocs/aws-security-hub-user-guide,
# doc_source/securityhub-cwe-event-formats.md (their [AMAZON_FINDING_JSON] placeholder filled
# with those findings).


def imported_event() -> dict[str, Any]:
    event: dict[str, Any] = load("securityhub_event_imported_envelope")
    event["detail"]["findings"] = [
        load("securityhub_finding_afsbp_ec2_2"),
        load("securityhub_finding_afsbp_iam_8"),
    ]
    return event


def test_findings_imported_gives_one_alert_per_finding() -> None:
    """Sample: user-guide Findings - Imported envelope with the two ASR findings."""
    event = imported_event()
    first, second = normalize_eventbridge(event)

    assert (first.source, first.kind) == ("securityhub", "finding")
    assert first.type.startswith("Software and Configuration Checks/")
    assert first.account == "111111111111"  # the finding's account, not the envelope's
    assert first.region == "us-east-1"
    assert (first.severity, first.severity_label) == (0, "INFORMATIONAL")
    [group] = first.resources
    assert (group.type, group.id, group.region) == (
        "AwsEc2SecurityGroup",
        "arn:aws:ec2:us-east-1:111111111111:security-group/sg-1234123f",
        "us-east-1",
    )
    assert group.arn == group.id
    assert first.principal is None
    assert first.dedup_key == (
        "securityhub:arn:aws:securityhub:us-east-1:111111111111:subscription/"
        "aws-foundational-security-best-practices/v/1.0.0/EC2.2/finding/"
        "835974e0-d335-49a1-af89-e47a5954d46b@2021-02-17T08:56:22.772Z"
    )
    assert first.details["raw"] == event["detail"]["findings"][0]
    assert first.details["envelope"]["id"] == "CWE-event-id"
    assert first.details["delivery"]["detail_type"] == "Security Hub Findings - Imported"

    assert (second.severity, second.severity_label) == (40, "MEDIUM")
    assert second.principal is not None
    assert second.principal.model_dump() == {
        "type": "IAMUser",
        "name": "sharrtest",
        "arn": "arn:aws:iam::111111111111:user/sharrtest",
        "access_key_id": None,
        "account": "111111111111",
    }
    assert [(r.type, r.id) for r in second.resources] == [
        ("AwsIamUser", "arn:aws:iam::111111111111:user/sharrtest")
    ]
    assert second.details["extra"]["workflow_status"] == "NEW"


def test_single_finding_keeps_the_whole_event_as_raw() -> None:
    """Sample: the envelope with only the IAM.8 finding."""
    event = load("securityhub_event_imported_envelope")
    event["detail"]["findings"] = [load("securityhub_finding_afsbp_iam_8")]
    [alert] = normalize_eventbridge(event)
    assert alert.details["raw"] == event


def test_custom_action_is_its_own_alert_each_time() -> None:
    """Sample: user-guide Findings - Custom Action envelope with the EC2.2 finding."""
    event = load("securityhub_event_custom_action_envelope")
    event["detail"]["findings"] = [load("securityhub_finding_afsbp_ec2_2")]
    [alert] = normalize_eventbridge(event)
    assert alert.kind == "custom-action"
    assert alert.details["extra"]["action_name"] == "custom-action-name"
    assert alert.dedup_key is not None
    assert alert.dedup_key.startswith("securityhub-action:1a1111a1-b22b-3c33-444d-5555e5ee5555:")
    assert alert.account == "111111111111"


def test_insight_results_is_one_informational_alert() -> None:
    """Sample: user guide, Security Hub Insight Results event (verbatim)."""
    event = load("securityhub_event_insight_results")
    [alert] = normalize_eventbridge(event)
    assert (alert.source, alert.kind, alert.type) == (
        "securityhub",
        "insight",
        "Name of the insight",
    )
    assert (alert.account, alert.region) == ("111122223333", "us-west-1")
    assert alert.dedup_key == "eventbridge:1a1111a1-b22b-3c33-444d-5555e5ee5555"
    assert alert.details["extra"]["results"] == [{"result 1": 5}, {"result 2": 6}]


def test_ec2_instance_resource_gets_the_bare_id_and_tags() -> None:
    """Sample: the EC2.2 finding with its resource changed to an instance (ASFF Resources[]
    fields Type, Id, Region, Tags as in the ASFF syntax page of the user guide)."""
    finding = load("securityhub_finding_afsbp_ec2_2")
    finding["Resources"] = [
        {
            "Type": "AwsEc2Instance",
            "Region": "us-east-1",
            "Partition": "aws",
            "Id": "arn:aws:ec2:us-east-1:111111111111:instance/i-0abcdef1234567890",
            "Tags": {"Environment": "production"},
        }
    ]
    alert = normalize_securityhub_finding(finding)
    [instance] = alert.resources
    assert (instance.type, instance.id, instance.tags) == (
        "AwsEc2Instance",
        "i-0abcdef1234567890",
        {"Environment": "production"},
    )
    assert instance.arn == "arn:aws:ec2:us-east-1:111111111111:instance/i-0abcdef1234567890"
    assert alert.details["instance_ids"] == ["i-0abcdef1234567890"]


def test_guardduty_finding_in_security_hub_gives_the_access_key_principal() -> None:
    """Sample: the IAM.8 finding with a GuardDuty-style AwsIamAccessKey resource
    ("AWS::IAM::AccessKey:<id>" Id, as GuardDuty findings appear in Security Hub)."""
    finding = load("securityhub_finding_afsbp_iam_8")
    finding["Resources"] = [
        {
            "Type": "AwsIamAccessKey",
            "Region": "us-east-1",
            "Partition": "aws",
            "Id": "AWS::IAM::AccessKey:ASIASBP34UWCXYDP5SM5",
            "Details": {"AwsIamAccessKey": {"UserName": "Root"}},
        }
    ]
    finding["Note"] = {"Text": "contained", "UpdatedBy": "riposte", "UpdatedAt": "2021-07-21"}
    alert = normalize_securityhub_finding(finding)
    assert alert.principal is not None
    assert (alert.principal.name, alert.principal.access_key_id) == ("Root", "ASIASBP34UWCXYDP5SM5")
    assert [(r.type, r.id) for r in alert.resources] == [
        ("AwsIamAccessKey", "ASIASBP34UWCXYDP5SM5")
    ]
    assert alert.details["extra"]["note_updated_by"] == "riposte"


@pytest.mark.parametrize(
    "severity, expected",
    [
        ({"Label": "HIGH", "Normalized": 75}, (75, "HIGH")),
        ({"Label": "HIGH", "Normalized": 10}, (70, "HIGH")),
        ({"Label": "critical"}, (90, "CRITICAL")),
        ({"Normalized": 45}, (45, "MEDIUM")),
        ({"Product": 8}, (0, "INFORMATIONAL")),
        ("HIGH", (0, "INFORMATIONAL")),
    ],
)
def test_security_hub_severity(severity: object, expected: tuple[int, str]) -> None:
    """Label wins; Normalized is the score when it is inside the label's band."""
    finding = {**load("securityhub_finding_afsbp_ec2_2"), "Severity": severity}
    alert = normalize_securityhub_finding(finding)
    assert (alert.severity, alert.severity_label) == expected


def test_event_without_findings_is_generic_not_an_error() -> None:
    """Sample: the user-guide Findings - Imported envelope as is (findings empty)."""
    [alert] = normalize_eventbridge(load("securityhub_event_imported_envelope"))
    assert alert.kind == "generic"
    assert alert.dedup_key == "eventbridge:CWE-event-id"
