"""What isolating an instance changes, and how an undo puts it back.

Isolation tags the instance, before changing it, with ``riposte:isolated=<run>/<step>`` and one
``riposte:before:<what>`` tag per value it is about to change (``DisableApiTermination``,
``InstanceInitiatedShutdownBehavior``, ``IamInstanceProfile``, ``<eni-id>`` = its groups), so
the values to restore survive a crash that loses the step's output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actions.aws.clients import Client
from actions.aws.ec2_lookup import (
    Change,
    describe,
    interfaces,
    made_by,
    state_of,
    tags_of,
)

GROUP_PREFIX = "riposte-isolation-"
MARK = "riposte:isolated"  # value: "<run>/<step>" of the isolation
BEFORE = "riposte:before:"  # riposte:before:<what> = the value before isolation
TERMINATION = "DisableApiTermination"
SHUTDOWN = "InstanceInitiatedShutdownBehavior"
PROFILE = "IamInstanceProfile"
TRACKED = "connections already open stay open: security groups track them until they end"


def profile_associations(ec2: Client, instance_id: str) -> list[dict[str, Any]]:
    """The instance's current instance-profile associations."""
    return [
        a
        for a in ec2.every(
            "describe_iam_instance_profile_associations",
            "IamInstanceProfileAssociations",
            Filters=[{"Name": "instance-id", "Values": [instance_id]}],
        )
        if a.get("State") in ("associated", "associating")
    ]


def attribute(ec2: Client, instance_id: str, name: str) -> Any:
    key = name[0].lower() + name[1:]
    return ec2.describe_instance_attribute(InstanceId=instance_id, Attribute=key)[name]["Value"]


def set_attribute(instance_id: str, name: str, value: Any) -> Change:
    if name == SHUTDOWN:
        # AWS takes both forms; moto implements only this one for the shutdown behaviour.
        params: dict[str, Any] = {"Attribute": "instanceInitiatedShutdownBehavior", "Value": value}
    else:
        params = {name: {"Value": value}}
    return Change.ec2("ModifyInstanceAttribute", instance_id, InstanceId=instance_id, **params)


def restoration(ec2: Client, undo: Mapping[str, Any]) -> tuple[list[Change], dict[str, Any]]:
    """The calls that put back what isolation changed and is still as isolation left it."""
    records = list(undo.get("instances") or [])
    found = describe(ec2, [r["instance_id"] for r in records])
    changes: list[Change] = []
    report: dict[str, Any] = {
        "restored": {},
        "left_as_is": {},
        "groups_deleted": [],
        "groups_kept": [],
    }
    released: set[str] = set()
    for record in records:
        instance_id = record["instance_id"]
        instance = found.get(instance_id)
        restored = report["restored"].setdefault(instance_id, [])
        left = report["left_as_is"].setdefault(instance_id, [])
        if instance is None or state_of(instance) == "terminated":
            left.append("the instance is gone")
            continue
        groups = {
            n["network_interface_id"]: [g["group_id"] for g in n["security_groups"]]
            for n in interfaces(instance)
        }
        for eni, nic in record["interfaces"].items():
            if groups.get(eni) == [nic["isolation_group"]]:
                changes.append(
                    Change.ec2(
                        "ModifyNetworkInterfaceAttribute",
                        f"{eni} of {instance_id}",
                        NetworkInterfaceId=eni,
                        Groups=nic["previous"],
                    )
                )
                restored.append(f"{eni}: {' '.join(nic['previous'])}")
                released.add(eni)
            else:
                left.append(f"{eni}: no longer only in {nic['isolation_group']}")
        if PROFILE in record:
            associated = profile_associations(ec2, instance_id)
            if associated:
                left.append("instance profile: another one is associated now")
            else:
                changes.append(
                    Change.ec2(
                        "AssociateIamInstanceProfile",
                        instance_id,
                        IamInstanceProfile={"Arn": record[PROFILE]},
                        InstanceId=instance_id,
                    )
                )
                restored.append(f"instance profile {record[PROFILE]}")
        for name, isolated in ((TERMINATION, True), (SHUTDOWN, "stop")):
            if name not in record:
                continue
            if attribute(ec2, instance_id, name) == isolated:
                changes.append(set_attribute(instance_id, name, record[name]))
                restored.append(f"{name} {str(record[name]).lower()}")
            else:
                left.append(f"{name}: changed since isolation")
        present = [k for k in record.get("tags") or [] if k in tags_of(instance)]
        if present:
            changes.append(
                Change.ec2(
                    "DeleteTags",
                    instance_id,
                    Resources=[instance_id],
                    Tags=[{"Key": k} for k in present],
                )
            )
    for group in undo.get("groups_created") or []:
        group_id = group["group_id"]
        users = {
            n["NetworkInterfaceId"]
            for n in ec2.every(
                "describe_network_interfaces",
                "NetworkInterfaces",
                Filters=[{"Name": "group-id", "Values": [group_id]}],
            )
        } - released
        listed = ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [group_id]}])[
            "SecurityGroups"
        ]
        if not listed or not made_by(undo["run_id"], undo["step_id"], listed[0]):
            continue
        if users:
            report["groups_kept"].append({"group_id": group_id, "used_by": sorted(users)})
            continue
        delete = Change.ec2("DeleteSecurityGroup", group_id, GroupId=group_id)
        delete.settling, delete.settling_codes = True, ("DependencyViolation",)
        changes.append(delete)
        report["groups_deleted"].append(group_id)
    return changes, report
