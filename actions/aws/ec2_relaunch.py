"""Relaunch terminated instances from the backups taken before the incident."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import Field

from actions.aws.clients import Client
from actions.aws.ec2_lookup import (
    TAG_REPLACES,
    TAG_RUN,
    Change,
    Ec2Change,
    InstancesInput,
    filled,
    iso,
    target_instances,
    undo_base,
    where,
)
from actions.aws.ec2_relaunch_survey import Relaunch, relaunch_summary, survey_relaunch
from actions.aws.ec2_replacement import Override, removal, wait_running
from actions.base import ActionContext
from actions.policy import EC2_TAG_WHILE_CREATING, NO_RESOURCE_LEVEL, PASS_ROLE_TO_EC2, Scope
from actions.registry import register


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
        return survey_relaunch(
            ctx,
            ec2,
            ids=target_instances(ctx, params),
            before=params.before,
            overrides=params.overrides,
            skip_unrecoverable=params.skip_unrecoverable,
        )

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
        summary = relaunch_summary(survey, relaunched)
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


