"""What relaunching terminated instances finds and would do: the relaunch's survey.

For each instance the step names: skipped (not terminated), already replaced (a live instance
tagged as its replacement), relaunched from the latest backup taken before the incident, or
unrecoverable (and why). ``aws.ec2.relaunch_instances`` (``ec2_relaunch.py``) makes the calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from actions.aws import ec2_recovery
from actions.aws.clients import Client
from actions.aws.ec2_lookup import (
    TAG_REPLACES,
    Change,
    Survey,
    describe,
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
)
from actions.aws.ec2_replacement import Override, image_name, launch_settings, registration
from actions.base import ActionContext, ActionError

LIVE_STATES = ["pending", "running", "stopping", "stopped"]


@dataclass(kw_only=True)
class Relaunch(Survey):
    """When the incident began (and who said), and each instance's fate."""

    before: datetime
    before_from: str
    relaunched: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    unrecoverable: list[dict[str, Any]] = field(default_factory=list)


def survey_relaunch(
    ctx: ActionContext,
    ec2: Client,
    *,
    ids: list[str],
    before: datetime | None,
    overrides: Mapping[str, Override],
    skip_unrecoverable: bool,
) -> Relaunch:
    """Read the originals, their replacements and backups; list the calls still to make.

    ``before``: the step's ``before``, else the alert's event time; ``overrides`` and
    ``skip_unrecoverable`` as the step gives them.
    """
    since, before_from = _incident_time(ctx, before)
    survey = Relaunch(before=since, before_from=before_from)
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
            _relaunch(ctx, overrides, ec2, instance, backups, survey)
    for item in survey.unrecoverable:
        passed = "; ".join(item.get("passed_over") or [])
        item["message"] = f"{item['instance_id']}: {item['reason']}" + (
            f" (passed over: {passed})" if passed else ""
        )
    if survey.unrecoverable and not skip_unrecoverable:
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


def relaunch_summary(survey: Relaunch, relaunched: list[dict[str, Any]]) -> str:
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


def _incident_time(ctx: ActionContext, given: datetime | None) -> tuple[datetime, str]:
    if given is not None:
        when = moment(given)
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
    for reservation in ec2.every(
        "describe_instances",
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
    overrides: Mapping[str, Override],
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
    launch, missing, notes = launch_settings(instance, overrides.get(instance_id))
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
