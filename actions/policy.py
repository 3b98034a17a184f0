"""The least-privilege IAM policy for a set of actions, from the statements they declare.

An action declares ``grants``: IAM actions allowed on a :class:`Scope`, which is one statement's
resource ARN patterns and conditions, its ``Sid`` and the one-line reason the scope is what it is
(IAM has no comment field: ``riposte policy --explain`` prints the reasons). Patterns hold
placeholders, filled when the policy is made:

- ``{partition}`` and ``{account}``: given by the caller (``aws`` and ``*`` by default; a
  CloudFormation template passes ``${AWS::Partition}`` and ``${AWS::AccountId}``);
- ``{region}``: always ``*`` (a step acts in the region of its alert);
- ``{passed_role}``: the roles Riposte may pass to EC2 (every role of the account by default);
- ``{trail_bucket}``: the bucket CloudTrail delivers to (any bucket by default).

Statements with the same resources and conditions are one statement with their actions
together. Scopes several actions share are declared here; the others next to their action.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actions import registry

# Scopes and grants are the policy's vocabulary too: actions declare theirs from here.
from actions.grants import Conditions
from actions.grants import Grant as Grant
from actions.grants import Scope as Scope

if TYPE_CHECKING:
    from actions.base import Action

PLACEHOLDER = re.compile(r"\{(partition|account|region|passed_role|trail_bucket)\}")
EC2_SERVICE = ("ec2.amazonaws.com", "ec2.amazonaws.com.cn")  # the latter in the China regions


@dataclass
class PolicyStatement:
    """One statement of the policy, with the reason for its scope and the actions needing it."""

    sid: str
    actions: list[str]
    resources: list[str]
    conditions: dict[str, dict[str, Any]]
    reason: str
    needed_by: list[str]

    @property
    def scoped(self) -> bool:
        """Whether the statement names resources or has conditions (is not on bare ``*``)."""
        return self.resources != ["*"] or bool(self.conditions)

    def document(self) -> dict[str, Any]:
        """The statement as IAM reads it."""
        statement: dict[str, Any] = {
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": self.actions,
            "Resource": self.resources[0] if len(self.resources) == 1 else self.resources,
        }
        if self.conditions:
            statement["Condition"] = self.conditions
        return statement


# ---------------------------------------------------------------------------------------------
# Scopes more than one action uses

NO_RESOURCE_LEVEL = Scope(
    "ReadCallsWithoutResourceLevelPermissions",
    "read-only calls AWS authorises on * only (EC2 Describe*, CloudTrail LookupEvents accept "
    "no resource ARN)",
)
IAM_USERS = Scope(
    "IamUsersOfTheAccount",
    "the users read and contained are the alerts' principals, any user of the account; IAM has "
    "no condition on an inline policy's name or on which access key is updated",
    ("arn:{partition}:iam::{account}:user/*",),
)
IAM_ROLES = Scope(
    "IamRolesOfTheAccount",
    "the roles read and whose sessions are revoked are the alerts' principals, any role of the "
    "account; IAM has no condition on an inline policy's name",
    ("arn:{partition}:iam::{account}:role/*",),
)
PASS_ROLE_TO_EC2 = Scope(
    "PassInstanceRolesToEc2Only",
    "a relaunched instance (or one whose isolation is undone) gets its original's instance "
    "profile back: pass only those roles (--pass-role) and only to EC2",
    ("arn:{partition}:iam::{account}:role/{passed_role}",),
    {"StringEquals": {"iam:PassedToService": EC2_SERVICE}},
)
EC2_TAG_WHILE_CREATING = Scope(
    "Ec2TagOnlyWhileCreating",
    "tags given in the create call itself (RunInstances, RegisterImage, CreateSnapshot, "
    "CreateSecurityGroup), never on an existing resource",
    (
        "arn:{partition}:ec2:{region}:{account}:instance/*",
        "arn:{partition}:ec2:{region}:{account}:volume/*",
        "arn:{partition}:ec2:{region}:{account}:security-group/*",
        "arn:{partition}:ec2:{region}::image/*",
        "arn:{partition}:ec2:{region}::snapshot/*",
    ),
    {
        "StringEquals": {
            "ec2:CreateAction": (
                "CreateSecurityGroup", "CreateSnapshot", "RegisterImage", "RunInstances",
            )
        }
    },
)
TRAIL_BUCKET_LISTING = Scope(
    "CloudTrailLogListingOnly",
    "list the trail's bucket only under its CloudTrail prefix ([prefix/]AWSLogs/<account>/"
    "CloudTrail/)",
    ("arn:{partition}:s3:::{trail_bucket}",),
    {"StringLike": {"s3:prefix": (
        "AWSLogs/{account}/CloudTrail/*", "*/AWSLogs/{account}/CloudTrail/*",
    )}},
)
TRAIL_LOG_FILES = Scope(
    "CloudTrailLogFilesOnly",
    "read only the trail's log files, nothing else the bucket holds",
    (
        "arn:{partition}:s3:::{trail_bucket}/AWSLogs/{account}/CloudTrail/*",
        "arn:{partition}:s3:::{trail_bucket}/*/AWSLogs/{account}/CloudTrail/*",
    ),
)


# ---------------------------------------------------------------------------------------------
# The policy


def least_privilege_policy(
    action_names: Iterable[str],
    *,
    responder_role: str | None = None,
    partition: str = "aws",
    account: str = "*",
    passed_roles: Iterable[str] = (),
    trail_bucket: str | None = None,
) -> dict[str, Any]:
    """An IAM policy document granting what ``action_names`` need, each statement scoped.

    ``partition`` and ``account`` are written into the ARNs as given (``${AWS::Partition}`` for
    a CloudFormation template). ``passed_roles`` (names, with their path) narrow ``iam:PassRole``
    to those roles; ``trail_bucket`` narrows the CloudTrail log reads to that bucket. With a
    responder role, Riposte's own principal also needs to assume it in other accounts.
    """
    statements = policy_statements(
        action_names, responder_role=responder_role, partition=partition, account=account,
        passed_roles=passed_roles, trail_bucket=trail_bucket,
    )
    return policy_document(statements)


def policy_document(statements: Iterable[PolicyStatement]) -> dict[str, Any]:
    """The IAM policy document made of ``statements``."""
    return {"Version": "2012-10-17", "Statement": [s.document() for s in statements]}


def policy_statements(
    action_names: Iterable[str],
    *,
    responder_role: str | None = None,
    partition: str = "aws",
    account: str = "*",
    passed_roles: Iterable[str] = (),
    trail_bucket: str | None = None,
) -> list[PolicyStatement]:
    """The statements of :func:`least_privilege_policy`, each with its reason and users."""
    values = {
        "partition": (partition,),
        "account": (account,),
        "region": ("*",),
        "passed_role": tuple(r.strip("/") for r in passed_roles) or ("*",),
        "trail_bucket": (trail_bucket or "*",),
    }
    merged: dict[str, PolicyStatement] = {}
    for name in sorted(set(action_names)):
        for grant in grants_of(registry.get(name)):
            scope = grant.scope
            statement = merged.get(scope.key)
            if statement is None:
                statement = merged[scope.key] = PolicyStatement(
                    sid=scope.sid,
                    actions=[],
                    resources=_unique(r for p in scope.resources for r in fill(p, values)),
                    conditions=_filled_conditions(scope.conditions, values),
                    reason=scope.reason,
                    needed_by=[],
                )
            elif scope.reason not in statement.reason:
                statement.reason += f" / {scope.reason}"
            statement.actions = sorted({*statement.actions, *grant.actions})
            if name not in statement.needed_by:
                statement.needed_by.append(name)
    statements = list(merged.values())
    if responder_role:
        statements.append(
            PolicyStatement(
                sid="AssumeResponderRole",
                actions=["sts:AssumeRole"],
                # The role is assumed in the accounts Riposte responds in: any account.
                resources=[f"arn:{partition}:iam::*:role/{responder_role.strip('/')}"],
                conditions={},
                reason="Riposte's own principal assumes the responder role in the accounts it "
                "acts in (RIPOSTE_RESPONDER_ROLE)",
                needed_by=["RIPOSTE_RESPONDER_ROLE"],
            )
        )
    _number_repeated_sids(statements)
    return statements


def explanation(statements: Sequence[PolicyStatement]) -> str:
    """The statements for people: each one's scope, actions, who needs it and why."""
    lines: list[str] = []
    for statement in statements:
        lines.append(f"{statement.sid} ({'scoped' if statement.scoped else 'on *'})")
        rows = [
            ("actions", ", ".join(statement.actions)),
            ("resources", ", ".join(statement.resources)),
            *(
                ("condition", f"{operator} {key} {' | '.join(_listed(value))}")
                for operator, keys in statement.conditions.items()
                for key, value in keys.items()
            ),
            ("needed by", ", ".join(statement.needed_by)),
            ("why", statement.reason),
        ]
        lines += [f"  {label + ':':<11} {text}" for label, text in rows]
        lines.append("")
    broad = [s for s in statements if not s.scoped]
    lines.append(
        f"{len(statements)} statements: {len(statements) - len(broad)} scoped to resources or "
        f"conditions, {len(broad)} on * ({', '.join(s.sid for s in broad) or 'none'})"
    )
    return "\n".join(lines)


def grants_of(action: type[Action[Any]]) -> tuple[Grant, ...]:
    """The action's grants; an action declaring only ``permissions`` gets them on ``*``."""
    if action.grants or not action.permissions:
        return action.grants
    unscoped = Scope(
        _sid(action.name) + "Unscoped",
        f"{action.name} declares a flat permissions tuple, not grants: not scoped yet",
    )
    return (Grant(actions=action.permissions, scope=unscoped),)


def fill(pattern: str, values: Mapping[str, Sequence[str]]) -> list[str]:
    """``pattern`` with its placeholders filled, once per combination of their values."""
    found = PLACEHOLDER.search(pattern)
    if found is None:
        return [pattern]
    head, tail = pattern[: found.start()], pattern[found.end() :]
    return [head + value + rest for value in values[found[1]] for rest in fill(tail, values)]


def _filled_conditions(
    conditions: Conditions, values: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, Any]]:
    filled: dict[str, dict[str, Any]] = {}
    for operator, keys in conditions.items():
        for key, value in keys.items():
            rendered = _unique(v for item in _listed(value) for v in fill(item, values))
            filled.setdefault(operator, {})[key] = rendered[0] if len(rendered) == 1 else rendered
    return filled


def _listed(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _number_repeated_sids(statements: list[PolicyStatement]) -> None:
    # Two scopes declared with the same Sid (a slip) still give unique Sids: Name, Name2, …
    seen: dict[str, int] = {}
    for statement in statements:
        count = seen[statement.sid] = seen.get(statement.sid, 0) + 1
        if count > 1:
            statement.sid = f"{statement.sid}{count}"


def _sid(action_name: str) -> str:
    # Statement ids are alphanumeric: aws.iam.disable_user -> AwsIamDisableUser.
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", action_name))
