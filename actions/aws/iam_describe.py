"""Describe an IAM user or role the way a responder sizes up a principal before containing it.

What it may do (policies, directly and through groups), how it gets in (access keys and their
last use, console password, MFA), where it came from (creation, tags) and what changed lately,
as far as IAM itself can tell. IAM keeps no date for attaching or detaching a policy, editing an
inline policy, joining a group or changing a trust policy: CloudTrail does, which the output says.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from actions.aws.arns import account_of
from actions.aws.clients import Client
from actions.aws.iam_principals import (
    PrincipalRef,
    alert_principal,
    get_entity,
    iam_client,
    iso,
    optional,
    parse_arn,
)
from actions.aws.iam_role_sessions import REVOKE_POLICY, revocation_time
from actions.aws.target import AwsInput
from actions.base import Action, ActionContext, ActionError
from actions.policy import IAM_ROLES, IAM_USERS, Scope
from actions.registry import register

NOT_RECORDED_BY_IAM = (
    "IAM keeps no date for attaching or detaching a policy, editing an inline policy, joining or "
    "leaving a group, changing a trust policy or a password: CloudTrail records those "
    "(aws.cloudtrail.principal_history)."
)


class DescribePrincipalInput(AwsInput):
    arn: str | None = Field(
        default=None,
        description="ARN of a user, a role or an assumed-role session (its role is described).",
    )
    type: Literal["user", "role"] | None = Field(
        default=None, description="user or role, with name (instead of arn)."
    )
    name: str | None = Field(default=None, description="User or role name, with type.")
    recent_days: int = Field(
        default=30, ge=1, le=3650, description="How far back 'recent changes' look, in days."
    )

    @model_validator(mode="after")
    def _one_way_to_name_it(self) -> DescribePrincipalInput:
        if (self.type is None) != (self.name is None):
            raise ValueError("give type and name together (or arn, or neither for the alert's)")
        if self.arn is not None and self.name is not None:
            raise ValueError("give either arn or type and name, not both")
        return self


@register
class DescribePrincipal(Action[DescribePrincipalInput]):
    """Describe an IAM user or role: policies, groups, keys, password, MFA, recent changes.

    ```yaml
    - id: who
      action: aws.iam.describe_principal
      with:
        arn: "{{ alert.principal.arn }}"
        recent_days: 30
    ```

    Without ``arn`` or ``type`` and ``name`` it describes the alert's principal (an assumed-role
    session: its role). The result is cached for the rest of the run.
    """

    name = "aws.iam.describe_principal"
    Input = DescribePrincipalInput
    grants = (
        IAM_USERS.allow(
            "iam:GetUser",
            "iam:ListGroupsForUser",
            "iam:ListAttachedUserPolicies",
            "iam:ListUserPolicies",
            "iam:GetUserPolicy",
            "iam:ListAccessKeys",
            "iam:GetAccessKeyLastUsed",
            "iam:ListMFADevices",
            "iam:GetLoginProfile",
        ),
        Scope(
            "IamGroupsOfTheAccount",
            "the groups of the user described, any group of the account",
            ("arn:{partition}:iam::{account}:group/*",),
        ).allow("iam:ListAttachedGroupPolicies", "iam:ListGroupPolicies", "iam:GetGroupPolicy"),
        Scope(
            "IamManagedPoliciesReadable",
            "the managed policies attached to the principal: the account's and AWS's",
            ("arn:{partition}:iam::{account}:policy/*", "arn:{partition}:iam::aws:policy/*"),
        ).allow("iam:ListPolicyVersions"),
        IAM_ROLES.allow(
            "iam:GetRole",
            "iam:ListAttachedRolePolicies",
            "iam:ListRolePolicies",
            "iam:GetRolePolicy",
            "iam:ListInstanceProfilesForRole",
        ),
    )

    def run(self, ctx: ActionContext, params: DescribePrincipalInput) -> dict[str, Any]:
        ref = self._ref(ctx, params)
        account = params.account or ref.account or ctx.alert.get("account") or "own"
        key = f"{self.name}:{account}:{ref.kind}:{ref.name}:{params.recent_days}"
        if key not in ctx.cache:
            iam = iam_client(ctx, params, ref)
            reader = PrincipalReader(iam, datetime.now(UTC), params.recent_days)
            described = reader.user(ref.name) if ref.kind == "user" else reader.role(ref.name)
            ctx.cache[key] = described
        described = copy.deepcopy(ctx.cache[key])
        if ref.session:
            described["session"] = ref.session
        return described

    @staticmethod
    def _ref(ctx: ActionContext, params: DescribePrincipalInput) -> PrincipalRef:
        if params.arn:
            ref = parse_arn(params.arn)
        elif params.type and params.name:
            ref = PrincipalRef(params.type, params.name)
        else:
            found = alert_principal(ctx)
            if found is None:
                raise ActionError(
                    "NoPrincipal",
                    "no arn, or type and name, given and the alert names no principal",
                    retryable=False,
                )
            ref = found
        if ref.name == "root":
            raise ActionError(
                "UnsupportedPrincipal",
                "the root user is not an IAM user: IAM cannot describe it",
                retryable=False,
            )
        return ref


class PrincipalReader:
    """Reads one user or role from IAM and says what it finds in plain, dated terms."""

    def __init__(self, iam: Client, now: datetime, recent_days: int) -> None:
        self.iam = iam
        self.now = now
        self.since = now - timedelta(days=recent_days)
        self.recent_days = recent_days

    def user(self, name: str) -> dict[str, Any]:
        iam = self.iam
        user = get_entity(iam, "user", name)
        listed_groups = iam.every("list_groups_for_user", "Groups", UserName=name)
        groups = [self._group(g) for g in listed_groups]
        attached = self._attached("list_attached_user_policies", UserName=name)
        inline = self._inline("list_user_policies", iam.get_user_policy, UserName=name)
        listed_keys = iam.every("list_access_keys", "AccessKeyMetadata", UserName=name)
        keys = [self._key(key) for key in listed_keys]
        devices = iam.every("list_mfa_devices", "MFADevices", UserName=name)
        mfa = [{"serial": d["SerialNumber"], "enabled": iso(d.get("EnableDate"))} for d in devices]
        login = optional(iam.get_login_profile, UserName=name)
        profile = (login or {}).get("LoginProfile", {})
        password = {
            "exists": login is not None,
            "created": iso(profile.get("CreateDate")),
            "reset_required": bool(profile.get("PasswordResetRequired")),
            # Absent: never used, or not since IAM began recording it (October 2014).
            "last_used": iso(user.get("PasswordLastUsed")),
        }
        changes = [
            *self._dated("user created", [(user["CreateDate"], None)]),
            *self._dated(
                "access key created", [(k["CreateDate"], k["AccessKeyId"]) for k in listed_keys]
            ),
            *self._dated("console password created", [(profile.get("CreateDate"), None)]),
            *self._dated(
                "MFA device enabled", [(d.get("EnableDate"), d["SerialNumber"]) for d in devices]
            ),
        ]
        policies = attached + [p for g in groups for p in g["attached_policies"]]
        changes += self._policy_versions(policies)
        active = sum(1 for k in keys if k["status"] == "Active")
        summary = (
            f"user {name}: {active} of {len(keys)} access key(s) active, "
            f"{'a' if password['exists'] else 'no'} console password, "
            f"{'MFA' if mfa else 'no MFA'}, {len(attached)} attached and {len(inline)} inline "
            f"policies, {len(groups)} group(s), created {iso(user['CreateDate'])}"
        )
        return {
            "type": "user",
            **self._identity(user, "UserName", "UserId"),
            "summary": summary,
            "groups": groups,
            "attached_policies": attached,
            "inline_policies": inline,
            "access_keys": keys,
            "mfa_enabled": bool(mfa),
            "mfa_devices": mfa,
            "console_password": password,
            **self._changes(changes),
        }

    def role(self, name: str) -> dict[str, Any]:
        iam = self.iam
        role = get_entity(iam, "role", name)
        attached = self._attached("list_attached_role_policies", RoleName=name)
        inline = self._inline("list_role_policies", iam.get_role_policy, RoleName=name)
        revoke = next((p["document"] for p in inline if p["name"] == REVOKE_POLICY), None)
        revoked_before = revocation_time(revoke)
        last = role.get("RoleLastUsed") or {}
        trust = role.get("AssumeRolePolicyDocument") or {}
        trusted = trusted_principals(trust)
        profiles = iam.every("list_instance_profiles_for_role", "InstanceProfiles", RoleName=name)
        changes = self._dated("role created", [(role["CreateDate"], None)])
        changes += self._policy_versions(attached)
        hours = role.get("MaxSessionDuration", 3600) / 3600
        who = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in trusted.items())
        summary = (
            f"role {name}: trusted by {who or 'no one'}, last used "
            f"{iso(last.get('LastUsedDate')) or 'never (or not recorded)'}, {len(attached)} "
            f"attached and {len(inline)} inline policies, sessions up to {hours:g} h"
        )
        return {
            "type": "role",
            **self._identity(role, "RoleName", "RoleId"),
            "summary": summary,
            "description": role.get("Description", ""),
            "trust_policy": trust,
            "trusted_principals": trusted,
            "max_session_duration_seconds": role.get("MaxSessionDuration", 3600),
            "last_used": {"date": iso(last["LastUsedDate"]), "region": last.get("Region")}
            if last.get("LastUsedDate")
            else None,
            "instance_profiles": [p["InstanceProfileName"] for p in profiles],
            "sessions_revoked_before": iso(revoked_before),
            "attached_policies": attached,
            "inline_policies": inline,
            **self._changes(changes),
        }

    def _identity(self, entity: dict[str, Any], name_key: str, id_key: str) -> dict[str, Any]:
        created: datetime = entity["CreateDate"]
        boundary = entity.get("PermissionsBoundary") or {}
        return {
            "name": entity[name_key],
            "id": entity[id_key],
            "arn": entity["Arn"],
            "path": entity.get("Path", "/"),
            "account": account_of(entity["Arn"]),
            "created": iso(created),
            "age_days": (self.now - created).days,
            "tags": {tag["Key"]: tag["Value"] for tag in entity.get("Tags", [])},
            "permissions_boundary": boundary.get("PermissionsBoundaryArn"),
        }

    def _group(self, group: dict[str, Any]) -> dict[str, Any]:
        name = group["GroupName"]
        return {
            "name": name,
            "arn": group["Arn"],
            "attached_policies": self._attached("list_attached_group_policies", GroupName=name),
            "inline_policies": self._inline(
                "list_group_policies", self.iam.get_group_policy, GroupName=name
            ),
        }

    def _key(self, key: dict[str, Any]) -> dict[str, Any]:
        key_id, created = key["AccessKeyId"], key["CreateDate"]
        used = self.iam.get_access_key_last_used(AccessKeyId=key_id)["AccessKeyLastUsed"]
        return {
            "id": key_id,
            "status": key["Status"],
            "created": iso(created),
            "age_days": (self.now - created).days,
            "last_used": {
                "date": iso(used["LastUsedDate"]),
                "service": used.get("ServiceName"),
                "region": used.get("Region"),
            }
            if used.get("LastUsedDate")
            else None,
        }

    def _attached(self, operation: str, **who: str) -> list[dict[str, str]]:
        listed = self.iam.every(operation, "AttachedPolicies", **who)
        return [{"name": p["PolicyName"], "arn": p["PolicyArn"]} for p in listed]

    def _inline(self, list_operation: str, get_call: Any, **who: str) -> list[dict[str, Any]]:
        names = self.iam.every(list_operation, "PolicyNames", **who)
        return [
            {"name": name, "document": get_call(PolicyName=name, **who)["PolicyDocument"]}
            for name in names
        ]

    def _policy_versions(self, policies: list[dict[str, str]]) -> list[dict[str, Any]]:
        """Versions of the customer-managed policies among ``policies`` made in the window."""
        changes: list[dict[str, Any]] = []
        for arn in sorted({p["arn"] for p in policies if account_of(p["arn"]) != "aws"}):
            for version in self.iam.every("list_policy_versions", "Versions", PolicyArn=arn):
                default = " (the version in force)" if version.get("IsDefaultVersion") else ""
                changes += self._dated(
                    f"policy version {version['VersionId']} created{default}",
                    [(version["CreateDate"], arn)],
                )
        return changes

    def _dated(
        self, what: str, items: list[tuple[datetime | None, str | None]]
    ) -> list[dict[str, Any]]:
        return [
            {"when": iso(when), "change": what, **({"of": subject} if subject else {})}
            for when, subject in items
            if when is not None and when >= self.since
        ]

    def _changes(self, changes: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "recent_changes": sorted(changes, key=lambda c: str(c["when"]), reverse=True),
            "recent_days": self.recent_days,
            "not_recorded_by_iam": NOT_RECORDED_BY_IAM,
        }


def trusted_principals(trust: dict[str, Any]) -> dict[str, list[str]]:
    """Who a trust policy lets assume the role, by kind (AWS, Service, Federated)."""
    trusted: dict[str, list[str]] = {}
    statements = trust.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        if principal == "*":
            principal = {"AWS": "*"}
        for kind, names in (principal or {}).items():
            listed = names if isinstance(names, list) else [names]
            trusted.setdefault(kind, []).extend(
                str(n) for n in listed if n not in trusted.get(kind, [])
            )
    return trusted
