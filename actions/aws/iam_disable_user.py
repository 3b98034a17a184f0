"""Disable an IAM user the way a responder does by hand, in the order that matters.

1. Deny everything: attach ``AWSDenyAll``. A policy is evaluated on every request, so it also
   stops sessions the user already holds (``GetSessionToken`` credentials, console sessions),
   which deactivating keys does not. A user at the managed-policy quota (AWS answers
   ``LimitExceeded``) gets the same deny as the inline policy ``riposte-deny-all`` instead.
2. Deactivate every active access key (never delete: undo can turn a key back on), unless
   ``access_keys: keep`` leaves them to a later ``aws.iam.revoke_access_keys`` step.
3. Delete the console password, unless ``console: keep``. AWS keeps no copy: undo cannot bring
   it back, the user needs a new one.
4. Tag the user ``riposte:disabled-by-run=<run id>``, only when this step changed something, so
   the tag names the run that did it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from actions.aws.arns import account_of, partition_of
from actions.aws.clients import AwsError, Client
from actions.aws.iam_access_keys import deactivations, key_listing, reactivations
from actions.aws.iam_principals import (
    IamCall,
    ReversibleIamAction,
    contained_entity,
    described,
    execute,
    get_entity,
    iam_client,
    named,
    optional,
    undo_client,
)
from actions.aws.target import AwsInput
from actions.base import ActionContext, ActionError, PlannedCall
from actions.policy import IAM_USERS, Scope
from actions.registry import register

DENY_ALL_POLICY = "AWSDenyAll"
INLINE_DENY_NAME = "riposte-deny-all"
INLINE_DENY_DOCUMENT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "RiposteDenyAll", "Effect": "Deny", "Action": "*", "Resource": "*"}],
    }
)
DISABLED_TAG = "riposte:disabled-by-run"
# IAM's default quota of managed policies per user (it can be raised to 20).
MANAGED_POLICY_QUOTA = 10
PASSWORD_NOT_RESTORED = (
    "the console password deleted by this step cannot be restored (AWS keeps no copy): "
    "give the user a new one (iam:CreateLoginProfile) if they need the console again"
)


class DisableUserInput(AwsInput):
    user: str | None = Field(
        default=None, description="User name or ARN; default: the alert's principal."
    )
    console: Literal["delete", "keep"] = Field(
        default="delete", description="delete: remove the console password; keep: leave it."
    )
    access_keys: Literal["deactivate", "keep"] = Field(
        default="deactivate",
        description="deactivate: turn every active key off; keep: leave them (e.g. to a later "
        "aws.iam.revoke_access_keys step, which records each key's previous status).",
    )


@dataclass
class UserState:
    """What ``disable_user`` looks at on a user before it changes anything."""

    iam: Client
    name: str
    arn: str
    attached: list[str]
    inline: list[str]
    keys: list[dict[str, Any]]
    has_password: bool
    tags: dict[str, str]

    @property
    def deny_all_arn(self) -> str:
        return f"arn:{partition_of(self.arn)}:iam::aws:policy/{DENY_ALL_POLICY}"

    @property
    def denied(self) -> bool:
        return self.deny_all_arn in self.attached or INLINE_DENY_NAME in self.inline


@register
class DisableUser(ReversibleIamAction[DisableUserInput]):
    """Disable an IAM user: deny everything, deactivate its keys, delete its console password.

    ```yaml
    - id: disable-user
      action: aws.iam.disable_user
      with:
        user: "{{ alert.principal.name }}"
        console: delete
    ```

    Refuses protected principals (root, Riposte's own, break-glass). Undo detaches the deny it
    added, reactivates only the keys it deactivated and removes its tag; a deleted console
    password cannot be restored.
    """

    name = "aws.iam.disable_user"
    Input = DisableUserInput
    grants = (
        IAM_USERS.allow(
            "iam:GetUser",
            "iam:ListAttachedUserPolicies",
            "iam:ListUserPolicies",
            "iam:ListAccessKeys",
            "iam:GetLoginProfile",
            "iam:PutUserPolicy",  # the inline deny, when the managed-policy quota is reached
            "iam:DeleteUserPolicy",
            "iam:UpdateAccessKey",
            "iam:DeleteLoginProfile",
        ),
        Scope(
            "IamAttachDenyAllOnly",
            f"the only managed policy attached (and detached on undo) is {DENY_ALL_POLICY}",
            ("arn:{partition}:iam::{account}:user/*",),
            {"ArnEquals": {"iam:PolicyARN": "arn:{partition}:iam::aws:policy/" + DENY_ALL_POLICY}},
        ).allow("iam:AttachUserPolicy", "iam:DetachUserPolicy"),
        Scope(
            "IamTagUsersWithRiposteKeyOnly",
            f"the only tag written or removed on a user is {DISABLED_TAG}",
            ("arn:{partition}:iam::{account}:user/*",),
            {
                "ForAllValues:StringEquals": {"aws:TagKeys": DISABLED_TAG},
                "Null": {"aws:TagKeys": "false"},  # ForAllValues alone holds when no key is sent
            },
        ).allow("iam:TagUser", "iam:UntagUser"),
    )

    def plan(self, ctx: ActionContext, params: DisableUserInput) -> list[PlannedCall]:
        state = self._state(ctx, params)
        calls: list[PlannedCall] = []
        if not state.denied:
            calls.append(_attach_deny_all(state))
            if len(state.attached) >= MANAGED_POLICY_QUOTA:
                calls.append(_inline_deny(state, planned_after_attach=True))
        return calls + self._after_deny(ctx, state, params)

    def run(self, ctx: ActionContext, params: DisableUserInput) -> dict[str, Any]:
        state = self._state(ctx, params)
        made: list[PlannedCall] = []
        deny: dict[str, str] | None = None
        notes: list[str] = []
        if not state.denied:
            deny, call, note = _deny_with_fallback(state)
            made.append(call)
            notes += note
        rest = self._after_deny(ctx, state, params)
        for call in rest:
            execute(state.iam, call)
        made.extend(rest)
        undo = {
            "account": account_of(state.arn),
            "region": params.region or ctx.alert.get("region"),
            "user": state.name,
            "deny": deny,
            "deactivated_keys": [
                c.params["AccessKeyId"] for c in made if c.operation == "UpdateAccessKey"
            ],
            "console_password_deleted": any(c.operation == "DeleteLoginProfile" for c in made),
            "tag": None,
        }
        if any(c.operation == "TagUser" for c in made):
            previous = state.tags.get(DISABLED_TAG)
            undo["tag"] = {"key": DISABLED_TAG, "value": ctx.run_id, "previous": previous}
        summary = f"disabled user {state.name}: {len(made)} change(s)"
        return {
            "user": state.name,
            "arn": state.arn,
            "summary": summary
            if made
            else f"user {state.name} was already disabled: nothing to do",
            "deny": deny,
            "deactivated_keys": undo["deactivated_keys"],
            "console_password_deleted": undo["console_password_deleted"],
            "already": self._already(state, params),
            "notes": notes,
            "calls": described(made),
            "undo": undo if made else None,
        }

    def undo_output(self, undo: dict[str, Any], calls: list[PlannedCall]) -> dict[str, Any]:
        user = undo["user"]
        return {
            "user": user,
            "summary": f"put back {len(calls)} change(s) on user {user}"
            if calls
            else f"nothing to put back on user {user}",
            "not_restored": [PASSWORD_NOT_RESTORED] if undo["console_password_deleted"] else [],
        }

    def _state(self, ctx: ActionContext, params: DisableUserInput) -> UserState:
        ref = named("user", params.user, ctx, field="user")
        iam = iam_client(ctx, params, ref)
        user = contained_entity(ctx, iam, "user", ref.name)
        return UserState(
            iam=iam,
            name=ref.name,
            arn=user["Arn"],
            attached=_attached(iam, ref.name),
            inline=iam.every("list_user_policies", "PolicyNames", UserName=ref.name),
            keys=key_listing(iam, ref.name),
            has_password=optional(iam.get_login_profile, UserName=ref.name) is not None,
            tags={tag["Key"]: tag["Value"] for tag in user.get("Tags", [])},
        )

    def _after_deny(
        self, ctx: ActionContext, state: UserState, params: DisableUserInput
    ) -> list[PlannedCall]:
        """Keys, console password, then the tag: only when this step changes something."""
        calls = deactivations(state.name, state.keys) if params.access_keys == "deactivate" else []
        if params.console == "delete" and state.has_password:
            calls.append(_user_call(state.name, "DeleteLoginProfile"))
        changing = bool(calls) or not state.denied
        if changing and state.tags.get(DISABLED_TAG) != ctx.run_id:
            tag = {"Key": DISABLED_TAG, "Value": ctx.run_id}
            calls.append(_user_call(state.name, "TagUser", Tags=[tag]))
        return calls

    @staticmethod
    def _already(state: UserState, params: DisableUserInput) -> list[str]:
        """What was already so, in words."""
        already = [
            f"access key {key['AccessKeyId']} was already inactive"
            for key in state.keys
            if key["Status"] != "Active"
        ]
        if params.access_keys == "keep" and len(already) < len(state.keys):
            already.append("the active access keys were left as they are (access_keys: keep)")
        if state.denied:
            already.insert(0, "a deny-all policy was already in place")
        if not state.has_password:
            already.append("the user had no console password")
        elif params.console == "keep":
            already.append("the console password was kept (console: keep)")
        return already

    def undo_calls(
        self, ctx: ActionContext, undo: dict[str, Any]
    ) -> tuple[list[PlannedCall], list[str]]:
        """Reverse order of ``run``: the tag, the keys, then the deny."""
        iam = undo_client(ctx, undo)
        name = undo["user"]
        user = get_entity(iam, "user", name)
        calls: list[PlannedCall] = []
        unchanged: list[str] = []
        tag = undo["tag"]
        if tag:
            now = {t["Key"]: t["Value"] for t in user.get("Tags", [])}.get(tag["key"])
            if now != tag["value"]:
                unchanged.append(f"tag {tag['key']} no longer names this run ({now!r}): left")
            elif tag["previous"] is None:
                calls.append(_user_call(name, "UntagUser", TagKeys=[tag["key"]]))
            else:
                previous = {"Key": tag["key"], "Value": tag["previous"]}
                calls.append(_user_call(name, "TagUser", Tags=[previous]))
        keys, gone = reactivations(iam, name, undo["deactivated_keys"])
        calls += keys
        unchanged += gone
        deny = undo["deny"] or {}
        if "policy_arn" in deny:
            if deny["policy_arn"] in _attached(iam, name):
                calls.append(_user_call(name, "DetachUserPolicy", PolicyArn=deny["policy_arn"]))
            else:
                unchanged.append(f"{deny['policy_arn']} is no longer attached")
        elif "policy_name" in deny:
            inline = iam.every("list_user_policies", "PolicyNames", UserName=name)
            if deny["policy_name"] in inline:
                calls.append(_user_call(name, "DeleteUserPolicy", PolicyName=deny["policy_name"]))
            else:
                unchanged.append(f"inline policy {deny['policy_name']} no longer exists")
        return calls, unchanged


def _attached(iam: Client, user: str) -> list[str]:
    listed = iam.every("list_attached_user_policies", "AttachedPolicies", UserName=user)
    return [policy["PolicyArn"] for policy in listed]


def _user_call(user: str, operation: str, *, note: str = "", **params: Any) -> IamCall:
    return IamCall(
        service="iam",
        operation=operation,
        params={"UserName": user, **params},
        target=f"user/{user}",
        note=note,
    )


def _attach_deny_all(state: UserState) -> IamCall:
    return _user_call(state.name, "AttachUserPolicy", PolicyArn=state.deny_all_arn)


def _inline_deny(state: UserState, *, planned_after_attach: bool = False) -> IamCall:
    note = ""
    if planned_after_attach:
        note = (
            f"only if AttachUserPolicy is refused with LimitExceeded: the user has "
            f"{len(state.attached)} managed policies attached (default quota "
            f"{MANAGED_POLICY_QUOTA})"
        )
    return _user_call(
        state.name,
        "PutUserPolicy",
        note=note,
        PolicyName=INLINE_DENY_NAME,
        PolicyDocument=INLINE_DENY_DOCUMENT,
    )


def _deny_with_fallback(state: UserState) -> tuple[dict[str, str], PlannedCall, list[str]]:
    """Attach ``AWSDenyAll``; at the managed-policy quota, put the inline deny instead.

    Returns the undo record of the deny, the call that applied it, and what to tell the reader.
    """
    attach = _attach_deny_all(state)
    try:
        execute(state.iam, attach)
        return {"policy_arn": state.deny_all_arn}, attach, []
    except AwsError as exc:
        if exc.code != "LimitExceeded":
            raise
    put = _inline_deny(state)
    try:
        execute(state.iam, put)
    except AwsError as exc:
        if exc.code != "LimitExceeded":
            raise
        raise ActionError(
            "DenyNotApplied",
            f"user {state.name} is NOT contained: AWSDenyAll could not be attached (managed "
            "policy quota) nor the inline deny put (inline policy size quota); detach a policy "
            "or delete an inline one and run the step again",
            retryable=False,
        ) from exc
    note = (
        f"AWSDenyAll was refused (LimitExceeded: the user is at its managed-policy quota); "
        f"the same deny was put as the inline policy {INLINE_DENY_NAME}"
    )
    return {"policy_name": INLINE_DENY_NAME}, put, [note]
