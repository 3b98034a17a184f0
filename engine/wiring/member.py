"""The member stack: what Riposte needs in every account it acts in (a StackSet, one region).

Riposte acts in an alert's account by assuming the responder role there
(``RIPOSTE_RESPONDER_ROLE``, with ``RIPOSTE_RESPONDER_EXTERNAL_ID``). This stack makes that role:
trusted by Riposte's own principal only (``RipostePrincipalArn``) and only with the external id,
carrying the least-privilege policy of the actions the playbooks use (actions/policy.py), in the
account's own partition and account id. IAM is global: deploy it in one region per account.

The same stack can forward that region's events to the hub (``HubEventBusArn``; empty: not):
CloudTrail calls in a member account reach only its own default bus. Deploy the region stack to
the account's other regions. Riposte's own account needs no member stack: Riposte acts there
with its own credentials (give them ``riposte policy``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from actions.policy import least_privilege_policy
from engine.wiring.forwarding import (
    HUB_BUS,
    NOT_HUB,
    forward_id,
    forwarding_resources,
    hub_bus_parameter,
    is_not_hub,
)
from engine.wiring.hub import metadata
from engine.wiring.routing import Wiring
from engine.wiring.template import TEMPLATE_VERSION, get_att, ref, substituted

DEFAULT_RESPONDER_ROLE = "riposte-responder"
FORWARD = "ForwardEvents"
ROLE_PARAMETERS = frozenset({"ResponderRoleName", "ResponderRolePath"})


def responder_policy(action_names: Iterable[str]) -> dict[str, Any]:
    """The responder role's policy for these actions, in the stack's partition and account.

    Its strings holding ``${AWS::Partition}`` / ``${AWS::AccountId}`` become ``Fn::Sub``.
    """
    document = least_privilege_policy(
        sorted(set(action_names)), partition="${AWS::Partition}", account="${AWS::AccountId}"
    )
    wrapped: dict[str, Any] = substituted(document, names=ROLE_PARAMETERS)
    return wrapped


def split_role(role: str) -> tuple[str, str]:
    """Split ``RIPOSTE_RESPONDER_ROLE`` (``path/name``) into an IAM path and a role name."""
    path, _, name = role.strip("/").rpartition("/")
    return (f"/{path}/" if path else "/"), name


def member_template(
    wiring: Wiring, *, policy: dict[str, Any], responder_role: str | None
) -> dict[str, Any]:
    """Return the member stack: the responder role and, optionally, the forwarding rules."""
    path, name = split_role(responder_role or DEFAULT_RESPONDER_ROLE)
    parameters: dict[str, Any] = {
        "RipostePrincipalArn": {
            "Type": "String",
            "Description": "The IAM role or user Riposte runs as (in its own account).",
            "AllowedPattern": r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[\w+=,.@/-]+$",
        },
        "ExternalId": {
            "Type": "String",
            "NoEcho": True,
            "Description": "RIPOSTE_RESPONDER_EXTERNAL_ID: Riposte sends it when assuming the "
            "role, and the role trusts no request without it.",
            "MinLength": 2,
            "MaxLength": 1224,
            "AllowedPattern": r"^[\w+=,.@:/-]+$",
        },
        "ResponderRoleName": {
            "Type": "String",
            "Default": name,
            "Description": "The responder role's name: the last part of RIPOSTE_RESPONDER_ROLE.",
            "AllowedPattern": r"^[\w+=,.@-]{1,64}$",
        },
        "ResponderRolePath": {
            "Type": "String",
            "Default": path,
            "Description": "The responder role's path: what RIPOSTE_RESPONDER_ROLE has before "
            "the name, between slashes (/ for none).",
            "AllowedPattern": r"^/([\w+=,.@-]+/)*$",
        },
    }
    resources: dict[str, Any] = {
        "ResponderRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": ref("ResponderRoleName"),
                "Path": ref("ResponderRolePath"),
                "Description": "Assumed by Riposte to respond to incidents in this account.",
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": {"AWS": ref("RipostePrincipalArn")},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"sts:ExternalId": ref("ExternalId")}},
                    }],
                },
                "Policies": [{"PolicyName": "riposte-responder", "PolicyDocument": policy}],
            },
        },
    }
    conditions: dict[str, Any] = {}
    if wiring.rules:
        parameters[HUB_BUS] = hub_bus_parameter(optional=True)
        conditions = {
            NOT_HUB: is_not_hub(),
            FORWARD: {"Fn::And": [
                {"Fn::Not": [{"Fn::Equals": [ref(HUB_BUS), ""]}]},
                {"Condition": NOT_HUB},
            ]},
        }
        forwarding = forwarding_resources(wiring, condition=FORWARD)
        forwarding["ForwardRole"]["Condition"] = FORWARD  # the role is never the only resource
        resources |= forwarding
    template: dict[str, Any] = {
        "AWSTemplateFormatVersion": TEMPLATE_VERSION,
        "Description": (
            "Riposte member stack: the responder role Riposte assumes in this account "
            "(trusting only RipostePrincipalArn with ExternalId; least privilege for the "
            "playbooks' actions) and, with HubEventBusArn, forwarding of this region's "
            "matching events to Riposte's hub. Deploy it (a StackSet, CAPABILITY_NAMED_IAM) "
            "in one region of every account Riposte acts in, and the region stack in the "
            "others. Generated by `riposte aws template member`: regenerate, do not edit."
        ),
        "Metadata": metadata(wiring, ids=forward_id),
        "Parameters": parameters,
    }
    if conditions:
        template["Conditions"] = conditions
    template["Resources"] = resources
    template["Outputs"] = {
        "ResponderRoleArn": {
            "Description": "The role Riposte assumes here (RIPOSTE_RESPONDER_ROLE names it).",
            "Value": get_att("ResponderRole", "Arn"),
        }
    }
    return template
