"""Recovery points of an instance: the AMIs and EBS snapshots it could be rebuilt from.

What counts as the instance's (every rule says which one matched, in ``matched_by``):

- an AMI owned by the account whose ``SourceInstanceId`` is the instance (AWS sets it on
  ``CreateImage``), or tagged ``riposte:instance=<id>``, or one of whose block-device snapshots
  is one of the instance's snapshots below;
- a snapshot owned by the account tagged ``riposte:instance=<id>`` (``aws.ec2.snapshot_instance``
  writes it), or whose Description starts ``Created by CreateImage(<id>)`` (AWS writes it on
  the snapshots of an AMI), or whose ``VolumeId`` is one of the volumes the description still
  lists (a terminated instance lists none, so this only finds backups of a live instance).

Snapshots group into *sets* an image can be registered from: one Riposte snapshot step, or the
snapshots of one ``CreateImage`` whose AMI is no longer available, or, for the remaining
snapshots of the instance's volumes, the newest of each volume.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from actions.aws.clients import Client
from actions.aws.ec2_lookup import (
    TAG_DEVICE,
    TAG_INSTANCE,
    TAG_RUN,
    TAG_STEP,
    iso,
    moment,
    tags_of,
    volumes,
)

CREATE_IMAGE_SOURCE = re.compile(
    r"Created by CreateImage\((i-[0-9a-zA-Z]+)\) for (ami-[0-9a-zA-Z]+)"
)


# Values per filter in one Describe call (EC2 takes up to 200; fewer keeps requests small).
_FILTER_VALUES = 100


@dataclass
class Backups:
    """The account's AMIs and the snapshots that may be of some instances, read once per step.

    Three filtered ``DescribeSnapshots`` queries for all the instances together (their values
    in chunks), not three per instance: 22 terminated instances cost 3 calls, not 66, at the
    moment AWS is most likely to throttle an account. ``find`` matches per instance in memory.
    """

    images: list[dict[str, Any]] = field(default_factory=list)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def read(cls, ec2: Client, instances: Iterable[Mapping[str, Any]]) -> Backups:
        """The AMIs the account owns and the snapshots matching any of ``instances``."""
        listed = list(instances)
        if not listed:
            return cls()
        ids = sorted({i["InstanceId"] for i in listed})
        volume_ids = sorted({v["volume_id"] for i in listed for v in volumes(i)})
        backups = cls(images=ec2.every("describe_images", "Images", Owners=["self"]))
        for name, values in (
            (f"tag:{TAG_INSTANCE}", ids),
            ("description", [f"Created by CreateImage({i})*" for i in ids]),
            ("volume-id", volume_ids),
        ):
            for start in range(0, len(values), _FILTER_VALUES):
                chunk = values[start : start + _FILTER_VALUES]
                for snapshot in ec2.every(
                    "describe_snapshots", "Snapshots", OwnerIds=["self"],
                    Filters=[{"Name": name, "Values": chunk}],
                ):
                    backups.snapshots.setdefault(snapshot["SnapshotId"], snapshot)
        return backups


@dataclass
class Found:
    """An instance's AMIs and snapshots, newest first, as the outputs show them."""

    images: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"images": self.images, "snapshots": self.snapshots}


def find(instance: Mapping[str, Any], backups: Backups) -> Found:
    """The AMIs and snapshots that exist for ``instance`` (rules in the module docstring)."""
    instance_id = instance["InstanceId"]
    devices = {v["volume_id"]: v["device"] for v in volumes(instance)}
    raw: dict[str, dict[str, Any]] = {}
    matched_by: dict[str, list[str]] = {}
    created_by = f"Created by CreateImage({instance_id})"
    for snapshot_id, snapshot in backups.snapshots.items():
        rules = []
        if tags_of(snapshot).get(TAG_INSTANCE) == instance_id:
            rules.append("riposte tag")
        if (snapshot.get("Description") or "").startswith(created_by):
            rules.append("CreateImage description")
        if snapshot.get("VolumeId") in devices:
            rules.append("volume of the instance")
        if rules:
            raw[snapshot_id] = snapshot
            matched_by[snapshot_id] = rules

    found = Found()
    image_devices: dict[str, tuple[str, str]] = {}  # snapshot -> (image, device)
    for image in backups.images:
        rules = []
        if image.get("SourceInstanceId") == instance_id:
            rules.append("source instance")
        if tags_of(image).get(TAG_INSTANCE) == instance_id:
            rules.append("riposte tag")
        mapped = {
            m["Ebs"]["SnapshotId"]: m.get("DeviceName")
            for m in image.get("BlockDeviceMappings") or []
            if (m.get("Ebs") or {}).get("SnapshotId")
        }
        if set(mapped) & set(raw):
            rules.append("block-device snapshot of the instance")
        if not rules:
            continue
        for snapshot_id, device in mapped.items():
            image_devices[snapshot_id] = (image["ImageId"], device)
        found.images.append(
            {
                "image_id": image["ImageId"],
                "name": image.get("Name"),
                "state": image.get("State"),
                "created": iso(image.get("CreationDate")),
                "root_device_name": image.get("RootDeviceName"),
                "snapshot_ids": sorted(mapped),
                "matched_by": rules,
            }
        )
    for snapshot_id, snapshot in raw.items():
        tags = tags_of(snapshot)
        source = CREATE_IMAGE_SOURCE.match(snapshot.get("Description") or "")
        image_id, image_device = image_devices.get(snapshot_id, (None, None))
        found.snapshots.append(
            {
                "snapshot_id": snapshot_id,
                "volume_id": snapshot.get("VolumeId"),
                "state": snapshot.get("State"),
                "started": iso(snapshot.get("StartTime")),
                "description": snapshot.get("Description"),
                "size_gib": snapshot.get("VolumeSize"),
                "device": tags.get(TAG_DEVICE)
                or image_device
                or devices.get(snapshot.get("VolumeId") or ""),
                "image_id": image_id or (source.group(2) if source else None),
                "riposte_run": tags.get(TAG_RUN),
                "riposte_step": tags.get(TAG_STEP),
                "matched_by": matched_by[snapshot_id],
            }
        )
    found.images.sort(key=lambda i: i["created"] or "", reverse=True)
    found.snapshots.sort(key=lambda s: s["started"] or "", reverse=True)
    return found


@dataclass
class Point:
    """One place to relaunch from: an available AMI, or a set of snapshots to register."""

    kind: str  # "image" | "snapshots"
    created: datetime
    image_id: str | None = None
    snapshots: list[dict[str, Any]] = field(default_factory=list)  # {snapshot_id, device}
    label: str = ""

    def as_dict(self) -> dict[str, Any]:
        point: dict[str, Any] = {"kind": self.kind, "created": iso(self.created)}
        if self.image_id:
            point["image_id"] = self.image_id
        if self.snapshots:
            point["snapshots"] = self.snapshots
        point["source"] = self.label
        return point


def choose(
    found: Found, *, before: datetime, root_device: str | None
) -> tuple[Point | None, list[str]]:
    """The newest usable recovery point taken before ``before``; and why others were passed.

    An AMI must be ``available``; a snapshot set must be ``completed``, include the root
    device, and know the device of every snapshot (a lone snapshot is taken as the root).
    On a tie the AMI wins: it already carries its whole block-device mapping.
    """
    candidates: list[Point] = []
    passed: list[str] = []
    available = set()
    for image in found.images:
        created = moment(image["created"])
        label = f"{image['image_id']} ({image['name']})"
        if image["state"] != "available":
            passed.append(f"{label}: image is {image['state']}")
        elif created is None or created >= before:
            passed.append(f"{label}: created {image['created']}, not before {iso(before)}")
        else:
            available.add(image["image_id"])
            candidates.append(Point("image", created, image_id=image["image_id"], label=label))
    for label, members in _snapshot_sets(found, before, available).items():
        point, problem = _snapshot_point(label, members, before, root_device)
        if point is not None:
            candidates.append(point)
        else:
            passed.append(f"{label}: {problem}")
    if not candidates:
        return None, passed
    return max(candidates, key=lambda p: (p.created, p.kind == "image")), passed


def _snapshot_sets(
    found: Found, before: datetime, available_images: set[str]
) -> dict[str, list[dict[str, Any]]]:
    sets: dict[str, list[dict[str, Any]]] = {}
    by_volume: dict[str, dict[str, Any]] = {}
    for snapshot in found.snapshots:
        if snapshot["riposte_run"]:
            run, step = snapshot["riposte_run"], snapshot["riposte_step"]
            sets.setdefault(f"snapshots of Riposte run {run} step {step}", []).append(snapshot)
        elif snapshot["image_id"]:
            if snapshot["image_id"] not in available_images:
                sets.setdefault(f"snapshots of {snapshot['image_id']}", []).append(snapshot)
        elif (started := moment(snapshot["started"])) and started < before:
            newest = by_volume.get(snapshot["volume_id"])
            if snapshot["state"] == "completed" and (
                newest is None or snapshot["started"] > newest["started"]
            ):
                by_volume[snapshot["volume_id"]] = snapshot
    if by_volume:
        sets["newest snapshot of each volume"] = list(by_volume.values())
    return sets


def _snapshot_point(
    label: str, members: list[dict[str, Any]], before: datetime, root_device: str | None
) -> tuple[Point | None, str]:
    times = [moment(s["started"]) for s in members]
    created = max((t for t in times if t is not None), default=None)
    if created is None or created >= before:
        return None, f"taken {iso(created)}, not before {iso(before)}"
    unfinished = [s["snapshot_id"] for s in members if s["state"] != "completed"]
    if unfinished:
        return None, f"not completed: {', '.join(unfinished)}"
    if len(members) == 1 and not members[0]["device"] and root_device:
        mapping = [{"snapshot_id": members[0]["snapshot_id"], "device": root_device}]
    else:
        unmapped = [s["snapshot_id"] for s in members if not s["device"]]
        if unmapped:
            return None, f"device unknown for {', '.join(unmapped)}"
        mapping = [{"snapshot_id": s["snapshot_id"], "device": s["device"]} for s in members]
    devices = [m["device"] for m in mapping]
    if root_device not in devices:
        return None, f"no snapshot of the root device {root_device}"
    if len(set(devices)) != len(devices):
        return None, "two snapshots of one device"
    mapping.sort(key=lambda m: (m["device"] != root_device, m["device"]))
    return Point("snapshots", created, snapshots=mapping, label=label), ""
