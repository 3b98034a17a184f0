"""How a replacement instance is made like its original, waited for, and removed on undo."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from actions.aws import ec2_recovery
from actions.aws.clients import Client
from actions.aws.ec2_isolation import BEFORE, PROFILE
from actions.aws.ec2_lookup import (
    GONE_STATES,
    TAG_REPLACES,
    Change,
    describe,
    idempotency_key,
    instance_profile,
    interfaces,
    made_by,
    state_of,
    step_tags,
    tag_list,
    tags_of,
)
from actions.base import ActionContext, ActionError, ActionInput


class Override(ActionInput):
    """What to launch a replacement with where the terminated instance no longer shows it."""

    instance_type: str | None = Field(
        default=None, description="Instance type (e.g. m5.large); default: the original's."
    )
    subnet_id: str | None = Field(
        default=None, description="Subnet to launch into (subnet-…); default: the original's."
    )
    security_group_ids: list[str] | None = Field(
        default=None,
        description="Security groups (sg-…) of the primary interface; default: the original's "
        "(those it had before Riposte isolated it, if it did).",
    )
    key_name: str | None = Field(
        default=None, description="EC2 key pair name; default: the original's, if it had one."
    )
    instance_profile_arn: str | None = Field(
        default=None,
        description="ARN of the instance profile to attach; default: the original's, if AWS "
        "still shows it (it drops it on termination) or isolation recorded it; else none.",
    )


def launch_settings(
    instance: Mapping[str, Any], override: Override | None
) -> tuple[dict[str, Any], list[str], list[str]]:
    """RunInstances arguments copied from the original; what is missing; what to know."""
    wanted = override or Override()
    nics = interfaces(instance)
    primary = nics[0] if nics else {}
    # An instance Riposte isolated before it was terminated carries what isolation replaced.
    before = {k[len(BEFORE) :]: v for k, v in tags_of(instance).items() if k.startswith(BEFORE)}
    notes = []
    groups = wanted.security_group_ids
    if not groups and primary.get("network_interface_id") in before:
        groups = before[primary["network_interface_id"]].split()
        notes.append("security groups as they were before Riposte isolated the original")
    groups = groups or [g["group_id"] for g in primary.get("security_groups", [])]
    groups = groups or [g["GroupId"] for g in instance.get("SecurityGroups") or []]
    values = {
        "InstanceType": wanted.instance_type or instance.get("InstanceType"),
        "SubnetId": wanted.subnet_id or primary.get("subnet_id") or instance.get("SubnetId"),
        "SecurityGroupIds": groups,
    }
    missing = [
        shown
        for key, shown in (
            ("InstanceType", "instance type"),
            ("SubnetId", "subnet"),
            ("SecurityGroupIds", "security groups"),
        )
        if not values[key]
    ]
    key_name = wanted.key_name or instance.get("KeyName")
    if key_name:
        values["KeyName"] = key_name
    profile = wanted.instance_profile_arn or instance_profile(instance) or before.get(PROFILE)
    if profile:
        values["IamInstanceProfile"] = {"Arn": profile}
    else:
        notes.append(
            "the terminated instance shows no instance profile (AWS drops the association on "
            "termination): the replacement has none unless overrides give instance_profile_arn"
        )
    notes += [
        f"not recreated: {n['network_interface_id']} (device {n['device_index']})" for n in nics[1:]
    ]
    return values, missing, notes


def image_name(ctx: ActionContext, instance_id: str) -> str:
    """A deterministic AMI name from run, step and instance (AMI names allow few characters)."""
    name = re.sub(r"[^A-Za-z0-9()\[\]./\-'@_ ]", "-", f"riposte-{ctx.run_id}-{ctx.step_id}")
    if len(name) + len(instance_id) + 1 > 128:
        name = idempotency_key(ctx, instance_id)
    return f"{name}-{instance_id}"


def registration(
    ctx: ActionContext, instance: Mapping[str, Any], point: ec2_recovery.Point, name: str
) -> Change:
    instance_id = instance["InstanceId"]
    snapshot_ids = [s["snapshot_id"] for s in point.snapshots]
    params: dict[str, Any] = {
        "Name": name,
        "Description": f"Riposte run {ctx.run_id}: {instance_id} rebuilt from "
        f"{', '.join(snapshot_ids)}"[:255],
        "Architecture": instance.get("Architecture") or "x86_64",
        "RootDeviceName": instance.get("RootDeviceName") or "/dev/xvda",
        "VirtualizationType": instance.get("VirtualizationType") or "hvm",
        "BlockDeviceMappings": [
            {
                "DeviceName": s["device"],
                "Ebs": {"SnapshotId": s["snapshot_id"], "DeleteOnTermination": True},
            }
            for s in point.snapshots
        ],
        "TagSpecifications": [
            {
                "ResourceType": "image",
                "Tags": tag_list(step_tags(ctx, **{TAG_REPLACES: instance_id})),
            }
        ],
    }
    if instance.get("EnaSupport"):
        params["EnaSupport"] = True
    change = Change.ec2("RegisterImage", f"image to relaunch {instance_id}", **params)
    change.creates, change.answer_key = name, "ImageId"
    return change


def wait_running(ctx: ActionContext, ec2: Client, ids: list[str]) -> dict[str, str]:
    """Wait until every instance runs; fail if one ends, or when the wait is over."""
    states: dict[str, str] = {}
    pending = set(ids)
    deadline = time.monotonic() + ctx.settings.ec2_launch_wait_seconds
    while pending:
        # Filtered, so an instance EC2 does not show yet just after its launch stays pending.
        for instance_id, instance in describe(ec2, sorted(pending)).items():
            state = states[instance_id] = state_of(instance)
            if state == "running":
                pending.discard(instance_id)
            elif state in GONE_STATES:
                reason = (instance.get("StateReason") or {}).get("Message") or "no reason given"
                raise ActionError(
                    "ReplacementFailed",
                    f"replacement {instance_id} went {state}: {reason}",
                    retryable=False,
                )
        remaining = deadline - time.monotonic()
        if not pending:
            break
        if remaining <= 0:
            raise ActionError(
                "ReplacementNotRunning",
                f"not running after {ctx.settings.ec2_launch_wait_seconds:g}s: "
                + ", ".join(f"{i} ({states.get(i, 'not shown yet')})" for i in sorted(pending))
                + "; a retry finds these replacements and waits again",
            )
        if ctx.cancelled.wait(min(ctx.settings.ec2_poll_seconds, remaining)):
            raise ActionError("Cancelled", "stopped waiting for the replacements", retryable=False)
    return states


def removal(ec2: Client, undo: Mapping[str, Any]) -> tuple[list[Change], dict[str, Any]]:
    """Terminate the replacements this step launched; deregister the images it registered."""
    records = list(undo.get("instances") or [])
    found = describe(ec2, [r["new"] for r in records])
    terminate, gone, volumes_left = [], [], []
    for record in records:
        instance = found.get(record["new"])
        if (
            instance is None
            or state_of(instance) in GONE_STATES
            or not made_by(undo["run_id"], undo["step_id"], instance)
            or tags_of(instance).get(TAG_REPLACES) != record["old"]
        ):
            gone.append(record["new"])
            continue
        terminate.append(record["new"])
        volumes_left += [
            m["Ebs"]["VolumeId"]
            for m in instance.get("BlockDeviceMappings") or []
            if (m.get("Ebs") or {}).get("DeleteOnTermination") is False
        ]
    changes = []
    if terminate:
        changes.append(
            Change.ec2("TerminateInstances", ", ".join(terminate), InstanceIds=terminate)
        )
    deregistered = []
    for image in undo.get("images") or []:
        listed = ec2.describe_images(
            Owners=["self"], Filters=[{"Name": "image-id", "Values": [image["image_id"]]}]
        )["Images"]
        if listed and listed[0].get("Name") == image["name"]:
            changes.append(Change.ec2("DeregisterImage", image["name"], ImageId=image["image_id"]))
            deregistered.append(image["image_id"])
    report: dict[str, Any] = {
        "terminated": terminate,
        "already_gone": gone,
        "images_deregistered": deregistered,
        "volumes_left": volumes_left,
    }
    if volumes_left:
        report["note"] = "these volumes were launched with DeleteOnTermination false and remain"
    return changes, report
