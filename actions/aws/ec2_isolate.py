"""Isolate an EC2 instance: keep it (and its evidence) but cut it off from the network and AWS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actions.aws.clients import Client
from actions.aws.ec2_isolate_survey import Isolation, survey_isolation
from actions.aws.ec2_isolation import (
    BEFORE,
    MARK,
    TRACKED,
    restoration,
)
from actions.aws.ec2_lookup import (
    TAG_RUN,
    Change,
    Ec2Change,
    InstancesInput,
    filled,
    undo_base,
    where,
)
from actions.base import ActionContext
from actions.policy import EC2_TAG_WHILE_CREATING, NO_RESOURCE_LEVEL, PASS_ROLE_TO_EC2, Scope
from actions.registry import register


@register
class IsolateInstance(Ec2Change[InstancesInput, Isolation]):
    """Isolate instances: no network, no AWS credentials, no termination, tagged with the run.

    For each instance, only what is not already so: termination protection on, shutdown
    behaviour ``stop`` (a shutdown from inside keeps the evidence), the security groups of every
    network interface replaced by the VPC's isolation group ``riposte-isolation-<vpc-id>``
    (found by name, else created with its default egress rule revoked: no rule at all), the
    instance profile association removed, and the tag ``riposte:isolated=<run>/<step>``.
    Swapping groups does not cut connections the old groups already track (e.g. an attacker's
    open shell); the plan says so.

    Before changing anything it tags the instance with the previous values
    (``riposte:before:<what>``), so a re-execution after a crash still knows what to restore.
    Undo puts back only what it changed and is still as isolation left it: the groups of each
    interface, the profile, both attributes; it removes its tags, and deletes the isolation
    group only if this step created it and no interface uses it any more (the group is shared by
    every isolation in the VPC). Refuses instances on the break-glass list and the instance
    Riposte itself runs on.

    ```yaml
    - id: isolate
      action: aws.ec2.isolate_instance
      with:
        instance_ids: ["i-0123456789abcdef0"]
    ```
    """

    name = "aws.ec2.isolate_instance"
    Input = InstancesInput
    grants = (
        NO_RESOURCE_LEVEL.allow(
            "ec2:DescribeInstances",
            "ec2:DescribeIamInstanceProfileAssociations",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeVpcs",
            "ec2:DescribeNetworkInterfaces",
        ),
        Scope(
            "Ec2IsolateAnyInstanceOfTheAccount",
            "the instances isolated are the alert's, not Riposte's: any instance of the account",
            ("arn:{partition}:ec2:{region}:{account}:instance/*",),
        ).allow(
            "ec2:DescribeInstanceAttribute",
            "ec2:ModifyInstanceAttribute",
            "ec2:DisassociateIamInstanceProfile",
            "ec2:AssociateIamInstanceProfile",
        ),
        Scope(
            "Ec2SwapGroupsOfAnyInterface",
            "an isolated instance's interfaces get the isolation group, and back their own on "
            "undo: any interface and group of the account",
            (
                "arn:{partition}:ec2:{region}:{account}:network-interface/*",
                "arn:{partition}:ec2:{region}:{account}:security-group/*",
                "arn:{partition}:ec2:{region}:{account}:instance/*",
            ),
        ).allow("ec2:ModifyNetworkInterfaceAttribute"),
        Scope(
            "Ec2IsolationGroupInAnyVpc",
            "the isolation group is made in the VPC of the instance isolated: any VPC of the "
            "account",
            ("arn:{partition}:ec2:{region}:{account}:vpc/*",),
        ).allow("ec2:CreateSecurityGroup"),
        Scope(
            "Ec2GroupsOnlyTaggedByRiposte",
            f"a security group is created only carrying {TAG_RUN}",
            ("arn:{partition}:ec2:{region}:{account}:security-group/*",),
            {"Null": {f"aws:RequestTag/{TAG_RUN}": "false"}},
        ).allow("ec2:CreateSecurityGroup"),
        EC2_TAG_WHILE_CREATING.allow("ec2:CreateTags"),
        Scope(
            "Ec2ChangeOnlyGroupsRiposteMade",
            f"only isolation groups (tagged {TAG_RUN}) lose their rules or are deleted",
            ("arn:{partition}:ec2:{region}:{account}:security-group/*",),
            {"Null": {f"aws:ResourceTag/{TAG_RUN}": "false"}},
        ).allow(
            "ec2:RevokeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:DeleteSecurityGroup",
        ),
        Scope(
            "Ec2TagInstancesWithRiposteKeysOnly",
            f"an isolated instance gets (and loses on undo) only riposte: tags ({MARK}, "
            f"{BEFORE}*)",
            ("arn:{partition}:ec2:{region}:{account}:instance/*",),
            {
                "ForAllValues:StringLike": {"aws:TagKeys": "riposte:*"},
                "Null": {"aws:TagKeys": "false"},  # DeleteTags without keys deletes them all
            },
        ).allow("ec2:CreateTags", "ec2:DeleteTags"),
        PASS_ROLE_TO_EC2.allow("iam:PassRole"),  # undo re-associates the profile: passes its role
    )

    def survey(self, ctx: ActionContext, params: InstancesInput, ec2: Client) -> Isolation:
        return survey_isolation(ctx, params, ec2)

    def outcome(
        self,
        ctx: ActionContext,
        params: InstancesInput,
        survey: Isolation,
        made: dict[str, Any],
        ec2: Client,
    ) -> dict[str, Any]:
        place = where(ctx, params)
        changed = [i["instance_id"] for i in survey.instances if i["changed"]]
        output = {
            **place.as_dict(),
            "summary": f"isolated {', '.join(changed)}"
            if changed
            else "nothing to do: every instance is already isolated",
            "warning": TRACKED,
            "instances": survey.instances,
            "isolation_groups": survey.groups,
            "undo": {
                **undo_base(ctx, place),
                "instances": survey.undo_instances,
                "groups_created": [
                    {k: g[k] for k in ("vpc_id", "group_name", "group_id")}
                    for g in survey.groups
                    if g["created_by_this_step"]
                ],
            },
        }
        return dict(filled(output, made))  # the new group's id where the plan had a placeholder

    def restoration(
        self, ec2: Client, undo: Mapping[str, Any]
    ) -> tuple[list[Change], dict[str, Any]]:
        return restoration(ec2, undo)
