"""aws.iam.disable_user and aws.iam.revoke_access_keys against the moto server.

moto does not enforce the quota of managed policies per user, so the ``LimitExceeded`` answer
that makes disable_user fall back to an inline deny is played by a botocore ``before-call``
hook (the mechanism Stubber uses) on the action's own IAM client, for AttachUserPolicy only:
every other call, and every state check, is moto's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from actions.base import ActionError, RunEnv
from tests.aws_sandbox import OTHER_ACCOUNT, AwsSandbox, calls_of, mutations_of
from tests.integration.iam_seed import (
    DENY_ALL,
    role_alert,
    seed_user,
    user_alert,
    user_state,
)

DISABLE = "aws.iam.disable_user"
REVOKE = "aws.iam.revoke_access_keys"


def test_disable_user_denies_everything_then_keys_then_password_then_tags(
    aws: AwsSandbox,
) -> None:
    active, inactive = seed_user(aws, tags={"team": "dev"})
    done = aws.act(DISABLE, {}, env=aws.env(alert=user_alert("alice")))
    assert user_state(aws) == {
        "attached": [DENY_ALL],
        "inline": [],
        "keys": {active: "Inactive", inactive: "Inactive"},
        "password": False,
        "tags": {"team": "dev", "riposte:disabled-by-run": "run-1"},
    }
    # The deny comes first: it also cuts the sessions the user already holds.
    assert [c.operation for c in done.mutations] == [
        "AttachUserPolicy",
        "UpdateAccessKey",
        "DeleteLoginProfile",
        "TagUser",
    ]
    output = done.output
    assert output["deny"] == {"policy_arn": DENY_ALL}
    assert output["deactivated_keys"] == [active]
    assert f"access key {inactive} was already inactive" in output["already"]
    assert output["undo"]["deactivated_keys"] == [active]  # not the key that was already off
    assert output["undo"]["console_password_deleted"] is True
    json.dumps(output)


def test_disable_user_a_second_time_changes_nothing(aws: AwsSandbox) -> None:
    seed_user(aws)
    aws.act(DISABLE, {"user": "alice"})
    before = user_state(aws)
    again = aws.act(DISABLE, {"user": "alice"})
    assert again.mutations == []
    assert again.output["summary"] == "user alice was already disabled: nothing to do"
    assert again.output["undo"] is None
    assert user_state(aws) == before


def test_disable_user_dry_run_plans_exactly_what_the_live_run_does(aws: AwsSandbox) -> None:
    active, _ = seed_user(aws)
    before = user_state(aws)
    dry = aws.act(DISABLE, {"user": "alice"}, env=aws.env(mode="dry_run"))
    assert user_state(aws) == before
    assert dry.mutations == [] and dry.ctx.aws.calls.refused == []
    assert calls_of(dry.output) == [
        ("AttachUserPolicy", {"UserName": "alice", "PolicyArn": DENY_ALL}),
        ("UpdateAccessKey", {"UserName": "alice", "AccessKeyId": active, "Status": "Inactive"}),
        ("DeleteLoginProfile", {"UserName": "alice"}),
        (
            "TagUser",
            {"UserName": "alice", "Tags": [{"Key": "riposte:disabled-by-run", "Value": "run-1"}]},
        ),
    ]
    live = aws.act(DISABLE, {"user": "alice"})
    assert mutations_of(live) == calls_of(dry.output)


def test_disable_user_undo_puts_back_only_what_it_changed(aws: AwsSandbox) -> None:
    active, inactive = seed_user(aws, tags={"riposte:disabled-by-run": "run-0"})
    iam = aws.client("iam")
    iam.attach_user_policy(UserName="alice", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    done = aws.act(DISABLE, {"user": "alice"})
    undo = done.output["undo"]
    assert undo["tag"] == {"key": "riposte:disabled-by-run", "value": "run-1", "previous": "run-0"}

    planned = aws.act(DISABLE, {}, mode="dry_run", undo=undo)
    assert planned.mutations == []
    undone = aws.act(DISABLE, {}, undo=undo)
    assert mutations_of(undone) == calls_of(planned.output)
    assert user_state(aws) == {
        "attached": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
        "inline": [],
        "keys": {active: "Active", inactive: "Inactive"},  # never re-enable what was off
        "password": False,
        "tags": {"riposte:disabled-by-run": "run-0"},  # the earlier run's tag is back
    }
    assert "cannot be restored" in undone.output["not_restored"][0]
    assert "new one" in undone.output["not_restored"][0]
    again = aws.act(DISABLE, {}, undo=undo)
    assert again.mutations == []
    assert again.output["summary"] == "nothing to put back on user alice"


def test_disable_user_keeps_the_console_password_when_asked(aws: AwsSandbox) -> None:
    seed_user(aws)
    done = aws.act(DISABLE, {"user": "alice", "console": "keep"})
    assert user_state(aws)["password"] is True
    assert "DeleteLoginProfile" not in [c.operation for c in done.mutations]
    assert "the console password was kept (console: keep)" in done.output["already"]
    undone = aws.act(DISABLE, {}, undo=done.output["undo"])
    assert undone.output["not_restored"] == []


def _quota_reached(env: RunEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make AWS answer AttachUserPolicy with LimitExceeded on the run's IAM clients."""

    def refuse(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        error = {"Code": "LimitExceeded", "Message": "Cannot exceed quota for PoliciesPerUser: 10"}
        return AWSResponse("", 409, {}, None), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 409},
        }

    original: Callable[..., Any] = env.aws.client

    def client(service: str, **kwargs: Any) -> Any:
        made = original(service, **kwargs)
        made.meta.events.register("before-call.iam.AttachUserPolicy", refuse)
        return made

    monkeypatch.setattr(env.aws, "client", client)


def test_disable_user_at_the_managed_policy_quota_puts_an_inline_deny(
    aws: AwsSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_user(aws, keys=(), password=False)
    iam = aws.client("iam")
    policies = iam.list_policies(Scope="AWS", MaxItems=20)["Policies"]
    ten = [p["Arn"] for p in policies if p["PolicyName"] != "AWSDenyAll"][:10]
    for arn in ten:
        iam.attach_user_policy(UserName="alice", PolicyArn=arn)

    dry = aws.act(DISABLE, {"user": "alice"}, env=aws.env(mode="dry_run"))
    assert [c.operation for c in dry.output] == ["AttachUserPolicy", "PutUserPolicy", "TagUser"]
    assert "only if AttachUserPolicy is refused with LimitExceeded" in dry.output[1].note

    env = aws.env()
    _quota_reached(env, monkeypatch)
    done = aws.act(DISABLE, {"user": "alice"}, env=env)
    state = user_state(aws)
    assert state["attached"] == sorted(ten)
    assert state["inline"] == ["riposte-deny-all"]
    document = iam.get_user_policy(UserName="alice", PolicyName="riposte-deny-all")
    statement = document["PolicyDocument"]["Statement"][0]
    assert (statement["Effect"], statement["Action"], statement["Resource"]) == ("Deny", "*", "*")
    assert done.output["deny"] == {"policy_name": "riposte-deny-all"}
    assert "LimitExceeded" in done.output["notes"][0]
    # The hook answers before the call is recorded as sent, so compare what the action asked
    # for: the plan's calls, the refused attach and its fallback included.
    asked = [(c.operation, c.params) for c in done.ctx.aws.calls.asked if c.mutating]
    assert asked == calls_of(dry.output)

    aws.act(DISABLE, {}, undo=done.output["undo"])
    assert user_state(aws)["inline"] == []
    assert user_state(aws)["attached"] == sorted(ten)


def test_disable_user_refuses_what_it_must_not_or_cannot_touch(aws: AwsSandbox) -> None:
    seed_user(aws, "breakglass-ops")
    seed_user(aws, "moto")
    cases: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        (user_alert("breakglass-ops"), {}, "ProtectedPrincipal"),
        ({"principal": {"type": "Root", "name": "root"}}, {}, "ProtectedPrincipal"),
        ({}, {"user": "moto"}, "ProtectedPrincipal"),  # Riposte's own identity on moto
        ({}, {"user": "nobody"}, "NoSuchUser"),
        ({}, {}, "NoPrincipal"),
        (role_alert("app"), {}, "WrongPrincipalKind"),
    ]
    for alert, params, code in cases:
        env = aws.env(alert=alert)
        env.settings = aws.settings.model_copy(update={"break_glass": ["breakglass-*"]})
        with pytest.raises(ActionError) as refused:
            aws.act(DISABLE, params, env=env)
        assert (refused.value.code, refused.value.retryable) == (code, False), (alert, params)
        assert [c for c in env.aws.calls.asked if c.mutating] == []
    assert user_state(aws, "breakglass-ops")["attached"] == []
    assert user_state(aws, "moto")["password"] is True


def test_disable_user_in_another_account_lands_there_only(aws: AwsSandbox) -> None:
    seed_user(aws)
    seed_user(aws, account=OTHER_ACCOUNT)
    done = aws.act(DISABLE, {}, env=aws.env(alert=user_alert("alice", account=OTHER_ACCOUNT)))
    assert user_state(aws, account=OTHER_ACCOUNT)["attached"] == [DENY_ALL]
    assert user_state(aws, account=OTHER_ACCOUNT)["password"] is False
    assert user_state(aws)["attached"] == []
    assert user_state(aws)["password"] is True
    assert all(c.account == OTHER_ACCOUNT for c in done.mutations)
    assert done.output["arn"] == f"arn:aws:iam::{OTHER_ACCOUNT}:user/alice"

    aws.act(DISABLE, {}, undo=done.output["undo"])
    assert user_state(aws, account=OTHER_ACCOUNT)["attached"] == []


def test_revoke_access_keys_deactivates_every_key_and_records_what_was_active(
    aws: AwsSandbox,
) -> None:
    active, inactive = seed_user(aws)
    dry = aws.act(REVOKE, {"user": "alice"}, env=aws.env(mode="dry_run"))
    assert user_state(aws)["keys"] == {active: "Active", inactive: "Inactive"}
    assert dry.mutations == []
    assert calls_of(dry.output) == [
        ("UpdateAccessKey", {"UserName": "alice", "AccessKeyId": active, "Status": "Inactive"})
    ]

    done = aws.act(REVOKE, {"user": "alice"})
    assert mutations_of(done) == calls_of(dry.output)
    assert user_state(aws)["keys"] == {active: "Inactive", inactive: "Inactive"}
    assert user_state(aws)["password"] is True  # keys only
    assert done.output["previous_status"] == {active: "Active", inactive: "Inactive"}
    assert done.output["already_inactive"] == [inactive]

    again = aws.act(REVOKE, {"user": "alice"})
    assert again.mutations == [] and again.output["undo"] is None
    assert "nothing to do" in again.output["summary"]

    aws.act(REVOKE, {}, undo=done.output["undo"])
    assert user_state(aws)["keys"] == {active: "Active", inactive: "Inactive"}


def test_revoke_one_access_key_finds_its_owner(aws: AwsSandbox) -> None:
    first, second = seed_user(aws, keys=("Active", "Active"))
    done = aws.act(REVOKE, {"access_key_id": second})
    assert done.output["user"] == "alice"
    assert user_state(aws)["keys"] == {first: "Active", second: "Inactive"}
    assert done.output["undo"]["reactivate"] == [second]


def test_revoke_access_keys_refuses_clearly(aws: AwsSandbox) -> None:
    seed_user(aws)
    seed_user(aws, "breakglass-ops")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"access_key_id": "ASIAEXAMPLEEXAMPLE01"}, "TemporaryCredentials"),
        ({"access_key_id": "AKIAEXAMPLEEXAMPLE01"}, "NoSuchAccessKey"),
        ({"user": "alice", "access_key_id": "AKIAEXAMPLEEXAMPLE01"}, "NoSuchAccessKey"),
        ({"user": "breakglass-ops"}, "ProtectedPrincipal"),
    ]
    for params, code in cases:
        env = aws.env()
        env.settings = aws.settings.model_copy(update={"break_glass": ["breakglass-*"]})
        with pytest.raises(ActionError) as refused:
            aws.act(REVOKE, params, env=env)
        assert refused.value.code == code, params
        assert [c for c in env.aws.calls.asked if c.mutating] == []
    assert "Active" in user_state(aws, "breakglass-ops")["keys"].values()
