"""The least-privilege policy checked against AWS's own definitions of every action.

policy_sentry bundles AWS's Service Authorization Reference (each action, the resource types it
accepts with their ARN formats, the condition keys of each), offline. Every statement the
actions declare must name real actions, resource patterns of a resource type the action
accepts (``*`` only for an action that accepts none), and condition keys the action documents.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest
from policy_sentry.querying.actions import get_action_data
from policy_sentry.querying.conditions import is_condition_key_match

from actions import registry
from actions.base import Action, ActionInput
from actions.policy import (
    NO_RESOURCE_LEVEL,
    Scope,
    explanation,
    fill,
    grants_of,
    least_privilege_policy,
    policy_statements,
)
from tests.policy_evaluator import Request, allowing, condition_holds

ACTIONS = registry.all_actions()
ACCOUNT = "123456789012"
POLICIES = {
    "default": least_privilege_policy(ACTIONS, responder_role="riposte-responder"),
    "narrowed": least_privilege_policy(
        ACTIONS, responder_role="ops/riposte-responder", account=ACCOUNT,
        passed_roles=["app-server", "/service/worker/"], trail_bucket="acme-cloudtrail-logs",
    ),
    "aws-cn": least_privilege_policy(ACTIONS, partition="aws-cn", account=ACCOUNT),
}
STATEMENTS = [
    pytest.param(statement, id=f"{name}-{statement['Sid']}")
    for name, policy in POLICIES.items()
    for statement in policy["Statement"]
]


@cache
def definitions(action: str) -> list[dict[str, Any]]:
    """AWS's definition of ``service:Action``: one entry per resource type (``*``: none)."""
    service, name = action.split(":")
    found: list[dict[str, Any]] = (get_action_data(service, name) or {}).get(service, [])
    return found


def format_regex(arn_format: str) -> re.Pattern[str]:
    """A resource type's ARN format as a regex over a policy's resource pattern.

    A placeholder stands for any text of its segment (``*`` included); a name with a path or an
    object key may hold slashes, the others not.
    """
    parts = re.split(r"(\$\{[A-Za-z]+\})", arn_format)
    out = []
    for part in parts:
        if not part.startswith("${"):
            out.append(re.escape(part))
        elif part in ("${Partition}", "${Region}", "${Account}"):
            out.append("[^:]*")
        elif "Path" in part or "ObjectName" in part:
            out.append(".+")
        else:
            out.append("[^:/]+")
    return re.compile("".join(out) + "$")


def accepted_types(action: str, pattern: str) -> list[dict[str, Any]]:
    """The action's resource types whose ARN format ``pattern`` fits."""
    return [
        d for d in definitions(action)
        if d["resource_arn_format"] != "*" and format_regex(d["resource_arn_format"]).match(pattern)
    ]


@pytest.mark.parametrize("statement", STATEMENTS)
def test_each_statement_names_real_actions_on_resources_they_accept(
    statement: dict[str, Any],
) -> None:
    resources = statement["Resource"]
    for action in statement["Action"]:
        assert definitions(action), f"{action} is not an AWS action"
        types = {d["resource_arn_format"] for d in definitions(action)}
        if resources == "*":
            # Only an action that accepts no resource ARN at all stays on "*".
            assert types == {"*"}, f"{action} accepts {types - {'*'}}: scope it"
            continue
        for pattern in [resources] if isinstance(resources, str) else resources:
            assert accepted_types(action, pattern), (
                f"{statement['Sid']}: {pattern} is no resource type {action} accepts: {types}"
            )


@pytest.mark.parametrize("statement", STATEMENTS)
def test_each_condition_key_is_one_the_action_documents_for_those_resources(
    statement: dict[str, Any],
) -> None:
    resources = statement["Resource"]
    patterns = [resources] if isinstance(resources, str) else resources
    for keys in (statement.get("Condition") or {}).values():
        for key in keys:
            for action in statement["Action"]:
                action_level = [d for d in definitions(action) if d["resource_arn_format"] == "*"]
                for pattern in patterns:
                    documented = {
                        k for d in accepted_types(action, pattern) + action_level
                        for k in d["condition_keys"]
                    }
                    assert any(is_condition_key_match(k, key) for k in documented), (
                        f"{statement['Sid']}: {action} on {pattern} has no condition key {key}"
                    )


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_sids_are_unique_alphanumeric_and_statements_of_one_scope_are_one(name: str) -> None:
    statements = POLICIES[name]["Statement"]
    sids = [s["Sid"] for s in statements]
    assert len(sids) == len(set(sids))
    assert all(re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids)
    scopes = [json.dumps([s["Resource"], s.get("Condition")], sort_keys=True) for s in statements]
    assert len(scopes) == len(set(scopes))
    text = json.dumps(POLICIES[name])
    assert "{" not in text.replace('{"', "").replace("{}", ""), "a placeholder was left unfilled"


def test_only_reads_aws_cannot_scope_stay_on_star_and_each_says_why() -> None:
    statements = policy_statements(ACTIONS, account=ACCOUNT)
    broad = [s for s in statements if not s.scoped]
    assert [s.sid for s in broad] == [NO_RESOURCE_LEVEL.sid]
    assert all(a.split(":")[1].startswith(("Describe", "Lookup")) for a in broad[0].actions)
    assert all(s.reason for s in statements)
    assert len(statements) > 20


def test_every_declared_permission_is_granted_to_the_action_that_declares_it() -> None:
    statements = policy_statements(ACTIONS)
    for name, action in ACTIONS.items():
        granted = {a for s in statements if name in s.needed_by for a in s.actions}
        assert set(action.permissions) <= granted, name
        if name.startswith("aws."):
            assert action.grants, f"{name}: declare grants (scoped statements), not permissions"


def test_scopes_equal_in_resources_and_conditions_are_declared_once() -> None:
    """Two actions sharing a statement share its Sid and reason: one Scope, not two copies."""
    by_key: dict[str, set[tuple[str, str]]] = {}
    for action in ACTIONS.values():
        for grant in action.grants:
            by_key.setdefault(grant.scope.key, set()).add((grant.scope.sid, grant.scope.reason))
    assert {k: v for k, v in by_key.items() if len(v) > 1} == {}


def test_the_policy_is_written_for_the_partition_and_account_given() -> None:
    document = least_privilege_policy(
        ["aws.iam.disable_user", "aws.ec2.relaunch_instances"],
        responder_role="riposte-responder",
        partition="${AWS::Partition}",
        account="${AWS::AccountId}",
    )
    statements = {s["Sid"]: s for s in document["Statement"]}
    assert statements["IamUsersOfTheAccount"]["Resource"] == (
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:user/*"
    )
    assert statements["IamAttachDenyAllOnly"]["Condition"] == {
        "ArnEquals": {"iam:PolicyARN": "arn:${AWS::Partition}:iam::aws:policy/AWSDenyAll"}
    }
    assert statements["Ec2LaunchFromTheAccountsOwnBackups"]["Condition"] == {
        "StringLike": {"ec2:Owner": "${AWS::AccountId}"}
    }
    # The responder role is assumed in the accounts Riposte responds in, whichever they are.
    assert statements["AssumeResponderRole"]["Resource"] == (
        "arn:${AWS::Partition}:iam::*:role/riposte-responder"
    )


def test_passed_roles_narrow_pass_role_to_those_roles_and_to_ec2() -> None:
    [statement] = [
        s for s in POLICIES["narrowed"]["Statement"] if s["Action"] == ["iam:PassRole"]
    ]
    assert statement["Resource"] == [
        f"arn:aws:iam::{ACCOUNT}:role/app-server",
        f"arn:aws:iam::{ACCOUNT}:role/service/worker",
    ]
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}
    }


def test_placeholders_are_filled_once_per_combination_of_values() -> None:
    values = {"partition": ["aws"], "account": ["1", "2"], "passed_role": ["a", "b"]}
    assert fill("arn:{partition}:iam::{account}:role/{passed_role}", values) == [
        "arn:aws:iam::1:role/a", "arn:aws:iam::1:role/b",
        "arn:aws:iam::2:role/a", "arn:aws:iam::2:role/b",
    ]
    assert fill("no placeholder {here}", values) == ["no placeholder {here}"]


class _LegacyInput(ActionInput):
    pass


class _Legacy(Action[_LegacyInput]):
    """An action of the old kind: a flat permissions tuple (not registered)."""

    name = "test.legacy"
    Input = _LegacyInput
    permissions = ("ec2:StopInstances",)


def test_an_action_declaring_only_permissions_gets_them_unscoped_and_says_so() -> None:
    [grant] = grants_of(_Legacy)
    assert grant.actions == ("ec2:StopInstances",)
    assert grant.scope.resources == ("*",) and "not scoped yet" in grant.scope.reason
    assert _Legacy.grants == ()


def test_grants_give_an_action_its_permissions_and_both_cannot_be_declared() -> None:
    scope = Scope("Example", "an example", ("arn:{partition}:ec2:{region}:{account}:instance/*",))

    class Granted(Action[_LegacyInput]):
        name = "test.granted"
        Input = _LegacyInput
        grants = (scope.allow("ec2:StopInstances", "ec2:StartInstances"),
                  NO_RESOURCE_LEVEL.allow("ec2:DescribeInstances", "ec2:StopInstances"))

    assert Granted.permissions == ("ec2:StopInstances", "ec2:StartInstances",
                                   "ec2:DescribeInstances")
    with pytest.raises(TypeError, match="declare grants, not permissions as well"):
        class Both(Action[_LegacyInput]):
            name = "test.both"
            Input = _LegacyInput
            grants = (scope.allow("ec2:StopInstances"),)
            permissions = ("ec2:StopInstances",)


def test_the_explanation_gives_every_statement_its_scope_users_and_reason() -> None:
    statements = policy_statements(["aws.iam.disable_user", "aws.ec2.describe_instances"],
                                   responder_role="riposte-responder")
    text = explanation(statements)
    for statement in statements:
        assert f"{statement.sid} ({'scoped' if statement.scoped else 'on *'})" in text
        assert statement.reason in text
    assert "condition:  ArnEquals iam:PolicyARN arn:aws:iam::aws:policy/AWSDenyAll" in text
    assert "needed by:  aws.iam.disable_user" in text
    assert text.endswith(
        f"{len(statements)} statements: {len(statements) - 1} scoped to resources or "
        "conditions, 1 on * (ReadCallsWithoutResourceLevelPermissions)"
    )


# ---------------------------------------------------------------------------------------------
# The tests' evaluator can say no (an oracle that always agrees proves nothing)


def test_the_evaluator_refuses_what_a_condition_or_resource_excludes() -> None:
    policy = {"Statement": [{
        "Sid": "S", "Effect": "Allow", "Action": "ec2:CreateTags",
        "Resource": "arn:aws:ec2:*:*:instance/*",
        "Condition": {"ForAllValues:StringLike": {"aws:TagKeys": "riposte:*"}},
    }]}
    instance = "arn:aws:ec2:us-east-1:1:instance/i-1"
    assert allowing(policy, Request("ec2:CreateTags", instance,
                                    {"aws:TagKeys": ("riposte:run",)})) == ["S"]
    assert allowing(policy, Request("ec2:CreateTags", instance, {"aws:TagKeys": ("Name",)})) == []
    assert allowing(policy, Request("ec2:CreateTags", "arn:aws:ec2:us-east-1:1:volume/v-1",
                                    {"aws:TagKeys": ("riposte:run",)})) == []
    # ForAllValues holds when the request has no such key: why the policy adds Null false.
    assert allowing(policy, Request("ec2:CreateTags", instance)) == ["S"]
    assert not condition_holds("Null", "aws:TagKeys", ["false"], {})
    assert not condition_holds("StringEquals", "iam:PassedToService", ["ec2.amazonaws.com"], {})
