"""Describe EC2 instances for a responder: what they are and what they can be rebuilt from."""

from __future__ import annotations

from typing import Any

from actions.aws import ec2_recovery
from actions.aws.ec2_lookup import (
    InstancesInput,
    describe,
    describe_cache_key,
    instance_profile,
    interfaces,
    is_production,
    iso,
    state_of,
    tags_of,
    target_instances,
    volumes,
    where,
)
from actions.aws.target import client
from actions.base import Action, ActionContext, ActionError
from actions.policy import NO_RESOURCE_LEVEL
from actions.registry import register


@register
class DescribeInstances(Action[InstancesInput]):
    """Describe instances: state, tags, production or not, network, profile, volumes, backups.

    For each instance: state (and why, e.g. "User initiated" for a termination), launch time,
    tags, whether it is production (``RIPOSTE_PRODUCTION_TAGS`` / ``_INSTANCES``), type, key,
    security groups per network interface, instance profile, IMDSv2 or not, volumes, the AMI it
    was launched from, and the AMIs and snapshots that exist for it, newest first (how they are
    matched: ``actions/aws/ec2_recovery.py``). Terminated instances stay describable for about
    an hour and are described like the others; an id AWS does not show is listed in
    ``not_found`` (an error only when none is found). Results are cached for the rest of the run.

    ```yaml
    - id: describe-terminated
      action: aws.ec2.describe_instances
      with:
        instance_ids: ["{{ alert.resources[0].id }}"]
    ```
    """

    name = "aws.ec2.describe_instances"
    Input = InstancesInput
    grants = (
        NO_RESOURCE_LEVEL.allow(
            "ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeSnapshots"
        ),
    )

    def run(self, ctx: ActionContext, params: InstancesInput) -> dict[str, Any]:
        ids = target_instances(ctx, params)
        place = where(ctx, params)
        described = {
            i: ctx.cache[k] for i in ids if (k := describe_cache_key(place, i)) in ctx.cache
        }
        wanted = [i for i in ids if i not in described]
        if wanted:
            ec2 = client(ctx, params, "ec2")
            raw = describe(ec2, wanted)
            backups = ec2_recovery.Backups.read(ec2, raw.values())
            launched_from = _images_by_id(ec2, {i.get("ImageId") for i in raw.values()})
            for instance_id, instance in raw.items():
                entry = _entry(ctx, instance, launched_from)
                entry.update(ec2_recovery.find(instance, backups).as_dict())
                ctx.cache[describe_cache_key(place, instance_id)] = entry
                described[instance_id] = entry
        not_found = [i for i in ids if i not in described]
        if not described:
            raise ActionError(
                "InstanceNotFound",
                f"no such instance (or terminated too long ago to be described): "
                f"{', '.join(not_found)}",
                retryable=False,
            )
        instances = [described[i] for i in ids if i in described]
        return {
            **place.as_dict(),
            "instances": instances,
            "not_found": not_found,
            "production": [i["instance_id"] for i in instances if i["production"]],
            "terminated": [i["instance_id"] for i in instances if i["state"] == "terminated"],
        }


def _images_by_id(ec2: Any, image_ids: set[str | None]) -> dict[str, dict[str, Any]]:
    wanted = sorted(i for i in image_ids if i)
    if not wanted:
        return {}
    # A filter, not ImageIds: a deregistered AMI is then absent instead of failing the call.
    wanted_filter = [{"Name": "image-id", "Values": wanted}]
    listed = ec2.every("describe_images", "Images", Filters=wanted_filter)
    return {image["ImageId"]: image for image in listed}


def _entry(
    ctx: ActionContext, instance: dict[str, Any], launched_from: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    image_id = instance.get("ImageId")
    image = launched_from.get(image_id or "")
    return {
        "instance_id": instance["InstanceId"],
        "state": state_of(instance),
        "state_reason": instance.get("StateTransitionReason") or None,
        "launch_time": iso(instance.get("LaunchTime")),
        "production": is_production(ctx, instance),
        "tags": tags_of(instance),
        "instance_type": instance.get("InstanceType"),
        "availability_zone": (instance.get("Placement") or {}).get("AvailabilityZone"),
        "vpc_id": instance.get("VpcId"),
        "subnet_id": instance.get("SubnetId"),
        "private_ip": instance.get("PrivateIpAddress"),
        "public_ip": instance.get("PublicIpAddress"),
        "key_name": instance.get("KeyName"),
        "instance_profile": instance_profile(instance),
        "imdsv2_required": (instance.get("MetadataOptions") or {}).get("HttpTokens") == "required",
        "network_interfaces": interfaces(instance),
        "security_groups": [
            {"group_id": g["GroupId"], "group_name": g.get("GroupName")}
            for g in instance.get("SecurityGroups") or []
        ],
        "volumes": volumes(instance),
        "root_device_name": instance.get("RootDeviceName"),
        "launched_from": {
            "image_id": image_id,
            "found": image is not None,
            "name": (image or {}).get("Name"),
            "owner_id": (image or {}).get("OwnerId"),
            "created": iso((image or {}).get("CreationDate")),
            "state": (image or {}).get("State"),
        },
    }
