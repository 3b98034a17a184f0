"""aws.iam.describe_principal against the moto server.

Everything moto makes is created "now", so ages and the recent-changes window are checked by
reading the seeded principal as of a later moment. moto cannot record a console sign-in
(``PasswordLastUsed``): that field is checked on answers played by botocore's Stubber.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from actions.aws.clients import AwsClients
from actions.aws.iam_describe import PrincipalReader
from actions.base import ActionError
from tests.aws_sandbox import OWN_ACCOUNT, REGION, AwsSandbox
from tests.integration.iam_seed import role_alert, seed_role, seed_user, user_alert

DESCRIBE = "aws.iam.describe_principal"


def policy(*actions: str) -> str:
    statement = {"Effect": "Allow", "Action": list(actions), "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def seed_suspect(aws: AwsSandbox) -> dict[str, Any]:
    """alice: in group dev, a customer policy edited once, one key used on S3, MFA, password."""
    iam = aws.client("iam")
    used, unused = seed_user(aws, keys=("Active", "Inactive"), tags={"team": "payments"})
    iam.create_group(GroupName="dev")
    iam.add_user_to_group(GroupName="dev", UserName="alice")
    iam.attach_group_policy(GroupName="dev", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    iam.put_group_policy(GroupName="dev", PolicyName="dev-extra", PolicyDocument=policy("sqs:*"))
    arn = iam.create_policy(PolicyName="deploy", PolicyDocument=policy("s3:GetObject"))["Policy"][
        "Arn"
    ]
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=policy("*"), SetAsDefault=True)
    iam.attach_user_policy(UserName="alice", PolicyArn=arn)
    iam.put_user_policy(UserName="alice", PolicyName="ec2-admin", PolicyDocument=policy("ec2:*"))
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="alice-phone")["VirtualMFADevice"][
        "SerialNumber"
    ]
    iam.enable_mfa_device(
        UserName="alice",
        SerialNumber=serial,
        AuthenticationCode1="123456",
        AuthenticationCode2="654321",
    )
    secret = "not-checked-by-the-emulator"
    s3 = boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=aws.url,
        aws_access_key_id=used,
        aws_secret_access_key=secret,
    )
    s3.list_buckets()  # the emulator records the key's last use: s3, us-east-1
    return {"used": used, "unused": unused, "policy": arn, "mfa": serial}


def test_describe_user_reports_access_keys_policies_groups_and_recent_changes(
    aws: AwsSandbox,
) -> None:
    seeded = seed_suspect(aws)
    described = aws.act(DESCRIBE, {}, env=aws.env(alert=user_alert("alice"))).output
    json.dumps(described)
    assert described["type"] == "user"
    assert described["arn"] == f"arn:aws:iam::{OWN_ACCOUNT}:user/alice"
    assert described["tags"] == {"team": "payments"}
    assert described["age_days"] == 0
    [group] = described["groups"]
    assert group["name"] == "dev"
    assert group["attached_policies"] == [
        {"name": "ReadOnlyAccess", "arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}
    ]
    assert [p["name"] for p in group["inline_policies"]] == ["dev-extra"]
    assert described["attached_policies"] == [{"name": "deploy", "arn": seeded["policy"]}]
    [inline] = described["inline_policies"]
    assert inline["name"] == "ec2-admin"
    assert inline["document"]["Statement"][0]["Action"] == ["ec2:*"]

    keys = {key["id"]: key for key in described["access_keys"]}
    assert keys[seeded["used"]]["status"] == "Active"
    assert keys[seeded["used"]]["age_days"] == 0
    assert keys[seeded["used"]]["last_used"]["service"] == "s3"
    assert keys[seeded["used"]]["last_used"]["region"] == REGION
    assert keys[seeded["unused"]]["status"] == "Inactive"
    assert keys[seeded["unused"]]["last_used"] is None

    assert described["mfa_enabled"] is True
    assert [d["serial"] for d in described["mfa_devices"]] == [seeded["mfa"]]
    assert described["console_password"]["exists"] is True
    assert described["console_password"]["last_used"] is None  # never signed in

    changes = {(c["change"], c.get("of")) for c in described["recent_changes"]}
    assert ("policy version v2 created (the version in force)", seeded["policy"]) in changes
    assert ("policy version v1 created", seeded["policy"]) in changes
    assert ("access key created", seeded["used"]) in changes
    assert ("MFA device enabled", seeded["mfa"]) in changes
    assert ("user created", None) in changes
    # AWS's own policies change with AWS releases, not with this user: not listed.
    assert not any("ReadOnlyAccess" in str(c.get("of")) for c in described["recent_changes"])
    assert "CloudTrail" in described["not_recorded_by_iam"]
    assert "1 of 2 access key(s) active" in described["summary"]


def test_ages_and_the_recent_window_count_from_the_moment_of_reading(aws: AwsSandbox) -> None:
    seeded = seed_suspect(aws)
    iam = AwsClients(aws.settings, dry_run=True, run_id="r").client("iam")
    later = datetime.now(UTC) + timedelta(days=100, minutes=1)
    old = PrincipalReader(iam, later, recent_days=30).user("alice")
    assert old["age_days"] == 100
    assert {key["age_days"] for key in old["access_keys"]} == {100}
    assert old["recent_changes"] == []
    wide = PrincipalReader(iam, later, recent_days=365).user("alice")
    assert ("access key created", seeded["used"]) in {
        (c["change"], c.get("of")) for c in wide["recent_changes"]
    }


def test_describe_role_of_an_assumed_role_session(aws: AwsSandbox) -> None:
    iam = aws.client("iam")
    role_arn = seed_role(
        aws,
        "app",
        MaxSessionDuration=7200,
        Description="the app",
        Tags=[{"Key": "a", "Value": "b"}],
    )
    iam.attach_role_policy(RoleName="app", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    revoke = {
        "Effect": "Deny",
        "Action": ["*"],
        "Resource": ["*"],
        "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2024-05-01T10:00:00Z"}},
    }
    iam.put_role_policy(
        RoleName="app",
        PolicyName="AWSRevokeOlderSessions",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [revoke]}),
    )
    iam.create_instance_profile(InstanceProfileName="app-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="app-profile", RoleName="app")
    before = aws.act(DESCRIBE, {"type": "role", "name": "app"}).output
    assert before["last_used"] is None

    session = aws.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="s1")
    credentials = session["Credentials"]
    boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=aws.url,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    ).list_buckets()

    described = aws.act(DESCRIBE, {}, env=aws.env(alert=role_alert("app", session="s1"))).output
    assert described["type"] == "role"
    assert described["session"] == "s1"
    assert described["arn"] == role_arn
    assert described["trusted_principals"] == {"AWS": [f"arn:aws:iam::{OWN_ACCOUNT}:root"]}
    assert described["trust_policy"]["Statement"][0]["Action"] == "sts:AssumeRole"
    assert described["max_session_duration_seconds"] == 7200
    assert described["description"] == "the app"
    assert described["tags"] == {"a": "b"}
    assert described["last_used"]["date"] is not None
    assert described["instance_profiles"] == ["app-profile"]
    assert described["sessions_revoked_before"] == "2024-05-01T10:00:00+00:00"
    assert [p["name"] for p in described["attached_policies"]] == ["ReadOnlyAccess"]
    assert ("role created", None) in {
        (c["change"], c.get("of")) for c in described["recent_changes"]
    }
    assert "sessions up to 2 h" in described["summary"]


def test_describe_is_cached_for_the_rest_of_the_run(aws: AwsSandbox) -> None:
    seed_user(aws)
    env = aws.env(alert=user_alert("alice"))
    first = aws.act(DESCRIBE, {}, env=env)
    sent = len(env.aws.calls.sent)
    second = aws.act(DESCRIBE, {"arn": f"arn:aws:iam::{OWN_ACCOUNT}:user/alice"}, env=env)
    assert len(env.aws.calls.sent) == sent  # nothing asked of AWS the second time
    assert second.output == first.output


def test_describe_refuses_what_iam_cannot_describe(aws: AwsSandbox) -> None:
    cases: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        ({}, {"type": "user", "name": "nobody"}, "NoSuchUser"),
        ({}, {"arn": f"arn:aws:iam::{OWN_ACCOUNT}:role/nobody"}, "NoSuchRole"),
        ({}, {"arn": f"arn:aws:iam::{OWN_ACCOUNT}:root"}, "UnsupportedPrincipal"),
        ({}, {"arn": "arn:aws:sts::123456789012:federated-user/bob"}, "UnsupportedPrincipal"),
        ({}, {}, "NoPrincipal"),
    ]
    for alert, params, code in cases:
        with pytest.raises(ActionError) as refused:
            aws.act(DESCRIBE, params, env=aws.env(alert=alert))
        assert refused.value.code == code, params


def test_describe_input_names_a_principal_one_way() -> None:
    from actions.aws.iam_describe import DescribePrincipalInput

    with pytest.raises(ValueError, match="together"):
        DescribePrincipalInput.model_validate({"name": "alice"})
    with pytest.raises(ValueError, match="not both"):
        DescribePrincipalInput.model_validate(
            {"arn": "arn:aws:iam::1:user/a", "type": "user", "name": "a"}
        )


def test_password_last_use_and_old_keys_as_iam_reports_them(aws: AwsSandbox) -> None:
    """moto cannot record a console sign-in; the Stubber plays IAM's answers for one user."""
    iam = AwsClients(aws.settings, dry_run=True, run_id="r").client("iam")
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    created = now - timedelta(days=400)
    signed_in = now - timedelta(days=2)
    user = {
        "UserName": "alice",
        "UserId": "AIDAEXAMPLEEXAMPLE01",
        "Arn": f"arn:aws:iam::{OWN_ACCOUNT}:user/Development/alice",
        "Path": "/Development/",
        "CreateDate": created,
        "PasswordLastUsed": signed_in,
    }
    key = {
        "UserName": "alice",
        "AccessKeyId": "AKIAEXAMPLEEXAMPLE01",
        "Status": "Active",
        "CreateDate": created,
    }
    with Stubber(iam._client) as stub:
        stub.add_response("get_user", {"User": user}, {"UserName": "alice"})
        stub.add_response("list_groups_for_user", {"Groups": []}, {"UserName": "alice"})
        stub.add_response("list_attached_user_policies", {"AttachedPolicies": []})
        stub.add_response("list_user_policies", {"PolicyNames": []})
        stub.add_response("list_access_keys", {"AccessKeyMetadata": [key]})
        stub.add_response(
            "get_access_key_last_used",
            {
                "UserName": "alice",
                "AccessKeyLastUsed": {
                    "LastUsedDate": signed_in,
                    "ServiceName": "ec2",
                    "Region": "us-east-2",
                },
            },
        )
        stub.add_response("list_mfa_devices", {"MFADevices": []})
        stub.add_response(
            "get_login_profile",
            {"LoginProfile": {"UserName": "alice", "CreateDate": created}},
        )
        described = PrincipalReader(iam, now, recent_days=7).user("alice")
        stub.assert_no_pending_responses()
    assert described["path"] == "/Development/"
    assert described["console_password"] == {
        "exists": True,
        "created": created.isoformat(),
        "reset_required": False,
        "last_used": signed_in.isoformat(),
    }
    assert described["access_keys"] == [
        {
            "id": "AKIAEXAMPLEEXAMPLE01",
            "status": "Active",
            "created": created.isoformat(),
            "age_days": 400,
            "last_used": {"date": signed_in.isoformat(), "service": "ec2", "region": "us-east-2"},
        }
    ]
    assert described["mfa_enabled"] is False
    assert described["recent_changes"] == []
