"""The playbook language: pydantic models of the YAML a playbook is written in."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from engine.identities import approver_problem, read_approver
from engine.modes import Mode

_DURATION = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def _seconds(value: Any) -> Any:
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration (e.g. 30, '30s', '5m', '1h')")
        return float(match["n"]) * _UNITS[match["unit"]]
    return value


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Duration = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]
# How far back a trigger looks: bounded, so every window stays a representable time span.
Window = Annotated[Duration, Field(gt=0, le=30 * 86400)]
# Alert fields (``principal.arn``, ``type``): one name or a list of names.
AlertFields = Annotated[
    list[str],
    BeforeValidator(_one_or_many),
    WithJsonSchema(
        {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    ),
]
StepId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")]
# Where a notification goes: an SNS topic, a Slack-compatible webhook, or a Slack channel or
# person through Riposte's Slack app (engine.slack: interactive approval messages).
_NOTIFY_TARGET = (r"^(arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+|https?://\S+"
                  r"|slack:(#[a-z0-9][a-z0-9._-]{0,79}|[CDGUW][A-Z0-9]{5,20}))$")
_NOTIFY_TARGETS = ("an SNS topic ARN, an http(s) webhook URL, or a Slack channel or person: "
                   "slack:#channel-name, slack:C0123ABCD (a channel id), slack:U0123ABCD (a "
                   "user: a direct message)")


def _notify_target(value: str) -> str:
    if not re.match(_NOTIFY_TARGET, value):
        raise PydanticCustomError("notify_target", "{value} is not a notification target: "
                                  "write {targets}",
                                  {"value": repr(value), "targets": _NOTIFY_TARGETS})
    return value


NotifyTarget = Annotated[
    str,
    AfterValidator(_notify_target),
    WithJsonSchema({"type": "string", "pattern": _NOTIFY_TARGET,
                    "description": _NOTIFY_TARGETS[0].upper() + _NOTIFY_TARGETS[1:] + "."}),
]
SeverityLabel = Literal["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
# Who may decide: a role or one token, said explicitly (engine.identities). The pattern is for
# editors; the validator says what is wrong and how to write it.
ApproverName = Annotated[
    str,
    WithJsonSchema({
        "type": "string",
        "pattern": r"^(role:(responder|admin)|token:[^:\s]+)$",
        "description": "role:responder or role:admin (any token of that role), or "
        "token:<name> (the token of that name).",
    }),
]
# Validation context key: read bare approvers the way Riposte did before the prefixes (a
# playbook pinned in a run that began before them); playbook files are refused instead.
PINNED = "pinned"


class SpecModel(BaseModel):
    """Playbook models refuse unknown keys: a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Retry(SpecModel):
    """How a failing step is retried: exponential backoff with jitter, capped."""

    attempts: int = Field(default=3, ge=1, le=50, description="Total tries, the first included.")
    backoff: Duration = Field(default=1.0, description="Delay before the first retry.")
    max_delay: Duration = Field(default=30.0, description="Longest delay between two tries.")
    on: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Error codes (globs) worth retrying; anything else fails at once.",
    )


class Approval(SpecModel):
    """A human decision the step waits for before it runs."""

    required: int = Field(default=1, ge=1, le=10, description="Distinct approvals needed.")
    approvers: list[ApproverName] = Field(
        default_factory=list,
        description="Who may decide: role:responder, role:admin (any token of the role) or "
        "token:<name> (that one token); empty: any responder or admin token.",
    )
    expires_in: Duration | None = Field(
        default=None, description="Seconds before the request expires (default from settings)."
    )
    on_timeout: Literal["reject", "approve"] = Field(
        default="reject",
        description="What an expired request means: reject (the run ends), or approve — only "
        "where the playbook says so; the audit log then records an implicit approval.",
    )
    escalate_after: Duration | None = Field(
        default=None,
        description="Seconds without a settling decision after which ``escalate_to`` is told.",
    )
    escalate_to: list[NotifyTarget] = Field(
        default_factory=list,
        description="Who is told on escalation: SNS topic ARNs, https webhook URLs or slack: "
        "channels, which get the buttons (default RIPOSTE_APPROVAL_ESCALATE_TO).",
    )
    notify: list[NotifyTarget] = Field(
        default_factory=list,
        description="Who is told when the request opens: SNS topic ARNs, https webhook URLs or "
        "slack: channels and people, who can decide there (default RIPOSTE_APPROVAL_NOTIFY).",
    )
    reason: str = Field(default="", description="Why a human must look at this step.")
    covers: list[StepId] = Field(
        default_factory=list,
        description="Later steps this approval also authorises (e.g. revoke keys, relaunch). "
        "Their calls are planned with this step's, shown in the same request and bound by the "
        "same hash; each runs only under a granted approval that covers it, and only calls "
        "among those approved.",
    )

    @field_validator("approvers")
    @classmethod
    def _explicit_approvers(cls, approvers: list[str], info: ValidationInfo) -> list[str]:
        if info.context and info.context.get(PINNED):
            return [str(read_approver(entry)) for entry in approvers]
        problems = [problem for entry in approvers if (problem := approver_problem(entry))]
        if problems:
            raise PydanticCustomError("approver", "{problems}", {"problems": "; ".join(problems)})
        return approvers

    @model_validator(mode="after")
    def _escalation_before_expiry(self) -> Approval:
        if (
            self.escalate_after is not None
            and self.expires_in is not None
            and self.escalate_after >= self.expires_in
        ):
            raise ValueError("escalate_after must be shorter than expires_in")
        return self


class OnFailure(SpecModel):
    """Who is told when a run of the playbook fails or is cancelled."""

    notify: list[NotifyTarget] = Field(
        min_length=1,
        description="SNS topic ARNs, webhook URLs or slack: channels told what failed (the "
        "step, its error), what the run had done and what is left undone "
        "(default RIPOSTE_FAILURE_NOTIFY).",
    )


class Step(SpecModel):
    """One step of a playbook."""

    id: StepId = Field(
        description="Name of the step, unique in the playbook (letters, digits, _ and -); later "
        "steps read its output as steps.<id>.output."
    )
    action: str = Field(description="Registered action name, e.g. core.log.")
    with_: dict[str, Any] = Field(
        default_factory=dict,
        alias="with",
        description="The action's parameters, checked against its input model "
        "(docs/actions.md); any value may be a template.",
    )
    when: str | None = Field(default=None, description="Expression; the step runs if true.")
    for_each: str | list[Any] | None = Field(
        default=None, description="Expression or list; the action runs once per ``item``."
    )
    retry: Retry | None = Field(
        default=None, description="How a failing attempt is retried; none: one attempt only."
    )
    timeout: Duration | None = Field(default=None, description="Seconds one attempt may take.")
    on_error: str = Field(
        default="fail", description="fail | continue | the id of the step to go to."
    )
    approval: Approval | None = Field(
        default=None,
        description="A human decision the step waits for before it runs; none: it runs at once.",
    )


class ResourceFilter(SpecModel):
    """Which of an alert's resources count; the alert matches if at least one does."""

    type: list[str] = Field(
        default_factory=list, description="Resource types (e.g. AwsEc2Instance), any of."
    )
    production: bool = Field(
        default=False,
        description="Only EC2 instances that may be production count: listed in "
        "RIPOSTE_PRODUCTION_INSTANCES, carrying a RIPOSTE_PRODUCTION_TAGS tag, or whose tags the "
        "alert does not carry (a CloudTrail TerminateInstances record carries none). Unknown "
        "tags count as production, so the trigger may over-fire but never misses production; "
        "the playbook confirms the tags (e.g. with aws.ec2.describe_instances).",
    )


class Correlate(SpecModel):
    """Fold an alert into the open run of a related alert instead of starting another run."""

    by: AlertFields = Field(
        min_length=1,
        description="Alert fields whose values must be equal (e.g. principal.arn, type); an "
        "alert lacking one of them starts its own run.",
    )
    within: Window = Field(
        description="How far apart in event time the alert and the alert that started the "
        "open run may be (e.g. 1h)."
    )


class Threshold(SpecModel):
    """Start one run when enough matching events of one group fall within a sliding window."""

    count: int = Field(ge=1, le=10_000, description="Events (or resources) needed to fire.")
    within: Window = Field(description="Length of the window, in event time (e.g. 5m).")
    group_by: AlertFields = Field(
        default_factory=list,
        description="Alert fields whose values form a group (e.g. principal.arn); none: every "
        "matching event is one group. Events lacking a field are a group of their own.",
    )
    count_resources: bool = Field(
        default=False,
        description="Count the distinct resources the events name (after the resources "
        "filter) instead of the events: one TerminateInstances call can end many instances.",
    )


class Settle(SpecModel):
    """Let a burst go quiet before its run judges it, up to a limit (correlate or threshold).

    A run judges every alert it has when it starts; alerts that join later start it over (before
    it acted) or start a follow-up run (after). Waiting for quiet saves those restarts and asks
    the approvers once; ``at_most`` bounds how long the first judgement can be put off.
    """

    quiet: Duration = Field(
        default=0.0,
        le=3600,
        description="Start the run only once no alert has joined it for this long (e.g. 1m); "
        "0: at once.",
    )
    at_most: Duration = Field(
        default=300.0,
        le=86400,
        description="Start it at the latest this long after it was queued, quiet or not "
        "(e.g. 5m).",
    )


class Trigger(SpecModel):
    """Which normalized alerts start this playbook; every given field must match."""

    source: list[str] = Field(default_factory=list, description="Alert sources, any of.")
    kind: list[str] = Field(default_factory=list, description="Alert kinds, any of.")
    type: str | None = Field(default=None, description="Glob on the alert's type.")
    event_name: list[str] = Field(
        default_factory=list, description="Event names (e.g. TerminateInstances), any of."
    )
    severity_at_least: int | SeverityLabel | None = Field(
        default=None,
        description="Lowest severity that matches: 0-100, or a label: INFORMATIONAL (0), LOW (1), "
        "MEDIUM (40), HIGH (70), CRITICAL (90).",
    )
    account: list[str] = Field(
        default_factory=list, description="AWS account ids (12 digits), any of."
    )
    region: list[str] = Field(
        default_factory=list, description="AWS regions (e.g. us-east-1), any of."
    )
    principal_type: list[str] = Field(
        default_factory=list,
        description="Types of the alert's principal (e.g. IAMUser, AssumedRole, Root), any of.",
    )
    resources: ResourceFilter | None = Field(
        default=None, description="Resources the alert must name (at least one)."
    )
    correlate: Correlate | None = Field(
        default=None, description="Join the open run of a related alert instead of starting one."
    )
    threshold: Threshold | None = Field(
        default=None, description="Start a run only when enough matching events add up."
    )
    settle: Settle | None = Field(
        default=None,
        description="Wait for the alerts of a burst to stop arriving before the run starts "
        "(e.g. {quiet: 1m, at_most: 5m}); none: the run starts at once.",
    )


def _listed_triggers(value: Any) -> Any:
    """Read ``trigger:`` as a list: one mapping is a list of one, nothing is an empty list."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise PydanticCustomError(
            "trigger_shape", "a trigger is a mapping (source, kind, type, …) or a list of them, "
            "not {value}", {"value": repr(value)})
    return value


# ``trigger:`` in YAML: one trigger (a mapping, as before several triggers) or a list of them.
# The model holds a list either way, so code reads ``playbook.triggers`` only.
Triggers = Annotated[
    list[Trigger],
    BeforeValidator(_listed_triggers, json_schema_input_type=Trigger | list[Trigger] | None),
]


class Playbook(SpecModel):
    """A named list of steps with the triggers that start it."""

    name: StepId = Field(
        description="Name of the playbook, unique among the playbooks: letters, digits, _ and - "
        "(up to 128)."
    )
    description: str = Field(default="", description="What the playbook is for, in words.")
    triggers: Triggers = Field(
        default_factory=list,
        alias="trigger",
        description="Alerts that start the playbook: one trigger, or a list of them (e.g. the "
        "same case reported by GuardDuty and by Security Hub). An alert is handled by the first "
        "trigger it matches, in the order written, so it starts or joins one run of the "
        "playbook at most; none: started by hand only.",
    )
    mode: Mode | None = Field(
        default=None,
        description="How its runs go when an alert (or a hand start naming no mode) starts "
        "them: live, or dry_run, a rehearsal that investigates, narrates and asks approval as "
        "live would but changes nothing in AWS (shadow mode); none: RIPOSTE_DEFAULT_MODE.",
    )
    vars: dict[str, Any] = Field(default_factory=dict, description="Initial ``vars`` values.")
    steps: list[Step] = Field(min_length=1, description="The steps, run in order (one or more).")
    on_failure: OnFailure | None = Field(
        default=None,
        description="Who is told when a run fails or is cancelled; none: "
        "RIPOSTE_FAILURE_NOTIFY, else whoever its approvals were sent to.",
    )

    def step(self, step_id: str) -> Step:
        """Return the step called ``step_id``."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def covering(self, step_id: str) -> list[str]:
        """The steps whose approval also authorises ``step_id`` (its ``covers`` lists it)."""
        return [
            step.id
            for step in self.steps
            if step.approval is not None and step_id in step.approval.covers
        ]
