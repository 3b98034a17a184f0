"""Deactivate a user's access keys (never delete them), and reactivate only those it deactivated.

A deactivated key can be turned back on by undo; a deleted one is gone, and with it the evidence
of which key the attacker held. Temporary keys (``ASIA…``) are session credentials: IAM cannot
deactivate them, revoking the role's sessions or denying the user does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from actions.aws.arns import account_of
from actions.aws.clients import AwsError, Client
from actions.aws.iam_principals import (
    IamCall,
    ReversibleIamAction,
    contained_entity,
    execute,
    iam_client,
    named,
    undo_client,
)
from actions.aws.target import AwsInput
from actions.aws.target import client as target_client
from actions.base import ActionContext, ActionError, PlannedCall
from actions.policy import IAM_USERS
from actions.registry import register


def key_listing(iam: Client, user: str) -> list[dict[str, Any]]:
    """The user's access keys: ``AccessKeyId``, ``Status``, ``CreateDate``."""
    return iam.every("list_access_keys", "AccessKeyMetadata", UserName=user)


def deactivations(user: str, keys: list[dict[str, Any]]) -> list[PlannedCall]:
    """``UpdateAccessKey … Inactive`` for each key that is active now."""
    return [
        IamCall(
            service="iam",
            operation="UpdateAccessKey",
            params={"UserName": user, "AccessKeyId": key["AccessKeyId"], "Status": "Inactive"},
            target=f"user/{user}",
        )
        for key in keys
        if key["Status"] == "Active"
    ]


def reactivations(
    iam: Client, user: str, key_ids: list[str]
) -> tuple[list[PlannedCall], list[str]]:
    """The calls that turn back on the keys in ``key_ids``, and what needs no call (and why)."""
    now = {key["AccessKeyId"]: key["Status"] for key in key_listing(iam, user)}
    calls: list[PlannedCall] = []
    unchanged: list[str] = []
    for key_id in key_ids:
        if key_id not in now:
            unchanged.append(f"access key {key_id} no longer exists")
        elif now[key_id] == "Active":
            unchanged.append(f"access key {key_id} is already active")
        else:
            calls.append(
                IamCall(
                    service="iam",
                    operation="UpdateAccessKey",
                    params={"UserName": user, "AccessKeyId": key_id, "Status": "Active"},
                    target=f"user/{user}",
                )
            )
    return calls, unchanged


class RevokeAccessKeysInput(AwsInput):
    user: str | None = Field(
        default=None,
        description="User name or ARN; default: the owner of access_key_id, else the alert's "
        "principal.",
    )
    access_key_id: str | None = Field(
        default=None,
        min_length=16,
        description="The one key to deactivate; unset: every key of the user.",
    )


@dataclass
class KeysOfUser:
    """The user a step acts on, with the keys it targets as they are now."""

    iam: Client
    user: str
    arn: str
    keys: list[dict[str, Any]]


@register
class RevokeAccessKeys(ReversibleIamAction[RevokeAccessKeysInput]):
    """Deactivate one access key of a user or all of them (never delete), keeping their status.

    ```yaml
    - id: revoke-key
      action: aws.iam.revoke_access_keys
      with:
        user: "{{ alert.principal.name }}"
        access_key_id: "{{ alert.principal.access_key_id }}"
    ```

    Without ``access_key_id`` every key of the user is deactivated; without ``user`` the key's
    owner (else the alert's principal) is. Undo reactivates only the keys that were active
    before this step.
    """

    name = "aws.iam.revoke_access_keys"
    Input = RevokeAccessKeysInput
    grants = (
        IAM_USERS.allow(
            "iam:GetUser", "iam:GetAccessKeyLastUsed", "iam:ListAccessKeys", "iam:UpdateAccessKey"
        ),
    )

    def plan(self, ctx: ActionContext, params: RevokeAccessKeysInput) -> list[PlannedCall]:
        found = self._find(ctx, params)
        return deactivations(found.user, found.keys)

    def run(self, ctx: ActionContext, params: RevokeAccessKeysInput) -> dict[str, Any]:
        found = self._find(ctx, params)
        calls = deactivations(found.user, found.keys)
        for call in calls:
            execute(found.iam, call)
        deactivated = [call.params["AccessKeyId"] for call in calls]
        if calls:
            summary = f"deactivated {len(calls)} access key(s) of user {found.user}"
        else:
            summary = f"the access keys of user {found.user} were already inactive: nothing to do"
        return {
            "user": found.user,
            "arn": found.arn,
            "summary": summary,
            "deactivated": deactivated,
            "already_inactive": [k["AccessKeyId"] for k in found.keys if k["Status"] != "Active"],
            "previous_status": {key["AccessKeyId"]: key["Status"] for key in found.keys},
            "undo": {
                "account": account_of(found.arn),
                "region": params.region or ctx.alert.get("region"),
                "user": found.user,
                "reactivate": deactivated,
            }
            if deactivated
            else None,
        }

    def undo_calls(
        self, ctx: ActionContext, undo: dict[str, Any]
    ) -> tuple[list[PlannedCall], list[str]]:
        return reactivations(undo_client(ctx, undo), undo["user"], undo["reactivate"])

    def undo_output(self, undo: dict[str, Any], calls: list[PlannedCall]) -> dict[str, Any]:
        reactivated = [call.params["AccessKeyId"] for call in calls]
        user = undo["user"]
        return {
            "user": user,
            "summary": f"reactivated {len(calls)} access key(s) of user {user}"
            if calls
            else f"nothing to put back on user {user}",
            "reactivated": reactivated,
        }

    @staticmethod
    def _find(ctx: ActionContext, params: RevokeAccessKeysInput) -> KeysOfUser:
        key = params.access_key_id
        if key and key.startswith("ASIA"):
            raise ActionError(
                "TemporaryCredentials",
                f"{key} is a temporary (session) key, which IAM cannot deactivate: revoke the "
                "role's sessions (aws.iam.revoke_role_sessions) or deny the user "
                "(aws.iam.disable_user)",
                retryable=False,
            )
        if key and not params.user:
            iam = target_client(ctx, params, "iam")
            name = key_owner(iam, key)
        else:
            ref = named("user", params.user, ctx, field="user")
            iam, name = iam_client(ctx, params, ref), ref.name
        user = contained_entity(ctx, iam, "user", name)
        keys = key_listing(iam, name)
        if key:
            keys = [found for found in keys if found["AccessKeyId"] == key]
            if not keys:
                raise ActionError(
                    "NoSuchAccessKey",
                    f"access key {key} is not a key of user {name}",
                    retryable=False,
                )
        return KeysOfUser(iam, name, user["Arn"], keys)


def key_owner(iam: Client, key_id: str) -> str:
    """The user an access key belongs to (GetAccessKeyLastUsed names it from the key id)."""
    try:
        return str(iam.get_access_key_last_used(AccessKeyId=key_id)["UserName"])
    except AwsError as exc:
        if exc.code != "NoSuchEntity":
            raise
        raise ActionError(
            "NoSuchAccessKey", f"access key {key_id} is not known in the account", retryable=False
        ) from exc
