"""The least-privilege IAM policy for a set of actions, from their declared permissions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from actions import registry


def least_privilege_policy(
    action_names: Iterable[str], *, responder_role: str | None = None
) -> dict[str, Any]:
    """An IAM policy document granting exactly what ``action_names`` declare they need.

    One statement per action, named after it, so a reviewer sees why each permission is there.
    With a responder role, Riposte's own principal also needs to assume it in other accounts.
    """
    statements: list[dict[str, Any]] = []
    for name in sorted(set(action_names)):
        permissions = sorted(set(registry.get(name).permissions))
        if permissions:
            statements.append(
                {"Sid": _sid(name), "Effect": "Allow", "Action": permissions, "Resource": "*"}
            )
    if responder_role:
        statements.append(
            {
                "Sid": "AssumeResponderRole",
                "Effect": "Allow",
                "Action": ["sts:AssumeRole"],
                "Resource": f"arn:aws:iam::*:role/{responder_role.strip('/')}",
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def _sid(action_name: str) -> str:
    # Statement ids are alphanumeric: aws.iam.disable_user -> AwsIamDisableUser.
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", action_name))
