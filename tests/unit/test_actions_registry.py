"""Registry-wide rules every action must keep: a valid example, declared permissions, policy."""

from __future__ import annotations

import re
import textwrap
from typing import Any

import pytest

from actions import registry
from actions.aws.target import AwsInput
from actions.base import Action
from actions.policy import least_privilege_policy
from engine.playbooks import parse_playbook
from tests.step_examples import example_playbook

ACTIONS = registry.all_actions()
EXAMPLE = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def _example(action: type[Action[Any]]) -> str:
    found = EXAMPLE.search(action.__doc__ or "")
    assert found, f"{action.name}: the docstring has no ```yaml example of a step"
    return textwrap.dedent(found[1])


@pytest.mark.parametrize("name", list(ACTIONS))
def test_every_action_documents_a_step_that_validates(name: str) -> None:
    loaded = parse_playbook(example_playbook(_example(ACTIONS[name]), "example"),
                            f"{name} docstring")
    assert loaded.spec.steps[-1].action == name


@pytest.mark.parametrize("name", [n for n in ACTIONS if n.startswith("aws.")])
def test_every_aws_action_says_where_it_acts_and_what_it_needs(name: str) -> None:
    action = ACTIONS[name]
    assert issubclass(action.Input, AwsInput), f"{name}: input must derive from AwsInput"
    assert action.permissions, f"{name}: declares no IAM permissions"
    for permission in action.permissions:
        assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", permission), (name, permission)


def test_the_policy_grants_exactly_the_declared_permissions_and_no_role_to_assume() -> None:
    """Scoping is proved in test_policy_scopes; here: nothing granted that no action declares."""
    document = least_privilege_policy(ACTIONS)
    assert document["Version"] == "2012-10-17"
    granted = {a for s in document["Statement"] for a in s["Action"]}
    assert granted == {p for action in ACTIONS.values() for p in action.permissions}
    assert all(s["Effect"] == "Allow" for s in document["Statement"])
    assert "sts:AssumeRole" not in granted


def test_the_policy_lets_riposte_assume_the_responder_role_when_one_is_set() -> None:
    document = least_privilege_policy(["core.log"], responder_role="/ops/riposte-responder")
    assert document["Statement"] == [
        {
            "Sid": "AssumeResponderRole",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole"],
            "Resource": "arn:aws:iam::*:role/ops/riposte-responder",
        }
    ]
