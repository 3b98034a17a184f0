"""GuardDuty findings normalize with the documented severity mapping, principal and resources."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.normalize import guardduty_score, normalize_eventbridge, normalize_guardduty_finding
from tests.samples import load


def test_ssh_brute_force_event_names_the_instance() -> None:
    """Sample: blu371ck/GuardDuty-SOAR,
    tests/validation-scenarios/ec2/ec2-brute-force-source/ec2-brute-force-target/event.json.tpl
    (PascalCase keys, 13-digit account id, ${...} placeholder values left as they are)."""
    event = load("guardduty_ec2_ssh_brute_force")
    [alert] = normalize_eventbridge(event)

    assert (alert.source, alert.kind) == ("guardduty", "finding")
    assert alert.type == "UnauthorizedAccess:EC2/SSHBruteForce"
    assert alert.account == "1234567891234"
    assert alert.region == "us-east-1"
    assert alert.principal is None
    assert [(r.type, r.id) for r in alert.resources] == [("AwsEc2Instance", "${instance_id}")]
    assert alert.dedup_key == "guardduty:49514155ed6b4536b05649a87fc3c05a@2025-10-01T18:05:37.470Z"
    assert (alert.severity, alert.severity_label) == (50, "MEDIUM")
    assert alert.source_ip == "${malicious_ip}"
    assert alert.details["raw"] == event


def test_s3_discovery_names_the_access_key_user_and_both_buckets() -> None:
    """Sample: blu371ck/GuardDuty-SOAR, tests/validation-scenarios/s3/compromised-discovery-multi/
    event.json.tpl (two S3 buckets, an IAM user's access key)."""
    [alert] = normalize_eventbridge(load("guardduty_s3_discovery_multi_bucket"))

    assert alert.principal is not None
    assert alert.principal.model_dump() == {
        "type": "IAMUser",
        "name": "${user_name}",
        "arn": None,
        "access_key_id": "ASIA_DUMMY_KEY",
        "account": "1234567891234",
    }
    assert [(r.type, r.id) for r in alert.resources] == [
        ("AwsIamAccessKey", "ASIA_DUMMY_KEY"),
        ("AwsS3Bucket", "${bucket_1_name}"),
        ("AwsS3Bucket", "${bucket_2_name}"),
    ]
    assert alert.account == "1234567891234"
    assert alert.region == "us-east-1"
    assert alert.dedup_key == "guardduty:e2e-s3-multi-bucket-finding@2025-10-18T11:55:00Z"
    assert (alert.severity, alert.severity_label) == (50, "MEDIUM")


def test_cli_get_findings_output_reads_the_api_call() -> None:
    """Sample: aws/aws-cli, awscli/examples/guardduty/get-findings.rst (Findings[0])."""
    finding = load("guardduty_get_findings_cli_output")["Findings"][0]
    alert = normalize_guardduty_finding(finding)

    assert alert.principal is not None
    assert (alert.principal.name, alert.principal.access_key_id) == (
        "testuser",
        "ASIASZ4SI7REEEXAMPLE",
    )
    assert alert.account == "111122223333"
    assert alert.region == "us-east-1"
    assert alert.source_ip == "52.94.36.7"
    assert alert.event_name == "ListPolicyVersions"
    assert alert.event_time == datetime(2020, 5, 26, 22, 33, 55, tzinfo=UTC)
    assert alert.dedup_key == "guardduty:1ab92989eaf0e742df4a014d5example@2020-05-26T22:55:21.703Z"


def test_camel_case_event_as_eventbridge_delivers_it() -> None:
    """Sample: the CLI finding above rewritten with the camelCase member names of the GuardDuty API
    reference (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_Finding.html), which
    is how EventBridge delivers findings; type UnauthorizedAccess:IAMUser/ConsoleLogin."""
    event = {
        "version": "0",
        "id": "cd2d702e-ab31-411b-9344-793ce56b1bc7",
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": "111122223333",
        "time": "1970-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "schemaVersion": "2.0",
            "accountId": "111122223333",
            "region": "us-east-1",
            "id": "16afba5c5c43e07c9e3e5e2e544e95df",
            "type": "UnauthorizedAccess:IAMUser/ConsoleLogin",
            "severity": 7.2,
            "updatedAt": "2024-03-01T10:00:00.000Z",
            "title": "Console login",
            "resource": {
                "resourceType": "AccessKey",
                "accessKeyDetails": {
                    "accessKeyId": "ASIAEXAMPLE",
                    "userName": "alice",
                    "userType": "IAMUser",
                },
                "instanceDetails": {
                    "instanceId": "i-0123456789abcdef0",
                    "availabilityZone": "us-east-1a",
                    "tags": [{"key": "env", "value": "prod"}],
                },
            },
            "service": {
                "action": {
                    "actionType": "AWS_API_CALL",
                    "awsApiCallAction": {
                        "api": "ConsoleLogin",
                        "remoteIpDetails": {"ipAddressV4": "198.51.100.7"},
                    },
                }
            },
        },
    }
    [alert] = normalize_eventbridge(event)
    assert alert.type == "UnauthorizedAccess:IAMUser/ConsoleLogin"
    assert (alert.severity, alert.severity_label) == (72, "HIGH")
    assert alert.principal is not None and alert.principal.name == "alice"
    instance = alert.resources[0]
    assert (instance.id, instance.tags) == ("i-0123456789abcdef0", {"env": "prod"})
    assert alert.source_ip == "198.51.100.7"
    assert alert.details["instance_ids"] == ["i-0123456789abcdef0"]


@pytest.mark.parametrize(
    "severity, score, label",
    [
        (0.1, 1, "LOW"),
        (1.0, 10, "LOW"),
        (3.9, 39, "LOW"),
        (4.0, 40, "MEDIUM"),
        (6.9, 69, "MEDIUM"),
        (6.95, 69, "MEDIUM"),
        (7.0, 70, "HIGH"),
        (8.9, 89, "HIGH"),
        (9.0, 90, "CRITICAL"),
        (10, 100, "CRITICAL"),
        ("8", 80, "HIGH"),
        (None, 0, "INFORMATIONAL"),
        (-3, 0, "INFORMATIONAL"),
        (1e308, 100, "CRITICAL"),
        ("high", 0, "INFORMATIONAL"),
    ],
)
def test_guardduty_severity_mapping(severity: object, score: int, label: str) -> None:
    """The mapping documented in engine/normalize/guardduty.py."""
    assert guardduty_score(severity) == (score, label)
