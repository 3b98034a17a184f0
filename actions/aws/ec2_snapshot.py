"""Snapshot every EBS volume of an instance, once per run and step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from actions.aws.clients import AwsError, Client
from actions.aws.ec2_lookup import (
    TAG_DEVICE,
    TAG_INSTANCE,
    TAG_RUN,
    TAG_STEP,
    TAG_VOLUME,
    Change,
    Ec2Change,
    InstancesInput,
    Survey,
    carry_out,
    describe,
    ec2_at,
    filled,
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
    volumes,
    where,
    where_of,
)
from actions.base import ActionContext
from actions.policy import EC2_TAG_WHILE_CREATING, NO_RESOURCE_LEVEL, Scope
from actions.registry import register


@dataclass(kw_only=True)
class Snapshots(Survey):
    """Each instance with its volumes and their snapshots (taken earlier or to take)."""

    instances: list[dict[str, Any]] = field(default_factory=list)


@register
class SnapshotInstance(Ec2Change[InstancesInput, Snapshots]):
    """Snapshot every EBS volume attached to the instances, tagged with the run.

    Each snapshot carries the tags ``riposte:run``, ``riposte:step``, ``riposte:instance``,
    ``riposte:volume`` and ``riposte:device`` and a Description naming the instance, so
    ``aws.ec2.relaunch_instances`` can rebuild the instance from them and a second execution of
    the step finds them instead of taking new ones. Snapshots are not waited for: EBS takes
    the point-in-time copy when asked, completion only moves the data. A terminated instance
    has no volume left and is reported as skipped.

    Undo deletes the snapshots this step took (never one it did not tag), except one an AMI
    now uses (e.g. one relaunch registered), which it keeps and names: the snapshots are
    forensic copies of production data, kept only as long as the run is.

    ```yaml
    - id: preserve-evidence
      action: aws.ec2.snapshot_instance
      with:
        instance_ids: ["i-0123456789abcdef0"]
    ```
    """

    name = "aws.ec2.snapshot_instance"
    Input = InstancesInput
    grants = (
        NO_RESOURCE_LEVEL.allow("ec2:DescribeInstances", "ec2:DescribeSnapshots"),
        Scope(
            "Ec2SnapshotAnyVolumeOfTheAccount",
            "the volumes snapshotted are those of the instances a step preserves: any volume "
            "of the account",
            ("arn:{partition}:ec2:{region}:{account}:volume/*",),
        ).allow("ec2:CreateSnapshot"),
        Scope(
            "Ec2SnapshotsOnlyTaggedByRiposte",
            f"a snapshot is created only carrying Riposte's tags ({TAG_RUN}, {TAG_INSTANCE})",
            ("arn:{partition}:ec2:{region}::snapshot/*",),
            {"Null": {f"aws:RequestTag/{TAG_RUN}": "false",
                      f"aws:RequestTag/{TAG_INSTANCE}": "false"}},
        ).allow("ec2:CreateSnapshot"),
        EC2_TAG_WHILE_CREATING.allow("ec2:CreateTags"),  # tags given at creation need it too
        Scope(
            "Ec2DeleteOnlySnapshotsRiposteTook",
            f"undo deletes only snapshots Riposte took (tagged {TAG_INSTANCE} by this action)",
            ("arn:{partition}:ec2:{region}::snapshot/*",),
            {"Null": {f"aws:ResourceTag/{TAG_RUN}": "false",
                      f"aws:ResourceTag/{TAG_INSTANCE}": "false"}},
        ).allow("ec2:DeleteSnapshot"),
    )

    def survey(self, ctx: ActionContext, params: InstancesInput, ec2: Client) -> Snapshots:
        return _survey(ctx, params, ec2)

    def outcome(
        self,
        ctx: ActionContext,
        params: InstancesInput,
        survey: Snapshots,
        made: dict[str, Any],
        ec2: Client,
    ) -> dict[str, Any]:
        place = where(ctx, params)
        instances = filled(survey.instances, made)  # new ids where the plan had placeholders
        taken = [s for i in instances for s in i["snapshots"]]
        created = [s["snapshot_id"] for s in taken if s["created"]]
        found = [s["snapshot_id"] for s in taken if not s["created"]]
        skipped = [i["instance_id"] for i in instances if i.get("skipped")]
        summary = (
            f"took {len(created)} snapshot(s)"
            if created
            else "nothing to do: every volume already has this step's snapshot"
        )
        if found:
            summary += f"; {len(found)} found from an earlier execution of this step"
        if skipped:
            summary += f"; skipped {', '.join(skipped)} (no attached volume)"
        return {
            **place.as_dict(),
            "summary": summary,
            "instances": instances,
            "created": created,
            "already_taken": found,
            "undo": {**undo_base(ctx, place), "snapshots": created + found},
        }

    def restoration(
        self, ec2: Client, undo: Mapping[str, Any]
    ) -> tuple[list[Change], dict[str, Any]]:
        ours, gone = _ours(ec2, undo)
        return [_delete(s) for s in ours], {"already_gone": gone}

    def undo(self, ctx: ActionContext, undo: dict[str, Any]) -> dict[str, Any]:
        # One call at a time: a snapshot an AMI uses now is kept, the others still go.
        ec2 = ec2_at(ctx, where_of(undo))
        changes, report = self.restoration(ec2, undo)
        deleted, kept = [], []
        for change in changes:
            snapshot_id = change.call.params["SnapshotId"]
            try:
                carry_out(ec2, [change])
                deleted.append(snapshot_id)
            except AwsError as error:
                if error.code != "InvalidSnapshot.InUse":
                    raise
                kept.append({"snapshot_id": snapshot_id, "reason": error.message})
        return {"deleted": deleted, "kept": kept, **report}


def _survey(ctx: ActionContext, params: InstancesInput, ec2: Client) -> Snapshots:
    """Each instance's volumes and this step's snapshots of them; the snapshots still to take."""
    ids = target_instances(ctx, params)
    found = describe(ec2, ids)
    require_all(found, ids)
    taken: dict[tuple[str, str], str] = {}
    for snapshot in ec2.every(
        "describe_snapshots",
        "Snapshots",
        OwnerIds=["self"],
        Filters=[
            {"Name": f"tag:{TAG_RUN}", "Values": [ctx.run_id]},
            {"Name": f"tag:{TAG_STEP}", "Values": [ctx.step_id]},
        ],
    ):
        tags = tags_of(snapshot)
        if snapshot.get("State") != "error":
            taken[(tags.get(TAG_INSTANCE, ""), tags.get(TAG_VOLUME, ""))] = snapshot["SnapshotId"]
    survey = Snapshots()
    for instance_id in ids:
        instance = found[instance_id]
        report: dict[str, Any] = {
            "instance_id": instance_id,
            "production": is_production(ctx, instance),
            "state": state_of(instance),
            "snapshots": [],
        }
        attached = volumes(instance)
        if not attached:
            report["skipped"] = "no EBS volume attached (a terminated instance has none left)"
        for volume in attached:
            volume_id, device = volume["volume_id"], volume["device"] or ""
            existing = taken.get((instance_id, volume_id))
            report["snapshots"].append(
                {
                    "volume_id": volume_id,
                    "device": device,
                    "snapshot_id": existing or new_id(f"snapshot of {volume_id}"),
                    "created": existing is None,
                }
            )
            if existing is None:
                survey.changes.append(_create(ctx, instance_id, volume_id, device))
        survey.instances.append(report)
    return survey


def _create(ctx: ActionContext, instance_id: str, volume_id: str, device: str) -> Change:
    tags = step_tags(ctx, **{TAG_INSTANCE: instance_id, TAG_VOLUME: volume_id, TAG_DEVICE: device})
    description = (
        f"Riposte run {ctx.run_id} step {ctx.step_id}: {volume_id} ({device}) of {instance_id}"
    )
    change = Change.ec2(
        "CreateSnapshot",
        f"{volume_id} ({device}) of {instance_id}",
        VolumeId=volume_id,
        Description=description[:255],
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": tag_list(tags)}],
    )
    change.creates, change.answer_key = f"snapshot of {volume_id}", "SnapshotId"
    return change


def _delete(snapshot_id: str) -> Change:
    return Change.ec2("DeleteSnapshot", snapshot_id, SnapshotId=snapshot_id)


def _ours(ec2: Client, undo: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The recorded snapshots that still exist and carry this step's tags; those gone."""
    recorded = list(undo.get("snapshots") or [])
    if not recorded:
        return [], []
    listed = ec2.every(
        "describe_snapshots",
        "Snapshots",
        OwnerIds=["self"],
        Filters=[{"Name": "snapshot-id", "Values": recorded}],
    )
    present = {s["SnapshotId"] for s in listed if made_by(undo["run_id"], undo["step_id"], s)}
    return [s for s in recorded if s in present], [
        s for s in recorded if s not in {x["SnapshotId"] for x in listed}
    ]
