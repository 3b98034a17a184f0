"""What isolating instances finds and would do: the isolation's survey.

A protected instance fails the step; a gone one is skipped; any other gets the calls that cut
it off (its interfaces moved to its VPC's isolation group, made once per VPC; termination
protection on; shutdown behaviour stop; its instance profile detached), with the undo record
of what they change. ``aws.ec2.isolate_instance`` (``ec2_isolate.py``) makes the calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from actions.aws.arns import partition_of
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
    set_attribute,
)
from actions.aws.ec2_lookup import (
    GONE_STATES,
    Change,
    InstancesInput,
    Survey,
    describe,
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
    where,
)
from actions.aws.guards import refuse_protected
from actions.base import ActionContext, ActionError


@dataclass(kw_only=True)
class Isolation(Survey):
    """The instances (as the output reports them), the VPCs' groups, and the undo records."""

    instances: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    undo_instances: list[dict[str, Any]] = field(default_factory=list)


def survey_isolation(ctx: ActionContext, params: InstancesInput, ec2: Client) -> Isolation:
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
    partition = partition_of(own)
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
