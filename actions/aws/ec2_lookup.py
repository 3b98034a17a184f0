"""What the EC2 actions share: which instances a step acts on, how they read, and how they change.

The EC2 actions read the real state first, turn the difference into a list of :class:`Change`
(the exact calls), and ``plan`` returns those calls while ``run`` carries out the same list, so a
rehearsal's plan and a live run's calls cannot drift apart. A call may create something whose id
does not exist yet (an isolation group, a registered image): its plan names it with a
placeholder ``<new …>`` that ``carry_out`` replaces with the real id once AWS answers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from botocore import xform_name
from pydantic import Field

from actions.aws.clients import Client
from actions.aws.target import AwsInput, client
from actions.base import Action, ActionContext, ActionError, PlannedCall

# Tags Riposte writes on what it creates or changes.
TAG_RUN = "riposte:run"
TAG_STEP = "riposte:step"
TAG_INSTANCE = "riposte:instance"
TAG_VOLUME = "riposte:volume"
TAG_DEVICE = "riposte:device"
TAG_REPLACES = "riposte:replaces"
# How alert sources name an EC2 instance resource (ASFF's name first).
INSTANCE_RESOURCE_TYPES = {"awsec2instance", "instance", "ec2:instance", "aws::ec2::instance"}
GONE_STATES = ("shutting-down", "terminated")


class InstancesInput(AwsInput):
    instance_ids: list[str] = Field(
        default_factory=list,
        description="Instances to act on (i-…); default: every instance the alert names.",
    )


def target_instances(ctx: ActionContext, params: InstancesInput) -> list[str]:
    """The step's instance ids: the input's, else every instance the alert names (in order)."""
    ids = list(params.instance_ids) or alert_instances(ctx.alert)
    if not ids:
        raise ActionError(
            "NoInstances",
            "no instance_ids given and the alert names no EC2 instance",
            retryable=False,
        )
    malformed = [i for i in ids if not re.fullmatch(r"i-[0-9a-zA-Z]+", i)]
    if malformed:
        raise ActionError(
            "InvalidInstanceId", f"not instance ids (i-…): {', '.join(malformed)}", retryable=False
        )
    return list(dict.fromkeys(ids))


def alert_instances(alert: Mapping[str, Any]) -> list[str]:
    """Instance ids the alert names: its instance resources, then ``details.instance_ids``."""
    ids: list[str] = []
    for resource in alert.get("resources") or []:
        if isinstance(resource, Mapping) and str(resource.get("type", "")).lower() in (
            INSTANCE_RESOURCE_TYPES
        ):
            value = str(resource.get("id") or "")
            ids.append(value.rsplit("/", 1)[-1] if value.startswith("arn:") else value)
    details = alert.get("details")
    if isinstance(details, Mapping):
        ids.extend(str(i) for i in details.get("instance_ids") or [] if isinstance(i, str))
    return [i for i in dict.fromkeys(ids) if i]


@dataclass(frozen=True)
class Where:
    """The account (None: Riposte's own) and region a step acts in."""

    account: str | None
    region: str

    def as_dict(self) -> dict[str, Any]:
        return {"account": self.account, "region": self.region}


def where(ctx: ActionContext, params: AwsInput) -> Where:
    """Where the step acts: the input's account and region, else the alert's (as ``client``)."""
    account = params.account or ctx.alert.get("account") or None
    region = params.region or ctx.alert.get("region") or ctx.settings.aws_region
    return Where(account=account, region=region)


def ec2_at(ctx: ActionContext, place: Where) -> Client:
    """An EC2 client for ``place`` (used by undo, which has only its recorded data)."""
    return ctx.aws.client("ec2", account=place.account, region=place.region)


def where_of(undo: Mapping[str, Any]) -> Where:
    return Where(account=undo.get("account"), region=str(undo["region"]))


def describe(ec2: Client, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Describe instances by id; an unknown id is absent from the answer, not an error.

    A terminated instance stays describable for a while (usually under an hour).
    """
    wanted = list(ids)
    found: dict[str, dict[str, Any]] = {}
    for reservation in ec2.every(
        "describe_instances",
        "Reservations",
        Filters=[{"Name": "instance-id", "Values": wanted}],
    ):
        for instance in reservation.get("Instances") or []:
            found[instance["InstanceId"]] = {"OwnerId": reservation.get("OwnerId"), **instance}
    return {i: found[i] for i in wanted if i in found}


def require_all(found: Mapping[str, Any], ids: Iterable[str]) -> None:
    """Fail naming every instance AWS does not know (or no longer shows)."""
    missing = [i for i in ids if i not in found]
    if missing:
        raise ActionError(
            "InstanceNotFound",
            f"no such instance (or terminated too long ago to be described): {', '.join(missing)}",
            retryable=False,
        )


def tags_of(resource: Mapping[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags") or []}


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def step_tags(ctx: ActionContext, **extra: str) -> dict[str, str]:
    """The tags naming this run and step (and ``extra``), for what the step creates."""
    return {TAG_RUN: ctx.run_id, TAG_STEP: ctx.step_id, **extra}


def made_by(run_id: str, step_id: str, resource: Mapping[str, Any]) -> bool:
    """Whether ``resource`` carries the tags of run ``run_id``, step ``step_id``."""
    tags = tags_of(resource)
    return tags.get(TAG_RUN) == run_id and tags.get(TAG_STEP) == step_id


def undo_base(ctx: ActionContext, place: Where) -> dict[str, Any]:
    """What every EC2 undo record starts with: where, and which run and step made the changes."""
    return {**place.as_dict(), "run_id": ctx.run_id, "step_id": ctx.step_id}


def idempotency_key(ctx: ActionContext, target: str) -> str:
    """A key derived from run + step + target (for ClientToken and names), ≤ 64 characters."""
    digest = hashlib.sha256(f"{ctx.run_id}\0{ctx.step_id}\0{target}".encode()).hexdigest()
    return f"riposte-{digest[:40]}"


def state_of(instance: Mapping[str, Any]) -> str:
    return str((instance.get("State") or {}).get("Name") or "unknown")


def is_production(ctx: ActionContext, instance: Mapping[str, Any]) -> bool:
    return ctx.settings.is_production(instance["InstanceId"], tags_of(instance))


def interfaces(instance: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The instance's network interfaces, primary first, with their security groups."""
    found = [
        {
            "network_interface_id": nic["NetworkInterfaceId"],
            "device_index": (nic.get("Attachment") or {}).get("DeviceIndex"),
            "vpc_id": nic.get("VpcId"),
            "subnet_id": nic.get("SubnetId"),
            "private_ip": nic.get("PrivateIpAddress"),
            "security_groups": [
                {"group_id": g["GroupId"], "group_name": g.get("GroupName")}
                for g in nic.get("Groups") or []
            ],
        }
        for nic in instance.get("NetworkInterfaces") or []
    ]
    return sorted(found, key=lambda nic: (nic["device_index"] is None, nic["device_index"] or 0))


def volumes(instance: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The EBS volumes attached to the instance, with their device names."""
    root = instance.get("RootDeviceName")
    return [
        {
            "volume_id": mapping["Ebs"]["VolumeId"],
            "device": mapping.get("DeviceName"),
            "root": mapping.get("DeviceName") == root,
            "delete_on_termination": mapping["Ebs"].get("DeleteOnTermination"),
        }
        for mapping in instance.get("BlockDeviceMappings") or []
        if (mapping.get("Ebs") or {}).get("VolumeId")
    ]


def instance_profile(instance: Mapping[str, Any]) -> str | None:
    return (instance.get("IamInstanceProfile") or {}).get("Arn")


def moment(value: Any) -> datetime | None:
    """A time AWS or an alert gave (datetime or ISO 8601 text) in UTC; None if unreadable."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str) and value.strip():
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def iso(value: Any) -> str | None:
    when = moment(value)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


def forget(ctx: ActionContext, place: Where) -> None:
    """Drop the run's cached descriptions of instances in ``place``: a step changed some."""
    prefix = describe_cache_key(place, "")
    for key in [k for k in ctx.cache if k.startswith(prefix)]:
        del ctx.cache[key]


def describe_cache_key(place: Where, instance_id: str) -> str:
    return f"aws.ec2.describe_instances/{place.account or 'own'}/{place.region}/{instance_id}"


# --- Changes: one list of calls for plan and run --------------------------------------------


def new_id(name: str) -> str:
    """The placeholder a plan shows for the id of something a previous call creates."""
    return f"<new {name}>"


@dataclass
class Change:
    """One mutating call; ``creates`` names the placeholder its answer's ``answer_key`` fills."""

    call: PlannedCall
    creates: str | None = None
    answer_key: str | None = None
    settling: bool = False  # on something just created or changed: retry NotFound and states
    settling_codes: tuple[str, ...] = ()  # other codes to retry then (default: as the client)

    @classmethod
    def ec2(cls, operation: str, target: str, **params: Any) -> Change:
        return cls(PlannedCall(service="ec2", operation=operation, params=params, target=target))


def planned(changes: Iterable[Change]) -> list[PlannedCall]:
    return [change.call for change in changes]


def carry_out(ec2: Client, changes: Iterable[Change]) -> dict[str, Any]:
    """Make the calls in order, replacing placeholders by the ids AWS answered; return them."""
    known: dict[str, Any] = {}
    for change in changes:
        client = ec2.settling(*change.settling_codes) if change.settling else ec2
        params = _fill(change.call.params, known)
        answer = getattr(client, xform_name(change.call.operation))(**params)
        if change.creates and change.answer_key:
            known[new_id(change.creates)] = _dig(answer, change.answer_key)
    return known


def _fill(value: Any, known: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return known.get(value, value)
    if isinstance(value, list):
        return [_fill(item, known) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, known) for key, item in value.items()}
    return value


def filled(report: Any, known: Mapping[str, str]) -> Any:
    """A report with every placeholder, also inside sentences, replaced by the real id."""
    if isinstance(report, str):
        for placeholder, real in known.items():
            report = report.replace(placeholder, real)
        return report
    if isinstance(report, list):
        return [filled(item, known) for item in report]
    if isinstance(report, dict):
        return {key: filled(item, known) for key, item in report.items()}
    return report


def _dig(answer: Mapping[str, Any], path: str) -> Any:
    value: Any = answer
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


@dataclass(kw_only=True)
class Survey:
    """What a mutating EC2 action read: the changes still to make (subclasses add the rest)."""

    changes: list[Change] = field(default_factory=list)


P = TypeVar("P", bound=AwsInput)
S = TypeVar("S", bound=Survey)


class Ec2Change(Action[P], Generic[P, S]):
    """A mutating EC2 action: ``plan`` lists the changes its survey finds, ``run`` makes them.

    A subclass says how to survey (read-only), what to report once the changes are made, and
    which changes put things back (``restoration``, read-only as well).
    """

    mutating = True
    reversible = True

    def survey(self, ctx: ActionContext, params: P, ec2: Client) -> S:
        raise NotImplementedError

    def outcome(
        self, ctx: ActionContext, params: P, survey: S, made: dict[str, Any], ec2: Client
    ) -> dict[str, Any]:
        """The run's output, once ``made`` (the new ids by placeholder) exists."""
        raise NotImplementedError

    def restoration(
        self, ec2: Client, undo: Mapping[str, Any]
    ) -> tuple[list[Change], dict[str, Any]]:
        """The changes that put back what ``undo`` records, and what the undo will report."""
        raise NotImplementedError

    def plan(self, ctx: ActionContext, params: P) -> list[PlannedCall]:
        return planned(self.survey(ctx, params, client(ctx, params, "ec2")).changes)

    def run(self, ctx: ActionContext, params: P) -> dict[str, Any]:
        ec2 = client(ctx, params, "ec2")
        survey = self.survey(ctx, params, ec2)
        made = carry_out(ec2, survey.changes)
        forget(ctx, where(ctx, params))
        return self.outcome(ctx, params, survey, made, ec2)

    def plan_undo(self, ctx: ActionContext, undo: dict[str, Any]) -> list[PlannedCall]:
        return planned(self.restoration(ec2_at(ctx, where_of(undo)), undo)[0])

    def undo(self, ctx: ActionContext, undo: dict[str, Any]) -> dict[str, Any]:
        ec2 = ec2_at(ctx, where_of(undo))
        changes, report = self.restoration(ec2, undo)
        carry_out(ec2, changes)
        forget(ctx, where_of(undo))
        return report
