"""Isolate an EC2 instance: keep it (and its evidence) but cut it off from the network and AWS."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from actions.aws.clients import Client
from actions.aws.ec2_isolation import (
    BEFORE,
    GROUP_PREFIX,
    MARK,
    PROFILE,
    SHUTDOWN,
    TERMINATION,
    TRACKED,
    attribute,
    profile_associations,
    restoration,
    set_attribute,
)
from actions.aws.ec2_lookup import (
    GONE_STATES,
    TAG_RUN,
    Change,
    Ec2Change,
    InstancesInput,
    Survey,
    describe,
    filled,
    interfaces,
    is_production,
    made_by,
    new_id,
    require_all,
    state_of,
    step_tags,
    tag_list,
    tags_of,
    target_instances,
    undo_base,
    where,
)
from actions.aws.guards import refuse_protected
from actions.base import ActionContext, ActionError
from actions.policy import EC2_TAG_WHILE_CREATING, NO_RESOURCE_LEVEL, PASS_ROLE_TO_EC2, Scope
from actions.registry import register


@dataclass(kw_only=True)
class Isolation(Survey):
    """The instances (as the output reports them), the VPCs' groups, and the undo records."""

    instances: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    undo_instances: list[dict[str, Any]] = field(default_factory=list)


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
        return _survey(ctx, params, ec2)

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


def _survey(ctx: ActionContext, params: InstancesInput, ec2: Client) -> Isolation:
    """Read every instance and its VPCs' isolation groups; list the changes still to make."""
    ids = target_instances(ctx, params)
    found = describe(ec2, ids)
    require_all(found, ids)
    survey = Isolation()
    live = {i: found[i] for i in ids if state_of(found[i]) not in GONE_STATES}
    for instance in live.values():
        _refuse(ctx, instance, where(ctx, params).region)
    group_of: dict[str, str] = {}  # vpc -> isolation group id (or its placeholder)
    for vpc_id in sorted({n["vpc_id"] for i in live.values() for n in interfaces(i)}):
        group_of[vpc_id] = _isolation_group(ctx, ec2, vpc_id, survey)
    for instance_id in ids:
        instance = found[instance_id]
        report = {
            "instance_id": instance_id,
            "production": is_production(ctx, instance),
            "state": state_of(instance),
            "changed": [],
            "already": [],
        }
        survey.instances.append(report)
        if instance_id not in live:
            report["skipped"] = f"{report['state']}: nothing left to isolate"
            continue
        record = _isolate(ctx, ec2, instance, group_of, report, survey.changes)
        if record is not None:
            survey.undo_instances.append(record)
    return survey


def _refuse(ctx: ActionContext, instance: Mapping[str, Any], region: str) -> None:
    instance_id = instance["InstanceId"]
    own = ctx.aws.identity()["Arn"]
    partition = own.split(":")[1]
    arn = f"arn:{partition}:ec2:{region}:{instance.get('OwnerId')}:instance/{instance_id}"
    refuse_protected(ctx, kind="instance", name=instance_id, arn=arn)
    # An instance profile's session is named after its instance: …:assumed-role/Role/i-…
    if ":assumed-role/" in own and own.rsplit("/", 1)[-1] == instance_id:
        raise ActionError(
            "ProtectedPrincipal",
            f"refusing to act on instance {instance_id!r}: it is the instance Riposte runs on",
            retryable=False,
        )


def _isolation_group(ctx: ActionContext, ec2: Client, vpc_id: str, survey: Isolation) -> str:
    """The id of the VPC's isolation group (a placeholder if it must be created)."""
    name = f"{GROUP_PREFIX}{vpc_id}"
    listed = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [name]}, {"Name": "vpc-id", "Values": [vpc_id]}]
    )["SecurityGroups"]
    if listed:
        group = listed[0]
        group_id = str(group["GroupId"])
        for operation, rules in (
            ("RevokeSecurityGroupEgress", group.get("IpPermissionsEgress")),
            ("RevokeSecurityGroupIngress", group.get("IpPermissions")),
        ):
            if rules:  # e.g. a crash between creating the group and revoking its default
                survey.changes.append(
                    Change.ec2(operation, group_id, GroupId=group_id, IpPermissions=_rules(rules))
                )
        survey.groups.append(
            {
                "vpc_id": vpc_id,
                "group_name": name,
                "group_id": group_id,
                "created": False,
                "created_by_this_step": made_by(ctx.run_id, ctx.step_id, group),
            }
        )
        return group_id
    vpc = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
    placeholder = new_id(name)
    create = Change.ec2(
        "CreateSecurityGroup",
        vpc_id,
        GroupName=name,
        Description="Riposte isolation: no inbound, no outbound",
        VpcId=vpc_id,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": tag_list(step_tags(ctx, Name=name))}
        ],
    )
    create.creates, create.answer_key = name, "GroupId"
    default_egress: list[dict[str, Any]] = [
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    ]
    if any(
        a.get("Ipv6CidrBlockState", {}).get("State") == "associated"
        for a in vpc.get("Ipv6CidrBlockAssociationSet") or []
    ):
        default_egress.append({"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]})
    revoke = Change.ec2(
        "RevokeSecurityGroupEgress", placeholder, GroupId=placeholder, IpPermissions=default_egress
    )
    revoke.settling = True
    survey.changes += [create, revoke]
    survey.groups.append(
        {
            "vpc_id": vpc_id,
            "group_name": name,
            "group_id": placeholder,
            "created": True,
            "created_by_this_step": True,
        }
    )
    return placeholder


def _rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rules as Describe shows them, reduced to what a Revoke call accepts."""
    keys = ("IpProtocol", "FromPort", "ToPort", "IpRanges", "Ipv6Ranges", "PrefixListIds")
    reduced = []
    for rule in rules:
        kept = {k: rule[k] for k in keys if rule.get(k) not in (None, [])}
        pairs = [
            {"GroupId": p["GroupId"]} for p in rule.get("UserIdGroupPairs") or [] if "GroupId" in p
        ]
        reduced.append({**kept, **({"UserIdGroupPairs": pairs} if pairs else {})})
    return reduced


def _isolate(
    ctx: ActionContext,
    ec2: Client,
    instance: Mapping[str, Any],
    group_of: Mapping[str, str],
    report: dict[str, Any],
    changes: list[Change],
) -> dict[str, Any] | None:
    """Append the changes one instance needs; return its undo record (None: nothing of ours)."""
    instance_id = instance["InstanceId"]
    tags = tags_of(instance)
    mark = f"{ctx.run_id}/{ctx.step_id}"
    earlier = tags if tags.get(MARK) == mark else {}  # an earlier execution of this step
    before: dict[str, str] = {}
    record: dict[str, Any] = {"instance_id": instance_id, "interfaces": {}}
    mine: list[Change] = []

    protected = attribute(ec2, instance_id, TERMINATION)
    shutdown = attribute(ec2, instance_id, SHUTDOWN)
    for name, current, wanted, shown in (
        (TERMINATION, protected, True, "termination protection on"),
        (SHUTDOWN, shutdown, "stop", "shutdown behaviour stop"),
    ):
        if current != wanted:
            before[BEFORE + name] = str(current).lower()
            record[name] = current
            mine.append(set_attribute(instance_id, name, wanted))
            report["changed"].append(shown)
        else:
            report["already"].append(shown)
            if BEFORE + name in earlier:
                text = earlier[BEFORE + name]
                record[name] = text == "true" if name == TERMINATION else text
    for nic in interfaces(instance):
        eni, group_id = nic["network_interface_id"], group_of[nic["vpc_id"]]
        current = [g["group_id"] for g in nic["security_groups"]]
        if current != [group_id]:
            before[BEFORE + eni] = " ".join(current)
            record["interfaces"][eni] = {"previous": current, "isolation_group": group_id}
            swap = Change.ec2(
                "ModifyNetworkInterfaceAttribute",
                f"{eni} of {instance_id} ({TRACKED})",
                NetworkInterfaceId=eni,
                Groups=[group_id],
            )
            swap.settling = group_id.startswith("<")
            mine.append(swap)
            report["changed"].append(f"{eni}: {' '.join(current) or 'no group'} -> {group_id}")
        else:
            report["already"].append(f"{eni}: only {group_id}")
            if BEFORE + eni in earlier:
                record["interfaces"][eni] = {
                    "previous": earlier[BEFORE + eni].split(),
                    "isolation_group": group_id,
                }
    associations = profile_associations(ec2, instance_id)
    for association in associations:
        arn = association["IamInstanceProfile"]["Arn"]
        before[BEFORE + PROFILE] = arn
        record[PROFILE] = arn
        mine.append(
            Change.ec2(
                "DisassociateIamInstanceProfile",
                instance_id,
                AssociationId=association["AssociationId"],
            )
        )
        report["changed"].append(f"instance profile {arn} detached")
    if not associations:
        report["already"].append("no instance profile")
        if BEFORE + PROFILE in earlier:
            record[PROFILE] = earlier[BEFORE + PROFILE]
    if mine:
        # The previous values go on the instance first: a crash after this still leaves them.
        written = {MARK: mark, **before}
        changes.append(
            Change.ec2("CreateTags", instance_id, Resources=[instance_id], Tags=tag_list(written))
        )
        changes.extend(mine)
        report["changed"].append(f"tagged {MARK}={mark}")
    record["tags"] = sorted({MARK, *before} | ({k for k in earlier if k.startswith(BEFORE)}))
    if not mine and not earlier:
        return None
    return record
