"""IAM state for the IAM action tests: seeded and read back with plain boto3, never Riposte."""

from __future__ import annotations

import json
from typing import Any

from tests.aws_sandbox import OWN_ACCOUNT, REGION, AwsSandbox

DENY_ALL = "arn:aws:iam::aws:policy/AWSDenyAll"
TRUST_ANYONE_IN_ACCOUNT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{OWN_ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def user_alert(name: str, *, account: str = OWN_ACCOUNT) -> dict[str, Any]:
    """An alert whose principal is the IAM user ``name``, as templates see it."""
    return {
        "account": account,
        "region": REGION,
        "principal": {
            "type": "IAMUser",
            "name": name,
            "arn": f"arn:aws:iam::{account}:user/{name}",
            "access_key_id": None,
            "account": account,
        },
        "details": {"event_time": "2020-11-06T03:21:39Z"},
    }


def role_alert(role: str, *, event_time: str | None = None, session: str = "s1") -> dict[str, Any]:
    """An alert whose principal is a session of ``role`` (an AssumedRole identity)."""
    return {
        "account": OWN_ACCOUNT,
        "region": REGION,
        "principal": {
            "type": "AssumedRole",
            "name": role,
            "arn": f"arn:aws:sts::{OWN_ACCOUNT}:assumed-role/{role}/{session}",
            "access_key_id": "ASIAEXAMPLEEXAMPLE01",
            "account": OWN_ACCOUNT,
        },
        "details": {"event_time": event_time},
    }


def seed_user(
    aws: AwsSandbox,
    name: str = "alice",
    *,
    account: str | None = None,
    keys: tuple[str, ...] = ("Active", "Inactive"),
    password: bool = True,
    tags: dict[str, str] | None = None,
) -> list[str]:
    """Create a user with access keys in the given statuses; return the key ids, in order."""
    iam = aws.client("iam", account=account)
    tag_list = [{"Key": k, "Value": v} for k, v in (tags or {}).items()]
    iam.create_user(UserName=name, Tags=tag_list)
    ids = []
    for status in keys:
        key_id = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
        iam.update_access_key(UserName=name, AccessKeyId=key_id, Status=status)
        ids.append(key_id)
    if password:
        iam.create_login_profile(UserName=name, Password="Correct-Horse-9!")
    return ids


def seed_role(aws: AwsSandbox, name: str = "app", **extra: Any) -> str:
    """Create a role any principal of the own account may assume; return its ARN."""
    role = aws.client("iam").create_role(
        RoleName=name, AssumeRolePolicyDocument=TRUST_ANYONE_IN_ACCOUNT, **extra
    )
    return str(role["Role"]["Arn"])


def user_state(aws: AwsSandbox, name: str = "alice", account: str | None = None) -> dict[str, Any]:
    """What the IAM actions change on a user, read back from the emulator."""
    iam = aws.client("iam", account=account)
    try:
        iam.get_login_profile(UserName=name)
        password = True
    except iam.exceptions.NoSuchEntityException:
        password = False
    return {
        "attached": sorted(
            p["PolicyArn"]
            for p in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]
        ),
        "inline": sorted(iam.list_user_policies(UserName=name)["PolicyNames"]),
        "keys": {
            k["AccessKeyId"]: k["Status"]
            for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
        },
        "password": password,
        "tags": {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=name)["Tags"]},
    }
