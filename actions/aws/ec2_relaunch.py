"""Relaunch terminated instances from the backups taken before the incident."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import Field

from actions.aws import ec2_recovery
from actions.aws.clients import Client
from actions.aws.ec2_lookup import (
    TAG_REPLACES,
    TAG_RUN,
    Change,
    Ec2Change,
    InstancesInput,
    Survey,
    describe,
    every,
    filled,
    idempotency_key,
    is_production,
    iso,
    made_by,
    moment,
    new_id,
    state_of,
    step_tags,
    tag_list,
    tags_of,
    target_instances,
    undo_base,
    where,
)
from actions.aws.ec2_replacement import (
    Override,
    image_name,
    launch_settings,
    registration,
    removal,
    wait_running,
)
from actions.base import ActionContext, ActionError
from actions.policy import EC2_TAG_WHILE_CREATING, NO_RESOURCE_LEVEL, PASS_ROLE_TO_EC2, Scope
from actions.registry import register

LIVE_STATES = ["pending", "running", "stopping", "stopped"]


class RelaunchInput(InstancesInput):
    before: datetime | None = Field(
        default=None,
        description="Use only AMIs and snapshots taken before this time (ISO 8601); default: "
        "the alert's event time.",
    )
    overrides: dict[str, Override] = Field(
        default_factory=dict,
        description="Per terminated instance id: attributes to use instead of, or where AWS "
        "no longer shows, the original's.",
    )
    skip_unrecoverable: bool = Field(
        default=False,
        description="Relaunch what can be and report the rest; default: launch nothing unless "
        "every terminated instance can be relaunched.",
    )


@dataclass(kw_only=True)
class Relaunch(Survey):
    """When the incident began (and who said), and each instance's fate."""

    before: datetime
    before_from: str
    relaunched: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    unrecoverable: list[dict[str, Any]] = field(default_factory=list)


@register
class RelaunchInstances(Ec2Change[RelaunchInput, Relaunch]):
    """Launch a replacement for each terminated instance from its newest pre-incident backup.

    For each instance (terminated ones only; others are reported as skipped): the newest
    ``available`` AMI or completed snapshot set taken before ``before`` (default: the alert's
    event time), matched as ``actions/aws/ec2_recovery.py`` says; from snapshots, an image is
    registered first (root device name and architecture of the original). The replacement gets
    the original's instance type, subnet, security groups (of its primary interface), key,
    instance profile and tags (``aws:`` tags excepted), plus ``riposte:run``, ``riposte:step``
    and ``riposte:replaces=<old id>``, and requires IMDSv2. The original's attributes come from
    describing the terminated instance, which AWS shows for about an hour; an original Riposte
    had isolated gets the groups and profile its ``riposte:before:*`` tags kept; ``overrides``
    supply what it no longer shows (else the step fails naming what is missing).

    An instance that cannot be relaunched (``NoRecoveryPoint``, ``InstanceNotDescribable``,
    ``OriginalIncomplete``) fails the step before anything is launched, naming every such
    instance, unless ``skip_unrecoverable`` relaunches the others: the step then succeeds but
    says what it left undone (the summary counts them; ``unrecoverable`` and ``left_undone``
    name each with why), and the run ends ``partial``.

    Idempotent three ways: a live replacement tagged ``riposte:replaces`` is found before
    anything is launched (whichever run launched it: a follow-up run of a burst never launches
    a second one), the registered image has a name derived from run, step and
    instance and is looked up by it, and RunInstances carries a ClientToken derived from them.
    Waits (bounded by ``RIPOSTE_EC2_LAUNCH_WAIT_SECONDS``) until every replacement runs.
    Undo terminates only the replacements this step launched and deregisters only the image it
    registered (the backup snapshots stay).

    ```yaml
    - id: relaunch
      action: aws.ec2.relaunch_instances
      with:
        instance_ids: ["i-0123456789abcdef0"]
        before: "2020-11-06T03:21:39Z"
    ```
    """

    name = "aws.ec2.relaunch_instances"
    Input = RelaunchInput
    grants = (
        NO_RESOURCE_LEVEL.allow(
            "ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeSnapshots"
        ),
        Scope(
            "Ec2LaunchOnlyTaggedReplacements",
            f"an instance (and its volumes) is launched only carrying {TAG_RUN} and "
            f"{TAG_REPLACES}",
            (
                "arn:{partition}:ec2:{region}:{account}:instance/*",
                "arn:{partition}:ec2:{region}:{account}:volume/*",
            ),
            {"Null": {f"aws:RequestTag/{TAG_RUN}": "false",
                      f"aws:RequestTag/{TAG_REPLACES}": "false"}},
        ).allow("ec2:RunInstances"),
        Scope(
            "Ec2LaunchIntoTheAccountsNetwork",
            "a replacement goes into its original's subnet, security groups and key pair, "
            "whichever they are: any of the account's",
            (
                "arn:{partition}:ec2:{region}:{account}:subnet/*",
                "arn:{partition}:ec2:{region}:{account}:security-group/*",
                "arn:{partition}:ec2:{region}:{account}:network-interface/*",
                "arn:{partition}:ec2:{region}:{account}:key-pair/*",
            ),
        ).allow("ec2:RunInstances"),
        Scope(
            "Ec2LaunchFromTheAccountsOwnBackups",
            "a replacement is launched from the account's own AMIs and snapshots (image and "
            "snapshot ARNs carry no account: ec2:Owner does)",
            ("arn:{partition}:ec2:{region}::image/*", "arn:{partition}:ec2:{region}::snapshot/*"),
            {"StringLike": {"ec2:Owner": "{account}"}},
        ).allow("ec2:RunInstances"),
        Scope(
            "Ec2RegisterFromTheAccountsOwnSnapshots",
            "an image is registered only from the account's own snapshots",
            ("arn:{partition}:ec2:{region}::snapshot/*",),
            {"StringLike": {"ec2:Owner": "{account}"}},
        ).allow("ec2:RegisterImage"),
        Scope(
            "Ec2RegisterOnlyTaggedImages",
            f"an image is registered only carrying {TAG_RUN} and {TAG_REPLACES}",
            ("arn:{partition}:ec2:{region}::image/*",),
            {"Null": {f"aws:RequestTag/{TAG_RUN}": "false",
                      f"aws:RequestTag/{TAG_REPLACES}": "false"}},
        ).allow("ec2:RegisterImage"),
        EC2_TAG_WHILE_CREATING.allow("ec2:CreateTags"),  # tags given at launch need it too
        PASS_ROLE_TO_EC2.allow("iam:PassRole"),  # the original's instance profile passes its role
        Scope(
            "Ec2TerminateOnlyReplacements",
            f"undo terminates only instances Riposte launched (tagged {TAG_REPLACES})",
            ("arn:{partition}:ec2:{region}:{account}:instance/*",),
            {"Null": {f"aws:ResourceTag/{TAG_REPLACES}": "false"}},
        ).allow("ec2:TerminateInstances"),
        Scope(
            "Ec2DeregisterOnlyImagesRiposteRegistered",
            f"undo deregisters only images Riposte registered (tagged {TAG_REPLACES})",
            ("arn:{partition}:ec2:{region}::image/*",),
            {"Null": {f"aws:ResourceTag/{TAG_REPLACES}": "false"}},
        ).allow("ec2:DeregisterImage"),
    )

    def survey(self, ctx: ActionContext, params: RelaunchInput, ec2: Client) -> Relaunch:
        return _survey(ctx, params, ec2)

    def outcome(
        self,
        ctx: ActionContext,
        params: RelaunchInput,
        survey: Relaunch,
        made: dict[str, Any],
        ec2: Client,
    ) -> dict[str, Any]:
        place = where(ctx, params)
        relaunched = filled(survey.relaunched, made)  # new ids where the plan had placeholders
        states = wait_running(ctx, ec2, [i["new"] for i in relaunched if i["state"] == "pending"])
        for item in relaunched:
            item["state"] = states.get(item["new"], item["state"])
        summary = _summary(survey, relaunched)
        ours = [i for i in relaunched if i["launched_by_this_step"]]
        return {
            **place.as_dict(),
            "summary": summary,
            "before": iso(survey.before),
            "before_from": survey.before_from,
            "replacements": {i["old"]: i["new"] for i in relaunched},
            "relaunched": relaunched,
            "skipped": survey.skipped,
            "unrecoverable": survey.unrecoverable,
            "undo": {
                **undo_base(ctx, place),
                "instances": [{"old": i["old"], "new": i["new"]} for i in ours],
                "images": [
                    i["from"]["registered_image"] for i in ours if i["from"].get("registered_image")
                ],
            },
        }

    def restoration(
        self, ec2: Client, undo: Mapping[str, Any]
    ) -> tuple[list[Change], dict[str, Any]]:
        return removal(ec2, undo)


def _survey(ctx: ActionContext, params: RelaunchInput, ec2: Client) -> Relaunch:
    """Read the originals, their replacements and backups; list the calls still to make."""
    ids = target_instances(ctx, params)
    before, before_from = _incident_time(ctx, params)
    survey = Relaunch(before=before, before_from=before_from)
    found = describe(ec2, ids)
    existing = _replacements(ctx, ec2, ids)
    backups = ec2_recovery.Backups.read(
        ec2, [f for i, f in found.items() if state_of(f) == "terminated" and i not in existing]
    )
    for instance_id in ids:
        instance = found.get(instance_id)
        if instance is None:
            survey.unrecoverable.append(
                {
                    "instance_id": instance_id,
                    "production": None,  # unknown: its tags are gone with it
                    "code": "InstanceNotDescribable",
                    "reason": "no longer described by AWS (a terminated instance is shown for "
                    "about an hour): its type, subnet, security groups, key, profile and tags "
                    "are unknown, so no faithful replacement can be made",
                }
            )
            continue
        state = state_of(instance)
        production = is_production(ctx, instance)
        if state != "terminated":
            survey.skipped.append(
                {
                    "instance_id": instance_id,
                    "production": production,
                    "state": state,
                    "reason": f"{state}, not terminated: nothing to relaunch",
                }
            )
        elif instance_id in existing:
            replacement = existing[instance_id]
            survey.relaunched.append(
                {
                    "old": instance_id,
                    "new": replacement["InstanceId"],
                    "production": production,
                    "already": True,
                    "launched_by_this_step": made_by(ctx.run_id, ctx.step_id, replacement),
                    "state": state_of(replacement),
                    "from": {"image_id": replacement.get("ImageId")},
                }
            )
        else:
            _relaunch(ctx, params, ec2, instance, backups, survey)
    for item in survey.unrecoverable:
        passed = "; ".join(item.get("passed_over") or [])
        item["message"] = f"{item['instance_id']}: {item['reason']}" + (
            f" (passed over: {passed})" if passed else ""
        )
    if survey.unrecoverable and not params.skip_unrecoverable:
        codes = {u["code"] for u in survey.unrecoverable}
        raise ActionError(
            codes.pop() if len(codes) == 1 else "NotRecoverable",
            "nothing launched: "
            + "; ".join(u["message"] for u in survey.unrecoverable)
            + " (skip_unrecoverable: true relaunches the others)",
            retryable=False,
        )
    for item in survey.unrecoverable:  # planning too: a dry run says what stays dead
        ctx.leave_undone(item["instance_id"], f"not relaunched: {item['reason']}")
    return survey


# What an unrecoverable instance lacks, in the summary's words.
_LACKS = {
    "NoRecoveryPoint": "no AMI or snapshot taken before {before}",
    "InstanceNotDescribable": "no longer described by AWS",
    "OriginalIncomplete": "settings no longer shown; give overrides",
}


def _summary(survey: Relaunch, relaunched: list[dict[str, Any]]) -> str:
    """Say how many terminated instances were relaunched, of how many, and why not the rest."""
    launched = [i for i in relaunched if not i["already"]]
    if not launched and not survey.unrecoverable:
        return "nothing to do: " + (
            "every terminated instance already has a live replacement"
            if relaunched else "none of the instances is terminated"
        )
    terminated = len(relaunched) + len(survey.unrecoverable)
    parts = [
        f"relaunched {len(launched)} of {terminated} terminated instance"
        + ("" if terminated == 1 else "s")
        + (": " + ", ".join(f"{i['old']} -> {i['new']}" for i in launched) if launched else "")
    ]
    if len(relaunched) > len(launched):
        parts.append(f"{len(relaunched) - len(launched)} already replaced")
    for code, lacks in _LACKS.items():
        ids = [u["instance_id"] for u in survey.unrecoverable if u["code"] == code]
        if ids:
            why = lacks.format(before=iso(survey.before))
            parts.append(f"{len(ids)} unrecoverable ({why}): {', '.join(ids)}")
    return "; ".join(parts)


def _incident_time(ctx: ActionContext, params: RelaunchInput) -> tuple[datetime, str]:
    if params.before is not None:
        when = moment(params.before)
        assert when is not None  # a datetime always reads
        return when, "input"
    details = ctx.alert.get("details")
    for value in (
        ctx.alert.get("event_time"),
        ctx.alert.get("time"),
        details.get("event_time") if isinstance(details, Mapping) else None,
    ):
        when = moment(value)
        if when is not None:
            return when, "alert"
    raise ActionError(
        "NoIncidentTime",
        "the alert carries no event time: pass `before` (when the incident began) so no "
        "backup taken after it is used",
        retryable=False,
    )


def _replacements(ctx: ActionContext, ec2: Client, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Live instances launched to replace ``ids``, by this run or another (a run it follows up).

    Found by tag, not by ClientToken (moto ignores it, and another run's token differs).
    """
    found: dict[str, dict[str, Any]] = {}
    for reservation in every(
        ec2.describe_instances,
        "Reservations",
        Filters=[
            {"Name": f"tag:{TAG_REPLACES}", "Values": ids},
            {"Name": "instance-state-name", "Values": LIVE_STATES},
        ],
    ):
        for instance in reservation.get("Instances") or []:
            found.setdefault(tags_of(instance)[TAG_REPLACES], instance)
    return found


def _relaunch(
    ctx: ActionContext,
    params: RelaunchInput,
    ec2: Client,
    instance: dict[str, Any],
    backups: ec2_recovery.Backups,
    survey: Relaunch,
) -> None:
    instance_id = instance["InstanceId"]
    root = instance.get("RootDeviceName") or "/dev/xvda"
    found = ec2_recovery.find(instance, backups)
    point, passed = ec2_recovery.choose(found, before=survey.before, root_device=root)
    if point is None:
        survey.unrecoverable.append(
            {
                "instance_id": instance_id,
                "production": is_production(ctx, instance),
                "code": "NoRecoveryPoint",
                "reason": f"no available AMI or completed snapshot set taken before "
                f"{iso(survey.before)}" + ("" if passed else " (none found)"),
                "passed_over": passed,
            }
        )
        return
    launch, missing, notes = launch_settings(instance, params.overrides.get(instance_id))
    if missing:
        survey.unrecoverable.append(
            {
                "instance_id": instance_id,
                "production": is_production(ctx, instance),
                "code": "OriginalIncomplete",
                "reason": f"its description no longer shows its {', '.join(missing)}: give "
                f"them in overrides.{instance_id}",
            }
        )
        return
    source = point.as_dict()
    image_id = point.image_id
    if point.kind == "snapshots":
        name = image_name(ctx, instance_id)
        registered = next((i for i in backups.images if i.get("Name") == name), None)
        image_id = registered["ImageId"] if registered else new_id(name)
        source["registered_image"] = {"image_id": image_id, "name": name}
        if registered is None:
            survey.changes.append(registration(ctx, instance, point, name))
    assert image_id is not None
    tags = {k: v for k, v in tags_of(instance).items() if not k.startswith(("aws:", "riposte:"))}
    tags.update(step_tags(ctx, **{TAG_REPLACES: instance_id}))
    run = Change.ec2(
        "RunInstances",
        f"replacement of {instance_id}",
        ImageId=image_id,
        MinCount=1,
        MaxCount=1,
        ClientToken=idempotency_key(ctx, instance_id),
        **launch,
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": tag_list(tags)},
            {
                "ResourceType": "volume",
                "Tags": tag_list(step_tags(ctx, **{TAG_REPLACES: instance_id})),
            },
        ],
    )
    run.creates, run.answer_key = f"replacement of {instance_id}", "Instances.0.InstanceId"
    # A just-registered image may not be launchable for a moment; the ClientToken makes a
    # retried RunInstances safe.
    run.settling, run.settling_codes = image_id.startswith("<"), ("InvalidAMIID.*",)
    survey.changes.append(run)
    survey.relaunched.append(
        {
            "old": instance_id,
            "new": new_id(f"replacement of {instance_id}"),
            "production": is_production(ctx, instance),
            "already": False,
            "launched_by_this_step": True,
            "state": "pending",
            "from": source,
            "passed_over": passed,
            "launched_with": launch,
            "notes": notes,
        }
    )
