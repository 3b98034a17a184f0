"""Revoke every session of an IAM role issued before now, as the IAM console's button does.

The console puts the inline policy ``AWSRevokeOlderSessions`` on the role: deny every action to
a session whose ``aws:TokenIssueTime`` is earlier than the moment of revocation. Holders get in
again only by assuming the role anew, which an attacker with only a stolen session cannot do.

Idempotency: an ``AWSRevokeOlderSessions`` already on the role is kept, with no call, when this
run's step put it (its statement's ``Sid`` names the run and step), or when its time is at or
after the alert's ``details.event_time`` (it already cuts every session the alert can be about).
Otherwise the time is moved to now and the earlier document kept for undo, which puts it back.
When an earlier attempt of this very step put it (the attempt's output was lost), the undo record
is made again: undo deletes the policy, since what that attempt replaced is no longer known.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from actions.aws.arns import account_of
from actions.aws.clients import Client
from actions.aws.iam_principals import (
    IamCall,
    ReversibleIamAction,
    contained_entity,
    described,
    execute,
    iam_client,
    named,
    optional,
    undo_client,
)
from actions.aws.target import AwsInput
from actions.base import ActionContext, PlannedCall
from actions.policy import IAM_ROLES
from actions.registry import register

REVOKE_POLICY = "AWSRevokeOlderSessions"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class RevokeRoleSessionsInput(AwsInput):
    role: str | None = Field(
        default=None,
        description="Role name, role ARN or assumed-role session ARN; default: the alert's "
        "principal.",
    )


def revocation_time(document: dict[str, Any] | None) -> datetime | None:
    """The ``aws:TokenIssueTime`` before which a revoke-sessions policy denies everything."""
    for statement in _statements(document):
        condition = statement.get("Condition")
        dates = condition.get("DateLessThan") if isinstance(condition, dict) else None
        if statement.get("Effect") == "Deny" and isinstance(dates, dict):
            moment = parse_time(dates.get("aws:TokenIssueTime"))
            if moment is not None:
                return moment
    return None


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 time (naive means UTC), or ``None`` when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def revoke_document(sid: str, before: datetime) -> dict[str, Any]:
    """The console's revoke-older-sessions policy, its statement named ``sid``."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": sid,
                "Effect": "Deny",
                "Action": ["*"],
                "Resource": ["*"],
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": before.strftime(TIME_FORMAT)}},
            }
        ],
    }


@dataclass
class Decision:
    """What ``revoke_role_sessions`` found on a role and will do about it."""

    iam: Client
    role: str
    arn: str
    previous: str | None  # the AWSRevokeOlderSessions document already there, as JSON text
    before: str  # sessions issued before this time are (or will be) denied
    summary: str
    calls: list[PlannedCall]
    ours: bool = False  # the policy there was put by an earlier attempt of this step


@register
class RevokeRoleSessions(ReversibleIamAction[RevokeRoleSessionsInput]):
    """Deny everything to every session of a role issued before now (``AWSRevokeOlderSessions``).

    ```yaml
    - id: revoke-sessions
      action: aws.iam.revoke_role_sessions
      with:
        role: "{{ alert.principal.arn }}"
    ```

    Every holder of the role is cut off, not only the attacker: people, applications,
    instances and functions using it must assume it again. Refuses protected roles
    (service-linked, ``AWSReservedSSO_*``, Riposte's own, break-glass). Undo puts back the
    earlier policy of that name, or deletes it.
    """

    name = "aws.iam.revoke_role_sessions"
    Input = RevokeRoleSessionsInput
    grants = (
        IAM_ROLES.allow(
            "iam:GetRole", "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy"
        ),
    )

    def plan(self, ctx: ActionContext, params: RevokeRoleSessionsInput) -> list[PlannedCall]:
        return self._decide(ctx, params).calls

    def run(self, ctx: ActionContext, params: RevokeRoleSessionsInput) -> dict[str, Any]:
        decided = self._decide(ctx, params)
        for call in decided.calls:
            execute(decided.iam, call)
        undo = None
        if decided.calls or decided.ours:
            undo = {
                "account": account_of(decided.arn),
                "region": params.region or ctx.alert.get("region"),
                "role": decided.role,
                "policy_name": REVOKE_POLICY,
                "document": decided.calls[0].params["PolicyDocument"]
                if decided.calls
                else decided.previous,
                "previous_document": decided.previous if decided.calls else None,
            }
        return {
            "role": decided.role,
            "arn": decided.arn,
            "summary": decided.summary,
            "revoked_before": decided.before,
            "previous_document": decided.previous,
            "calls": described(decided.calls),
            "undo": undo,
        }

    def undo_output(self, undo: dict[str, Any], calls: list[PlannedCall]) -> dict[str, Any]:
        role = undo["role"]
        done = {"PutRolePolicy": "put back the earlier", "DeleteRolePolicy": "deleted the"}
        summary = "; ".join(f"{done[c.operation]} {REVOKE_POLICY} on role {role}" for c in calls)
        return {"role": role, "summary": summary or f"nothing to put back on role {role}"}

    def _decide(self, ctx: ActionContext, params: RevokeRoleSessionsInput) -> Decision:
        ref = named("role", params.role, ctx, field="role")
        iam = iam_client(ctx, params, ref)
        role = contained_entity(ctx, iam, "role", ref.name)
        existing = optional(iam.get_role_policy, RoleName=ref.name, PolicyName=REVOKE_POLICY)
        document = existing["PolicyDocument"] if existing else None
        previous = json.dumps(document) if document is not None else None
        sid = statement_id(ctx)
        earlier = revocation_time(document)
        alert_time = parse_time((ctx.alert.get("details") or {}).get("event_time"))
        ours = sid in _sids(document)
        if earlier is not None and (ours or (alert_time is not None and earlier >= alert_time)):
            kept = earlier.strftime(TIME_FORMAT)
            why = (
                "an earlier attempt of this step put it; undo deletes it"
                if ours
                else "at or after the alert's time"
            )
            summary = (
                f"{REVOKE_POLICY} on role {ref.name} already denies every session issued "
                f"before {kept} ({why}): nothing to do"
            )
            return Decision(iam, ref.name, role["Arn"], previous, kept, summary, [], ours)
        now = datetime.now(UTC)
        before = now.strftime(TIME_FORMAT)
        replacing = f" (replacing the {REVOKE_POLICY} policy already there)" if document else ""
        call = IamCall(
            service="iam",
            operation="PutRolePolicy",
            params={
                "RoleName": ref.name,
                "PolicyName": REVOKE_POLICY,
                "PolicyDocument": json.dumps(revoke_document(sid, now)),
            },
            target=f"role/{ref.name}",
            # The time is "now" when the call is made: an approval binds the rest of the plan.
            volatile=["PolicyDocument"],
            note=f"affects EVERY holder of role {ref.name}, not only the attacker: every session "
            "issued before the step runs (people, applications, EC2 instances and Lambda "
            f"functions using the role) is denied every action until it assumes the role "
            f"again{replacing}",
        )
        summary = f"revoked every session of role {ref.name} issued before {before}{replacing}"
        return Decision(iam, ref.name, role["Arn"], previous, before, summary, [call])

    def undo_calls(
        self, ctx: ActionContext, undo: dict[str, Any]
    ) -> tuple[list[PlannedCall], list[str]]:
        """Put back the earlier document or delete ours, unless ours was changed since."""
        iam = undo_client(ctx, undo)
        role, policy = undo["role"], undo["policy_name"]
        current = optional(iam.get_role_policy, RoleName=role, PolicyName=policy)
        if current is None:
            return [], [f"{policy} is no longer on role {role}"]
        if current["PolicyDocument"] != json.loads(undo["document"]):
            return [], [f"{policy} on role {role} was changed since this step: left as it is"]
        params: dict[str, Any] = {"RoleName": role, "PolicyName": policy}
        if undo["previous_document"] is not None:
            params["PolicyDocument"] = undo["previous_document"]
        operation = "DeleteRolePolicy" if undo["previous_document"] is None else "PutRolePolicy"
        call = IamCall(service="iam", operation=operation, params=params, target=f"role/{role}")
        return [call], []


def statement_id(ctx: ActionContext) -> str:
    """The ``Sid`` naming the run and step that revoked (IAM allows only letters and digits)."""
    return "RiposteRun" + _alnum(ctx.run_id) + "Step" + _alnum(ctx.step_id)


def _alnum(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text)


def _sids(document: dict[str, Any] | None) -> set[str]:
    return {str(s["Sid"]) for s in _statements(document) if s.get("Sid")}


def _statements(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A policy's statements (one statement may be written without a list)."""
    statements = (document or {}).get("Statement", [])
    listed = statements if isinstance(statements, list) else [statements]
    return [statement for statement in listed if isinstance(statement, dict)]
