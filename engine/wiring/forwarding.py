"""The region stack: the hub's rules in every other region and account, forwarding to the hub.

Most of what Riposte needs is regional and per account: CloudTrail API calls reach only the
default bus of the account and region they were made in, and so do GuardDuty and Security Hub
findings (unless an aggregation region collects them). So every other region of the hub account,
and every region of every member account, needs the same rules. Each forwards what matches to
the hub account's default event bus in the hub region (``HubEventBusArn``), where the hub
stack's identical rules pass it on to Riposte. This is the cross-account, cross-region pattern
AWS recommends, rather than one full stack per region: one API destination, one ingest token
(in one Secrets Manager secret, rotated in one place), one dead-letter queue to watch, one
public URL to allow, and the event keeps its own account and region when forwarded, so Riposte
acts where it happened. A forwarding rule in the hub's own account and region would send the
bus to itself: the condition ``IsNotHub`` leaves the rules out there, so a StackSet may target
every region.

A finding that reaches the hub twice (through a delegated administrator and from its member) is
one alert: Riposte deduplicates by the finding's Id and update time.
"""

from __future__ import annotations

from typing import Any

from engine.wiring.hub import BUS_ARN, events_trust, metadata
from engine.wiring.routing import Rule, Wiring
from engine.wiring.template import TEMPLATE_VERSION, get_att, logical_id, ref

HUB_BUS_PATTERN = r"^arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/default$"
HUB_BUS = "HubEventBusArn"
NOT_HUB = "IsNotHub"


def hub_bus_parameter(*, optional: bool) -> dict[str, Any]:
    """The ``HubEventBusArn`` parameter; ``optional``: empty means "forward nothing"."""
    pattern = HUB_BUS_PATTERN.replace("^", "^(|", 1).replace("$", ")$") if optional else (
        HUB_BUS_PATTERN
    )
    parameter: dict[str, Any] = {
        "Type": "String",
        "Description": "The hub stack's EventBusArn output: the default event bus of Riposte's "
        "hub account in the hub region" + (" (empty: forward nothing)." if optional else "."),
        "AllowedPattern": pattern,
        "ConstraintDescription": "an event bus ARN ending in event-bus/default",
    }
    if optional:
        parameter["Default"] = ""
    return parameter


def is_not_hub() -> dict[str, Any]:
    """True unless this stack runs in the hub's own account and region."""
    return {"Fn::Not": [{"Fn::Equals": [ref(HUB_BUS), BUS_ARN]}]}


def forwarding_resources(wiring: Wiring, *, condition: str) -> dict[str, Any]:
    """The forwarding role and one rule per pattern; the rules only under ``condition``."""
    resources: dict[str, Any] = {
        # Unconditional, so the stack is never empty; it can only put events on the hub bus.
        "ForwardRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "Assumed by EventBridge to forward events to Riposte's hub bus.",
                "AssumeRolePolicyDocument": events_trust(),
                "Policies": [{
                    "PolicyName": "forward-to-riposte-hub",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Action": "events:PutEvents",
                            "Resource": ref(HUB_BUS),
                        }],
                    },
                }],
            },
        },
    }
    for rule in wiring.rules:
        resources[forward_id(rule)] = {
            "Type": "AWS::Events::Rule",
            "Condition": condition,
            "Properties": {
                "Description": rule.description,
                "EventPattern": rule.pattern,
                "State": "ENABLED",
                "Targets": [{
                    "Id": "riposte-hub",
                    "Arn": ref(HUB_BUS),
                    "RoleArn": get_att("ForwardRole", "Arn"),
                }],
            },
        }
    return resources


def forward_id(rule: Rule) -> str:
    """The forwarding rule's logical id (the hub rule's, prefixed ``Forward``)."""
    return logical_id("Forward", rule.playbooks[0], rule.digest)


def region_template(wiring: Wiring) -> dict[str, Any]:
    """Return the region stack for ``wiring`` (raises ValueError if it has no rule)."""
    if not wiring.rules:
        raise ValueError("no playbook needs EventBridge events: no region stack to make")
    return {
        "AWSTemplateFormatVersion": TEMPLATE_VERSION,
        "Description": (
            f"Riposte region stack: {len(wiring.rules)} EventBridge rule(s) derived from the "
            "playbooks' triggers forward this account's and region's matching events to "
            "Riposte's hub bus (HubEventBusArn), where the hub stack sends them on. Deploy it "
            "(a StackSet) to every region of the hub account and every region of every "
            "member account: events reach only their own account's and region's default bus, "
            "and forwarding to one hub keeps one API destination, one token and one "
            "dead-letter queue. Left out where it would forward the hub bus to itself. "
            "Generated by `riposte aws template region`: regenerate, do not edit."
        ),
        "Metadata": metadata(wiring, ids=forward_id),
        "Parameters": {HUB_BUS: hub_bus_parameter(optional=False)},
        "Conditions": {NOT_HUB: is_not_hub()},
        "Resources": forwarding_resources(wiring, condition=NOT_HUB),
        "Outputs": {
            "ForwardRoleArn": {
                "Description": "The role EventBridge forwards with.",
                "Value": get_att("ForwardRole", "Arn"),
            }
        },
    }
