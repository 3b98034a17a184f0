"""CloudTrail records normalize to alerts whose principal, account, region and resources match."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.normalize import (
    UnsupportedPayload,
    normalize_cloudtrail,
    normalize_cloudtrail_file,
    normalize_cloudtrail_record,
    normalize_eventbridge,
)
from tests.samples import load


def test_seed_terminate_instances_record_gives_the_step_two_artifacts() -> None:
    """Sample: /work/shared/seed (the analyst's TerminateInstances record), quotes made JSON.

    The record has " TerminateInstances" and " i-2oc7w12" with leading spaces; both are stripped.
    """
    doc = load("seed_terminate_instances")
    [alert] = normalize_cloudtrail_file(doc)

    assert alert.source == "cloudtrail"
    assert alert.kind == "api-call"
    assert alert.type == "TerminateInstances"
    assert alert.account == "0123456789"  # ten digits, kept as given
    assert alert.region == "us-east-2"
    assert alert.principal is not None
    assert alert.principal.model_dump() == {
        "type": "IAMUser",
        "name": "Roboman1",
        "arn": "arn:aws:iam::0123456789:user/Development/Roboman1",
        "access_key_id": "EXAMPLE_ID",
        "account": "0123456789",
    }
    assert [(r.type, r.id, r.region) for r in alert.resources] == [
        ("AwsEc2Instance", "i-2oc7w12", "us-east-2"),
        ("AwsEc2Instance", "i-eob7w13", "us-east-2"),
    ]
    assert alert.dedup_key is None  # the seed's record has no eventID
    assert (alert.severity, alert.severity_label) == (0, "INFORMATIONAL")
    assert alert.event_time == datetime(2020, 11, 6, 3, 21, 39, tzinfo=UTC)
    assert alert.event_name == "TerminateInstances"
    assert alert.source_ip == "180.163.251.231"
    assert alert.user_agent == "console.ec2.amazonaws.com"
    assert alert.mfa_used is None
    details = alert.details
    assert not {"event_time", "event_name", "source_ip", "user_agent", "mfa_used"} & set(details)
    assert details["user_name"] == "Roboman1"
    assert details["account"] == "0123456789"
    assert details["instance_ids"] == ["i-2oc7w12", "i-eob7w13"]
    assert details["arn"] == "arn:aws:iam::0123456789:user/Development/Roboman1"
    assert details["state_changes"] == [
        {"instance_id": "i-2oc7w12", "previous": "running", "current": "shutting-down"},
        {"instance_id": "i-eob7w13", "previous": "running", "current": "shutting-down"},
    ]
    assert details["raw"] == doc["Records"][0]


def test_console_signin_without_mfa_from_a_log_file() -> None:
    """Sample: awsdocs/aws-cloudtrail-user-guide,
    doc_source/cloudtrail-event-reference-aws-console-sign-in-events.md (IAM user, no MFA)."""
    [alert] = normalize_cloudtrail_file(load("cloudtrail_signin_iam_user_no_mfa"))

    assert alert.kind == "console-signin"
    assert alert.type == "ConsoleLogin"
    assert alert.account == "111122223333"
    assert alert.region == "us-east-2"
    assert alert.principal is not None
    assert (alert.principal.type, alert.principal.name) == ("IAMUser", "anaya")
    assert alert.principal.arn == "arn:aws:iam::111122223333:user/anaya"
    assert alert.resources == []
    assert alert.dedup_key == "cloudtrail:3fcfb182-98f8-4744-bd45-10a395ab61cb"
    assert alert.mfa_used is False
    assert alert.details["extra"]["outcome"] == "Success"


def test_console_signin_with_mfa_bare_record() -> None:
    """Sample: the same page, "IAM user, signing in with MFA" (a bare record, no Records)."""
    [alert] = normalize_cloudtrail(load("cloudtrail_signin_iam_user_mfa"))

    assert alert.mfa_used is True
    assert alert.account == "111122223333"
    assert alert.region == "us-east-1"
    assert alert.dedup_key == "cloudtrail:fed06f42-cb12-4764-8c69-121063dc79b9"


def test_failed_console_signin_has_no_arn_and_an_empty_access_key() -> None:
    """Sample: the same page, "IAM user, unsuccessful sign-in" (accessKeyId is "")."""
    alert = normalize_cloudtrail_record(load("cloudtrail_signin_iam_user_failure"))

    assert alert.principal is not None
    assert alert.principal.name == "anaya"
    assert alert.principal.arn is None
    assert alert.principal.access_key_id is None
    assert alert.details["extra"]["outcome"] == "Failure"
    assert "failed" in alert.title


def test_root_console_signin() -> None:
    """Sample: the same page, root user successful sign-in without MFA."""
    alert = normalize_cloudtrail_record(load("cloudtrail_signin_root_no_mfa"))

    assert alert.principal is not None
    assert (alert.principal.type, alert.principal.name) == ("Root", "root")
    assert alert.principal.arn == "arn:aws:iam::111122223333:root"
    assert alert.account == "111122223333"
    assert alert.mfa_used is False


@pytest.mark.parametrize(
    "answer, expected",
    [("Yes", True), ("yes", True), ("NO", False), ("no", False), ("maybe", None), (None, None)],
)
def test_mfa_used_is_read_in_any_case(answer: str | None, expected: bool | None) -> None:
    """Sample: the console sign-in record above with MFAUsed rewritten."""
    record = load("cloudtrail_signin_iam_user_mfa")
    record["additionalEventData"]["MFAUsed"] = answer
    assert normalize_cloudtrail_record(record).mfa_used is expected


# userIdentity elements. IAMUser and AssumedRole are the examples of
# awsdocs/aws-cloudtrail-user-guide doc_source/cloudtrail-event-reference-user-identity.md;
# WebIdentityUser is that page's
# AssumeRoleWithWebIdentity example; the others follow the field descriptions on that page
# (AWSService: invokedBy; AWSAccount: accountId of the caller; FederatedUser: federated-user ARN;
# SAMLUser: userName + identityProvider; IdentityCenterUser: onBehalfOf).
IDENTITIES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (
        {
            "type": "IAMUser",
            "principalId": "AIDAJ45Q7YFFAREXAMPLE",
            "arn": "arn:aws:iam::123456789012:user/Alice",
            "accountId": "123456789012",
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "userName": "Alice",
        },
        {
            "type": "IAMUser",
            "name": "Alice",
            "arn": "arn:aws:iam::123456789012:user/Alice",
            "access_key_id": "AKIAIOSFODNN7EXAMPLE",
            "account": "123456789012",
        },
    ),
    (
        {
            "type": "AssumedRole",
            "principalId": "AROAIDPPEZS35WEXAMPLE:AssumedRoleSessionName",
            "arn": "arn:aws:sts::123456789012:assumed-role/RoleToBeAssumed/MySessionName",
            "accountId": "123456789012",
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "sessionContext": {
                "attributes": {"mfaAuthenticated": "false", "creationDate": "20131102T010628Z"},
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAIDPPEZS35WEXAMPLE",
                    "arn": "arn:aws:iam::123456789012:role/RoleToBeAssumed",
                    "accountId": "123456789012",
                    "userName": "RoleToBeAssumed",
                },
            },
        },
        {
            "type": "AssumedRole",
            "name": "RoleToBeAssumed",
            "arn": "arn:aws:sts::123456789012:assumed-role/RoleToBeAssumed/MySessionName",
            "access_key_id": "AKIAIOSFODNN7EXAMPLE",
            "account": "123456789012",
        },
    ),
    (
        {
            "type": "WebIdentityUser",
            "principalId": "accounts.google.com:application-id.apps.googleusercontent.com:user-id",
            "userName": "user-id",
            "identityProvider": "accounts.google.com",
        },
        {
            "type": "WebIdentityUser",
            "name": "user-id",
            "arn": None,
            "access_key_id": None,
            "account": None,
        },
    ),
    (
        {
            "type": "FederatedUser",
            "principalId": "123456789012:Bob",
            "arn": "arn:aws:sts::123456789012:federated-user/Bob",
            "accountId": "123456789012",
            "accessKeyId": "ASIAIOSFODNN7EXAMPLE",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "IAMUser",
                    "arn": "arn:aws:iam::123456789012:user/Alice",
                    "userName": "Alice",
                }
            },
        },
        {
            "type": "FederatedUser",
            "name": "Bob",
            "arn": "arn:aws:sts::123456789012:federated-user/Bob",
            "access_key_id": "ASIAIOSFODNN7EXAMPLE",
            "account": "123456789012",
        },
    ),
    (
        {
            "type": "SAMLUser",
            "principalId": "SampleUkh1i4+ExamplexL/jEvs=:SamlExample",
            "userName": "SamlExample",
            "identityProvider": "bdGOnTesti4+ExamplexL/jEvs=",
        },
        {
            "type": "SAMLUser",
            "name": "SamlExample",
            "arn": None,
            "access_key_id": None,
            "account": None,
        },
    ),
    (
        {"type": "AWSService", "invokedBy": "ec2.amazonaws.com"},
        {
            "type": "AWSService",
            "name": "ec2.amazonaws.com",
            "arn": None,
            "access_key_id": None,
            "account": None,
        },
    ),
    (
        {"type": "AWSAccount", "principalId": "AIDACKCEVSQ6C2EXAMPLE", "accountId": "444455556666"},
        {
            "type": "AWSAccount",
            "name": "444455556666",
            "arn": None,
            "access_key_id": None,
            "account": "444455556666",
        },
    ),
    (
        {
            "type": "IdentityCenterUser",
            "accountId": "111122223333",
            "onBehalfOf": {
                "userId": "544894e8-80c1-707f-60e3-3ba6510dfac1",
                "identityStoreArn": (
                    "arn:aws:identitystore::111122223333:identitystore/d-1234567890"
                ),
            },
            "credentialId": "EXAMPLEVHULjJdTUdPJfofVa1sufHDoj7aYcOYcxFVllWR_Whr1fEXAMPLE",
        },
        {
            "type": "IdentityCenterUser",
            "name": "544894e8-80c1-707f-60e3-3ba6510dfac1",
            "arn": None,
            "access_key_id": None,
            "account": "111122223333",
        },
    ),
]


@pytest.mark.parametrize("identity, expected", IDENTITIES, ids=[i["type"] for i, _ in IDENTITIES])
def test_every_user_identity_type_gives_a_principal(
    identity: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Samples: see the comment above IDENTITIES; each sits in the seed's record."""
    record = copy.deepcopy(load("seed_terminate_instances")["Records"][0])
    record["userIdentity"] = identity
    alert = normalize_cloudtrail_record(record)
    assert alert.principal is not None
    assert alert.principal.model_dump() == expected
    assert alert.details["user_name"] == expected["name"]


def test_assumed_role_keeps_the_session_name_and_issuer() -> None:
    """Sample: the AssumedRole userIdentity of the CloudTrail userIdentity page."""
    record = {"eventName": "ListBuckets", "userIdentity": IDENTITIES[1][0]}
    extra = normalize_cloudtrail_record(record).details["extra"]
    assert extra["role_session_name"] == "MySessionName"
    assert extra["session_issuer_arn"] == "arn:aws:iam::123456789012:role/RoleToBeAssumed"


def test_identity_center_user_name_when_present() -> None:
    """Sample: the IdentityCenterUser element above with a userName added."""
    identity = {**IDENTITIES[-1][0], "userName": "maria"}
    alert = normalize_cloudtrail_record(
        {"eventName": "GetRoleCredentials", "userIdentity": identity}
    )
    assert alert.principal is not None and alert.principal.name == "maria"


def test_record_without_user_identity_has_no_principal() -> None:
    """Sample: the seed's record with userIdentity removed."""
    record = load("seed_terminate_instances")["Records"][0]
    del record["userIdentity"]
    alert = normalize_cloudtrail_record(record)
    assert alert.principal is None
    assert alert.account is None
    assert alert.details["user_name"] is None


def test_api_call_via_eventbridge_takes_account_region_and_keeps_the_event() -> None:
    """Sample: the seed's record as the detail of an "AWS API Call via CloudTrail" event
    (envelope fields as in the EventBridge user guide)."""
    record = load("seed_terminate_instances")["Records"][0]
    record["eventID"] = "8a6c1d5a-5e7b-4a8e-9a3f-0f0d3e3b1c2d"
    event = {
        "version": "0",
        "id": "6f87d04b-9f74-4f04-a780-7acf4b0a9b38",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ec2",
        "account": "0123456789",
        "time": "2020-11-06T03:21:39Z",
        "region": "us-east-2",
        "resources": [],
        "detail": record,
    }
    [alert] = normalize_eventbridge(event)
    assert alert.source == "cloudtrail"
    assert alert.dedup_key == "cloudtrail:8a6c1d5a-5e7b-4a8e-9a3f-0f0d3e3b1c2d"
    assert alert.details["raw"] == event
    assert alert.details["delivery"]["id"] == "6f87d04b-9f74-4f04-a780-7acf4b0a9b38"
    assert [r.id for r in alert.resources] == ["i-2oc7w12", "i-eob7w13"]


@pytest.mark.parametrize("doc", [[], "Records", {"Records": "x"}, {"Records": [1]}, {"a": 1}])
def test_not_cloudtrail_is_unsupported(doc: object) -> None:
    """Input that is no CloudTrail file or record is refused with UnsupportedPayload."""
    with pytest.raises(UnsupportedPayload):
        normalize_cloudtrail(doc)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2020-11-06T03:21:39Z", datetime(2020, 11, 6, 3, 21, 39, tzinfo=UTC)),
        ("2020-11-06T05:21:39+02:00", datetime(2020, 11, 6, 3, 21, 39, tzinfo=UTC)),
        ("2020-11-06T03:21:39", datetime(2020, 11, 6, 3, 21, 39, tzinfo=UTC)),  # no offset: UTC
        ("yesterday", None),
        ("9999-12-31T23:59:59Z", None),  # no event's time: windows around it would overflow
        ("1969-12-31T23:59:59Z", None),
        (1604632899, None),
    ],
)
def test_the_event_time_is_read_as_utc_or_left_out(
    written: object, expected: datetime | None
) -> None:
    """Sample: the seed's record with its eventTime rewritten."""
    record = load("seed_terminate_instances")["Records"][0]
    record["eventTime"] = written
    assert normalize_cloudtrail_record(record).event_time == expected
