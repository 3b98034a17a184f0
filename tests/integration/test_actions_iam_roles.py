"""aws.iam.revoke_role_sessions against the moto server."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from actions.base import ActionError
from engine.plans import plan_hash
from tests.aws_sandbox import OWN_ACCOUNT, AwsSandbox, calls_of, mutations_of
from tests.integration.iam_seed import role_alert, seed_role

REVOKE = "aws.iam.revoke_role_sessions"
POLICY = "AWSRevokeOlderSessions"


def revoke_policy(aws: AwsSandbox, role: str = "app") -> dict[str, Any] | None:
    iam = aws.client("iam")
    try:
        answer = iam.get_role_policy(RoleName=role, PolicyName=POLICY)
    except iam.exceptions.NoSuchEntityException:
        return None
    return dict(answer["PolicyDocument"])


def issue_time(document: dict[str, Any]) -> str:
    return str(document["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"])


def document_time(document: dict[str, Any] | None) -> str:
    assert document is not None
    return issue_time(document)


def without_time(calls: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """Calls with the revocation time blanked: the one value that depends on when they ran."""
    blanked = []
    for operation, params in calls:
        document = json.loads(params["PolicyDocument"])
        document["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] = "…"
        blanked.append((operation, {**params, "PolicyDocument": document}))
    return blanked


def old_revocation(time: str) -> str:
    statement = {
        "Effect": "Deny",
        "Action": ["*"],
        "Resource": ["*"],
        "Condition": {"DateLessThan": {"aws:TokenIssueTime": time}},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_revoke_role_sessions_denies_every_session_issued_before_now(aws: AwsSandbox) -> None:
    seed_role(aws)
    started = datetime.now(UTC).replace(microsecond=0)
    done = aws.act(REVOKE, {}, env=aws.env(alert=role_alert("app")))
    finished = datetime.now(UTC)
    document = revoke_policy(aws)
    assert document is not None
    statement = document["Statement"][0]
    assert (statement["Effect"], statement["Action"], statement["Resource"]) == (
        "Deny",
        ["*"],
        ["*"],
    )
    revoked = datetime.fromisoformat(issue_time(document))
    assert started <= revoked <= finished
    assert done.output["revoked_before"] == issue_time(document)
    assert done.output["undo"]["previous_document"] is None
    assert [c.operation for c in done.mutations] == ["PutRolePolicy"]


def test_revoke_role_sessions_dry_run_warns_that_every_holder_is_affected(
    aws: AwsSandbox,
) -> None:
    seed_role(aws)
    dry = aws.act(REVOKE, {"role": "app"}, env=aws.env(mode="dry_run"))
    assert revoke_policy(aws) is None
    assert dry.mutations == [] and dry.ctx.aws.calls.refused == []
    [call] = dry.output
    assert call.operation == "PutRolePolicy"
    assert "EVERY holder of role app" in call.note
    live = aws.act(REVOKE, {"role": "app"})
    assert without_time(mutations_of(live)) == without_time(calls_of(dry.output))


def test_revoke_role_sessions_plan_binds_an_approval_whatever_the_time(aws: AwsSandbox) -> None:
    """The revocation time is "now": volatile, so a plan made later still hashes the same."""
    seed_role(aws)
    [first] = aws.act(REVOKE, {"role": "app"}, env=aws.env(mode="dry_run")).output
    start = int(time.time())
    while int(time.time()) == start:  # the next second: a later "now" in the document
        time.sleep(0.02)
    [later] = aws.act(REVOKE, {"role": "app"}, env=aws.env(mode="dry_run")).output
    assert first.params["PolicyDocument"] != later.params["PolicyDocument"]
    assert first.volatile == ["PolicyDocument"]
    plan = {"step": "step", "action": REVOKE, "params": {"role": "app"}, "reason": ""}
    assert plan_hash({**plan, "calls": [[first.model_dump()]]}) == plan_hash(
        {**plan, "calls": [[later.model_dump()]]}
    )


def test_revoke_role_sessions_again_in_the_same_step_keeps_the_time(aws: AwsSandbox) -> None:
    seed_role(aws)
    aws.act(REVOKE, {"role": "app"})
    first = revoke_policy(aws)
    again = aws.act(REVOKE, {"role": "app"})
    assert again.mutations == []
    assert "an earlier attempt of this step put it" in again.output["summary"]
    assert revoke_policy(aws) == first
    # A retry after a lost output still leaves a way back: undo deletes the policy.
    aws.act(REVOKE, {}, undo=again.output["undo"])
    assert revoke_policy(aws) is None


def test_revoke_role_sessions_keeps_a_revocation_made_after_the_alert(aws: AwsSandbox) -> None:
    seed_role(aws)
    aws.act(REVOKE, {"role": "app"})
    first = revoke_policy(aws)
    alert = role_alert("app", event_time="2020-11-06T03:21:39Z")
    later = aws.act(REVOKE, {}, env=aws.env(alert=alert, run_id="run-2"))
    assert later.mutations == [] and later.output["undo"] is None
    assert "at or after the alert's time" in later.output["summary"]
    assert revoke_policy(aws) == first


def test_revoke_role_sessions_moves_an_older_revocation_forward_and_undo_restores_it(
    aws: AwsSandbox,
) -> None:
    seed_role(aws)
    iam = aws.client("iam")
    iam.put_role_policy(
        RoleName="app", PolicyName=POLICY, PolicyDocument=old_revocation("2020-01-01T00:00:00Z")
    )
    earlier = revoke_policy(aws)
    alert = role_alert("app", event_time="2020-11-06T03:21:39Z")
    done = aws.act(REVOKE, {}, env=aws.env(alert=alert))
    assert document_time(revoke_policy(aws)) > "2020-11-06"
    assert json.loads(done.output["undo"]["previous_document"]) == earlier

    planned = aws.act(REVOKE, {}, mode="dry_run", undo=done.output["undo"])
    undone = aws.act(REVOKE, {}, undo=done.output["undo"])
    assert mutations_of(undone) == calls_of(planned.output)
    assert revoke_policy(aws) == earlier


def test_revoke_role_sessions_undo_deletes_the_policy_it_added(aws: AwsSandbox) -> None:
    seed_role(aws)
    done = aws.act(REVOKE, {"role": f"arn:aws:iam::{OWN_ACCOUNT}:role/app"})
    undone = aws.act(REVOKE, {}, undo=done.output["undo"])
    assert revoke_policy(aws) is None
    assert [c.operation for c in undone.mutations] == ["DeleteRolePolicy"]
    again = aws.act(REVOKE, {}, undo=done.output["undo"])
    assert again.mutations == []
    assert again.output["unchanged"] == [f"{POLICY} is no longer on role app"]


def test_revoke_role_sessions_undo_leaves_a_policy_changed_since(aws: AwsSandbox) -> None:
    seed_role(aws)
    done = aws.act(REVOKE, {"role": "app"})
    newer = old_revocation("2030-01-01T00:00:00Z")
    aws.client("iam").put_role_policy(RoleName="app", PolicyName=POLICY, PolicyDocument=newer)
    undone = aws.act(REVOKE, {}, undo=done.output["undo"])
    assert undone.mutations == []
    assert "was changed since this step" in undone.output["unchanged"][0]
    assert revoke_policy(aws) == json.loads(newer)


def test_revoke_role_sessions_refuses_protected_and_unknown_roles(aws: AwsSandbox) -> None:
    iam = aws.client("iam")
    iam.create_service_linked_role(AWSServiceName="autoscaling.amazonaws.com")
    seed_role(aws, "AWSReservedSSO_Admin_0123abcd")
    seed_role(aws, "riposte-responder")
    # Named like any role, but its path says AWS made it for a service: refused by its ARN.
    seed_role(aws, "odd-service-role", Path="/aws-service-role/example.amazonaws.com/")
    seed_role(aws, "app")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"role": "AWSServiceRoleForAutoScaling"}, "ProtectedPrincipal"),
        ({"role": "AWSReservedSSO_Admin_0123abcd"}, "ProtectedPrincipal"),
        ({"role": "riposte-responder"}, "ProtectedPrincipal"),
        ({"role": "odd-service-role"}, "ProtectedPrincipal"),
        ({"role": "nobody"}, "NoSuchRole"),
        ({"role": f"arn:aws:iam::{OWN_ACCOUNT}:user/alice"}, "WrongPrincipalKind"),
        (
            {"role": f"arn:aws:iam::{OWN_ACCOUNT}:role/app", "account": "999999999999"},
            "AccountMismatch",
        ),
    ]
    for params, code in cases:
        env = aws.env()
        with pytest.raises(ActionError) as refused:
            aws.act(REVOKE, params, env=env)
        assert refused.value.code == code, params
        assert [c for c in env.aws.calls.asked if c.mutating] == []
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert all(iam.list_role_policies(RoleName=name)["PolicyNames"] == [] for name in roles)
