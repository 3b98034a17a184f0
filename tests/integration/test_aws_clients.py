"""The AWS client factory against the moto server: dry-run guard, retries, accounts, guards."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from actions.aws.clients import AwsClients, AwsError
from actions.aws.guards import refuse_protected
from actions.base import ActionContext, ActionError
from tests.aws_sandbox import OTHER_ACCOUNT, OWN_ACCOUNT, AwsSandbox


def _users(aws: AwsSandbox, account: str | None = None) -> set[str]:
    listed = aws.client("iam", account=account).list_users()["Users"]
    return {user["UserName"] for user in listed}


def test_dry_run_refuses_every_change_before_it_is_sent(aws: AwsSandbox) -> None:
    clients = AwsClients(aws.settings, dry_run=True, run_id="r")
    iam = clients.client("iam")
    with pytest.raises(ActionError) as refused:
        iam.create_user(UserName="mallory")
    assert refused.value.code == "DryRunRefused"
    assert "iam:CreateUser" in refused.value.message
    assert "mallory" not in _users(aws)
    assert [c.operation for c in clients.calls.refused] == ["CreateUser"]
    assert "CreateUser" not in [c.operation for c in clients.calls.sent]
    # Reads still go through, so plans are made from the real state.
    assert iam.list_users()["Users"] == []


def test_dry_run_lets_ec2_calls_that_carry_dry_run_reach_aws(aws: AwsSandbox) -> None:
    image = aws.client("ec2").describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = aws.client("ec2").run_instances(ImageId=image, MinCount=1, MaxCount=1)
    instance_id = instance["Instances"][0]["InstanceId"]
    ec2 = AwsClients(aws.settings, dry_run=True, run_id="r").client("ec2")
    with pytest.raises(AwsError) as answer:
        ec2.stop_instances(InstanceIds=[instance_id], DryRun=True)
    assert answer.value.code == "DryRunOperation"  # AWS's "it would have succeeded"
    with pytest.raises(ActionError, match="DryRunRefused"):
        ec2.stop_instances(InstanceIds=[instance_id])
    state = aws.client("ec2").describe_instances(InstanceIds=[instance_id])
    assert state["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"


def test_live_calls_are_recorded_as_sent(aws: AwsSandbox) -> None:
    clients = AwsClients(aws.settings, dry_run=False, run_id="r")
    clients.client("iam").create_user(UserName="alice")
    assert "alice" in _users(aws)
    sent = [(c.service, c.operation, c.params) for c in clients.calls.sent]
    assert ("iam", "CreateUser", {"UserName": "alice"}) in sent
    assert [c.mutating for c in clients.calls.sent if c.operation == "CreateUser"] == [True]


def test_aws_errors_become_step_errors_with_the_aws_code(aws: AwsSandbox) -> None:
    iam = AwsClients(aws.settings, dry_run=False, run_id="r").client("iam")
    with pytest.raises(AwsError) as error:
        iam.get_user(UserName="nobody")
    assert error.value.code == "NoSuchEntity"
    assert error.value.operation == "GetUser"


def test_a_paginated_read_follows_every_page_through_the_guarded_client(aws: AwsSandbox) -> None:
    policies = [f"arn:aws:iam::aws:policy/{name}"
                for name in ("ReadOnlyAccess", "AWSDenyAll", "SecurityAudit")]
    aws.client("iam").create_user(UserName="alice")
    for arn in policies:
        aws.client("iam").attach_user_policy(UserName="alice", PolicyArn=arn)
    clients = AwsClients(aws.settings, dry_run=True, run_id="r")
    iam = clients.client("iam")

    attached = iam.every("list_attached_user_policies", "AttachedPolicies", UserName="alice",
                         PaginationConfig={"PageSize": 1})

    assert sorted(p["PolicyArn"] for p in attached) == sorted(policies)
    # A request a page, each seen by the call log (and let through the dry-run guard: a read);
    # moto may end on one more, empty, page.
    pages = [c.params for c in clients.calls.sent if c.operation == "ListAttachedUserPolicies"]
    assert len(pages) >= len(policies)
    assert "Marker" not in pages[0] and all(page.get("Marker") for page in pages[1:])


def test_a_failing_page_is_a_step_error_with_the_aws_code(aws: AwsSandbox) -> None:
    iam = AwsClients(aws.settings, dry_run=False, run_id="r").client("iam")
    with pytest.raises(AwsError) as error:
        iam.every("list_access_keys", "AccessKeyMetadata", UserName="nobody")
    assert error.value.code == "NoSuchEntity"
    assert error.value.operation == "ListAccessKeys"


def test_codes_botocore_does_not_retry_are_retried_until_they_clear(aws: AwsSandbox) -> None:
    """IAM answers ConcurrentModification while another change settles.

    The emulator never answers it, so botocore's Stubber plays the two answers.
    """
    iam = AwsClients(aws.settings, dry_run=False, run_id="r").client("iam")
    with Stubber(iam._client) as stub:
        stub.add_client_error("attach_user_policy", "ConcurrentModification", http_status_code=409)
        stub.add_response("attach_user_policy", {})
        iam.attach_user_policy(UserName="alice", PolicyArn="arn:aws:iam::aws:policy/AWSDenyAll")
        stub.assert_no_pending_responses()


def test_not_found_is_retried_only_for_something_just_created(aws: AwsSandbox) -> None:
    """EC2 may not yet know an instance it has just launched; the Stubber plays that answer."""
    ec2 = AwsClients(aws.settings, dry_run=False, run_id="r").client("ec2")
    with Stubber(ec2._client) as stub:
        stub.add_client_error("describe_instances", "InvalidInstanceID.NotFound")
        with pytest.raises(AwsError, match="InvalidInstanceID.NotFound"):
            ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"])
        stub.add_client_error("describe_instances", "InvalidInstanceID.NotFound")
        stub.add_response("describe_instances", {"Reservations": []})
        assert ec2.settling().describe_instances(InstanceIds=["i-0123456789abcdef0"]) == {
            "Reservations": []
        }


def test_retrying_stops_at_the_total_time_cap(aws: AwsSandbox) -> None:
    """The Stubber keeps answering Throttled; the call gives up after the cap, with that code."""
    settings = aws.settings.model_copy(update={"aws_retry_seconds": 0.5})
    sns = AwsClients(settings, dry_run=False, run_id="r").client("sns")
    with Stubber(sns._client) as stub:
        for _ in range(50):
            stub.add_client_error("publish", "Throttled")
        with pytest.raises(AwsError) as error:
            sns.publish(TopicArn="arn:aws:sns:us-east-1:123456789012:t", Message="m")
    assert error.value.code == "Throttled"


def test_another_account_is_reached_through_the_responder_role(aws: AwsSandbox) -> None:
    clients = AwsClients(aws.settings, dry_run=False, run_id="run-7")
    assert clients.own_account() == OWN_ACCOUNT
    clients.client("iam", account=OTHER_ACCOUNT).create_user(UserName="bob")
    assert "bob" in _users(aws, OTHER_ACCOUNT)
    assert "bob" not in _users(aws)
    assumed = [c.params for c in clients.calls.sent if c.operation == "AssumeRole"]
    assert assumed == [
        {
            "RoleArn": f"arn:aws:iam::{OTHER_ACCOUNT}:role/riposte-responder",
            "RoleSessionName": "riposte-run-7",
        }
    ]


def test_another_account_without_a_responder_role_is_a_clear_error(aws: AwsSandbox) -> None:
    settings = aws.settings.model_copy(update={"responder_role": None})
    clients = AwsClients(settings, dry_run=False, run_id="r")
    with pytest.raises(ActionError) as error:
        clients.client("iam", account=OTHER_ACCOUNT)
    assert error.value.code == "NoAccessToAccount"


@pytest.mark.parametrize(
    ("kind", "name", "arn", "reason"),
    [
        ("user", "root", f"arn:aws:iam::{OWN_ACCOUNT}:root", "root user"),
        (
            "role",
            "AWSServiceRoleForSupport",
            f"arn:aws:iam::{OWN_ACCOUNT}:role/aws-service-role/support.amazonaws.com/"
            "AWSServiceRoleForSupport",
            "service-linked",
        ),
        ("role", "AWSReservedSSO_Admin_0123abcd", "", "Identity Center"),
        ("user", "breakglass-ops", "", "break-glass"),
        ("role", "riposte-responder", "", "Riposte itself"),
        ("user", "moto", "", "Riposte itself"),  # moto's caller identity is user/moto
    ],
)
def test_containment_guards_refuse_protected_principals(
    aws: AwsSandbox, kind: str, name: str, arn: str, reason: str
) -> None:
    env = aws.env()
    env.settings = aws.settings.model_copy(update={"break_glass": ["breakglass-*"]})
    ctx = ActionContext(run_id="r", step_id="s", mode="live", env=env)
    with pytest.raises(ActionError) as refused:
        refuse_protected(ctx, kind=kind, name=name, arn=arn)
    assert refused.value.code == "ProtectedPrincipal"
    assert reason in refused.value.message
    assert refused.value.retryable is False
    refuse_protected(ctx, kind="user", name="alice", arn=f"arn:aws:iam::{OWN_ACCOUNT}:user/alice")
