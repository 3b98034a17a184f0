"""Derive the EventBridge event patterns a playbook trigger needs: pure functions, no I/O.

A trigger names normalized alert fields (engine/spec.py ``Trigger``); the normalizers
(engine/normalize/) say which EventBridge event becomes which alert. This module reads them
backwards: for each alert source a trigger accepts, the narrowest pattern that still brings
every event whose alert the trigger could match. Never narrower (an event the trigger wants and
no rule forwards is an incident nobody sees), and as narrow as EventBridge can say; where it
cannot say something exactly, the pattern is a superset and ``Route.loose`` names what
Riposte's own trigger matching still filters on arrival.

Per source, alert field -> event field:

    cloudtrail   kind -> detail-type (api-call: "AWS API Call via CloudTrail", ...);
                 event_name / type -> detail.eventName (with the call's ``source`` and
                 detail.eventSource when ``CLOUDTRAIL_CALLS`` knows its service);
                 account, region -> the envelope's; principal_type -> detail.userIdentity.type;
                 severity: CloudTrail rates nothing (0), so a trigger asking more gets no rule.
    guardduty    "GuardDuty Finding"; type -> detail.type; severity -> detail.severity
                 (0.1-10: score >= N is severity >= N/10); account -> detail.accountId (a
                 delegated administrator receives its members' findings); region; event_name ->
                 the API call's name; principal_type -> accessKeyDetails.userType; one resource
                 type -> the detail that names it exists.
    securityhub  "Security Hub Findings - Imported" / "- Custom Action" (kind finding /
                 custom-action), "Security Hub Insight Results" (insight); type ->
                 detail.findings.Types; severity -> detail.findings.Severity.Label (the labels
                 whose band reaches the floor); account, region, resource types -> the findings'.
                 An event carries several findings and EventBridge matches each field on any of
                 them: Riposte then matches every finding on its own.
    eventbridge  (generic events) type -> detail-type.
    cloudwatch   alarms come through SNS (the hub's topic), not a rule.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from engine.alerts import SEVERITY_BANDS, SEVERITY_OF_LABEL
from engine.spec import Trigger
from engine.wiring.globs import glob_matchers, literal

API_CALL = "AWS API Call via CloudTrail"
CLOUDTRAIL_KINDS = {
    "api-call": API_CALL,
    "console-signin": "AWS Console Sign In via CloudTrail",
    "service-event": "AWS Service Event via CloudTrail",
    "console-action": "AWS Console Action via CloudTrail",
}
# Every CloudTrail detail-type ends so (the normalizer reads any "… via CloudTrail" as one).
ANY_CLOUDTRAIL = {"suffix": "via CloudTrail"}
SECURITYHUB_KINDS = {
    "finding": "Security Hub Findings - Imported",
    "custom-action": "Security Hub Findings - Custom Action",
}
INSIGHT = "Security Hub Insight Results"
# An alarm in the ALARM state is HIGH (engine/normalize/cloudwatch.py): the most an alarm gets.
_ALARM = SEVERITY_OF_LABEL["HIGH"]
# Sources reached without naming one: a trigger with no ``source`` takes any of these.
AWS_SOURCES = ("cloudtrail", "guardduty", "securityhub", "cloudwatch")


@dataclass(frozen=True)
class CloudTrailCall:
    """Where EventBridge puts one API call: its ``source``, eventSource and detail-type."""

    source: str
    event_source: str
    detail_type: str = API_CALL


def _calls(source: str, event_source: str, *names: str) -> dict[str, CloudTrailCall]:
    return {name: CloudTrailCall(source, event_source) for name in names}


# The calls whose service is known for sure (the shipped playbooks' and their neighbours'). A
# name missing here gets a pattern on the name alone: broader, never wrong.
CLOUDTRAIL_CALLS: dict[str, CloudTrailCall] = {
    **_calls("aws.ec2", "ec2.amazonaws.com", "TerminateInstances", "StopInstances",
             "StartInstances", "RunInstances", "ModifyInstanceAttribute", "CreateSnapshot",
             "DeleteSnapshot", "CreateImage", "DeregisterImage", "AuthorizeSecurityGroupIngress",
             "RevokeSecurityGroupIngress"),
    **_calls("aws.iam", "iam.amazonaws.com", "CreateUser", "DeleteUser", "CreateAccessKey",
             "UpdateAccessKey", "DeleteAccessKey", "CreateLoginProfile", "UpdateLoginProfile",
             "AttachUserPolicy", "PutUserPolicy", "AttachRolePolicy", "PutRolePolicy",
             "UpdateAssumeRolePolicy"),
    **_calls("aws.cloudtrail", "cloudtrail.amazonaws.com", "StopLogging", "DeleteTrail",
             "UpdateTrail", "PutEventSelectors"),
    **_calls("aws.s3", "s3.amazonaws.com", "PutBucketPolicy", "DeleteBucketPolicy",
             "PutBucketAcl", "PutBucketPublicAccessBlock", "DeleteBucket"),
    "ConsoleLogin": CloudTrailCall(
        "aws.signin", "signin.amazonaws.com", CLOUDTRAIL_KINDS["console-signin"]
    ),
}

# GuardDuty: the detail that names a resource of each type (engine/normalize/guardduty.py).
GUARDDUTY_RESOURCES = {
    "AwsIamAccessKey": ("detail", "resource", "accessKeyDetails", "accessKeyId"),
    "AwsEc2Instance": ("detail", "resource", "instanceDetails", "instanceId"),
}

Path = tuple[str, ...]


@dataclass(frozen=True)
class Route:
    """One event pattern a trigger needs; ``loose``: what Riposte still filters on arrival."""

    pattern: dict[str, Any]
    loose: tuple[str, ...] = ()


@dataclass
class TriggerRoutes:
    """Everything one trigger needs from AWS, and what of it no rule can bring (``unrouted``)."""

    routes: list[Route] = field(default_factory=list)
    alarms: bool = False
    unrouted: list[str] = field(default_factory=list)


def trigger_routes(trigger: Trigger) -> TriggerRoutes:
    """Return the event patterns (and the alarm route) a trigger needs."""
    floor = severity_floor(trigger)
    found = TriggerRoutes()
    sources = trigger.source or list(AWS_SOURCES)
    if not trigger.source:
        found.unrouted.append(
            "a trigger without a source also matches generic EventBridge events (any other "
            "detail-type); only the AWS security sources are routed (name source eventbridge "
            "and a type to route those)"
        )
    for source in sources:
        if source == "cloudwatch":
            found.alarms = (not trigger.kind or "alarm" in trigger.kind) and floor <= _ALARM
            if not found.alarms:
                found.unrouted.append(f"no CloudWatch alarm is of kind {trigger.kind} and "
                                      f"severity {trigger.severity_at_least} or more")
            continue
        family = _FAMILIES.get(source)
        if family is None:
            found.unrouted.append(
                f"source {source!r} is not an AWS event source: its alerts come through "
                "POST /v1/alerts or another webhook"
            )
            continue
        routes, notes = family(trigger, floor)
        found.routes += routes
        found.unrouted += notes
    return found


def severity_floor(trigger: Trigger) -> int:
    """Return the trigger's minimum severity as a 0-100 score (0 when it names none)."""
    floor = trigger.severity_at_least
    if floor is None:
        return 0
    return SEVERITY_OF_LABEL[floor] if isinstance(floor, str) else floor


def pattern_of(fields: dict[Path, list[Any]]) -> dict[str, Any]:
    """Nest ``{("detail", "type"): [...]}`` into an event pattern."""
    pattern: dict[str, Any] = {}
    for path, matchers in fields.items():
        node = pattern
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = matchers
    return pattern


class _Fields:
    """An event pattern being built: matchers per event field, and what stays loose."""

    def __init__(self) -> None:
        self.fields: dict[Path, list[Any]] = {}
        self.loose: list[str] = []

    def put(self, path: Path, values: list[Any]) -> None:
        """Select events whose field at ``path`` is any of ``values`` (nothing if empty)."""
        if values:
            self.fields[path] = list(values)

    def glob(self, path: Path, glob: str | None, what: str) -> None:
        """Select events whose field at ``path`` matches the glob, or a superset of them."""
        if glob is None:
            return
        matchers = glob_matchers(glob)
        if matchers.matchers is not None:
            self.fields[path] = matchers.matchers
        if not matchers.exact:
            self.loose.append(f"{what} {glob!r}")

    def route(self) -> Route:
        return Route(pattern_of(self.fields), tuple(self.loose))


def _cloudtrail(trigger: Trigger, floor: int) -> tuple[list[Route], list[str]]:
    if floor > 0:
        return [], [
            f"severity_at_least {trigger.severity_at_least}: CloudTrail rates nothing (every "
            "CloudTrail alert is INFORMATIONAL, 0), so no CloudTrail event can match"
        ]
    detail_types = [CLOUDTRAIL_KINDS[k] for k in trigger.kind if k in CLOUDTRAIL_KINDS]
    if trigger.kind and not detail_types:
        return [], [f"kind {trigger.kind}: no CloudTrail event is of it"]
    names = _event_names(trigger)
    if names is None:
        fields = _cloudtrail_fields(trigger, None, detail_types or [ANY_CLOUDTRAIL])
        fields.glob(("detail", "eventName"), trigger.type, "type")
        return [fields.route()], []
    routes = []
    by_call: dict[CloudTrailCall, list[str]] = {}
    for name in names:
        call = CLOUDTRAIL_CALLS.get(name)
        # A known call of another kind (ConsoleLogin under kind api-call) never matches.
        if call is not None and (not detail_types or call.detail_type in detail_types):
            by_call.setdefault(call, []).append(name)
    for call, called in by_call.items():
        fields = _cloudtrail_fields(trigger, call.source, [call.detail_type])
        fields.put(("detail", "eventSource"), [call.event_source])
        fields.put(("detail", "eventName"), called)
        routes.append(fields.route())
    unknown = [name for name in names if name not in CLOUDTRAIL_CALLS]
    if unknown:
        fields = _cloudtrail_fields(trigger, None, detail_types or [ANY_CLOUDTRAIL])
        fields.put(("detail", "eventName"), unknown)
        routes.append(fields.route())
    if not routes:
        what = f"type {trigger.type!r}, event_name {trigger.event_name}, kind {trigger.kind}"
        return [], [f"no CloudTrail event has {what} together"]
    return routes, []


def _event_names(trigger: Trigger) -> list[str] | None:
    """The exact event names a trigger accepts (type and event_name together); None: any."""
    if trigger.event_name:
        glob = trigger.type
        return [n for n in trigger.event_name if glob is None or fnmatch.fnmatchcase(n, glob)]
    single = literal(trigger.type) if trigger.type is not None else None
    return [single] if single is not None else None


def _cloudtrail_fields(trigger: Trigger, source: str | None, detail_types: list[Any]) -> _Fields:
    fields = _Fields()
    fields.put(("source",), [source] if source else [])
    fields.put(("detail-type",), detail_types)
    fields.put(("account",), trigger.account)
    fields.put(("region",), trigger.region)
    fields.put(("detail", "userIdentity", "type"), trigger.principal_type)
    if trigger.resources is not None:
        fields.loose.append("resources")
    return fields


def _guardduty(trigger: Trigger, floor: int) -> tuple[list[Route], list[str]]:
    if trigger.kind and "finding" not in trigger.kind:
        return [], [f"kind {trigger.kind}: GuardDuty alerts are findings"]
    fields = _Fields()
    fields.put(("source",), ["aws.guardduty"])
    fields.put(("detail-type",), ["GuardDuty Finding"])
    fields.put(("region",), trigger.region)
    fields.put(("detail", "accountId"), trigger.account)
    fields.glob(("detail", "type"), trigger.type, "type")
    if floor > 0:
        fields.put(("detail", "severity"), [{"numeric": [">=", floor / 10]}])
    fields.put(("detail", "service", "action", "awsApiCallAction", "api"), trigger.event_name)
    fields.put(("detail", "resource", "accessKeyDetails", "userType"), trigger.principal_type)
    wanted = _resource_types(trigger)
    if wanted == []:
        return [], ["resources: production instances are never of the other types it names"]
    if wanted is not None:
        path = GUARDDUTY_RESOURCES.get(wanted[0]) if len(wanted) == 1 else None
        if path is not None:
            fields.put(path, [{"exists": True}])
        if path is None or trigger.resources and trigger.resources.production:
            fields.loose.append("resources")
    return [fields.route()], []


def _resource_types(trigger: Trigger) -> list[str] | None:
    """The resource types an alert must name one of (None: any, or no filter)."""
    wanted = trigger.resources
    if wanted is None:
        return None
    if wanted.production:  # only EC2 instances can be production
        return ["AwsEc2Instance"] if not wanted.type or "AwsEc2Instance" in wanted.type else []
    return list(wanted.type) or None


def _securityhub(trigger: Trigger, floor: int) -> tuple[list[Route], list[str]]:
    kinds = trigger.kind or [*SECURITYHUB_KINDS, "insight"]
    detail_types = [SECURITYHUB_KINDS[k] for k in kinds if k in SECURITYHUB_KINDS]
    routes: list[Route] = []
    notes: list[str] = []
    if detail_types:
        routes += _securityhub_findings(trigger, floor, detail_types)
    if "insight" in kinds:
        if floor > 0:
            notes.append(f"severity_at_least {trigger.severity_at_least}: insight results are "
                         "INFORMATIONAL (0)")
        else:
            fields = _Fields()
            fields.put(("source",), ["aws.securityhub"])
            fields.put(("detail-type",), [INSIGHT])
            fields.put(("account",), trigger.account)
            fields.put(("region",), trigger.region)
            fields.glob(("detail", "insightName"), trigger.type, "type")
            if trigger.resources is not None:
                fields.loose.append("resources")
            routes.append(fields.route())
    if not routes and not notes:
        notes.append(f"kind {trigger.kind}: no Security Hub event is of it")
    return routes, notes


def _securityhub_findings(trigger: Trigger, floor: int, detail_types: list[str]) -> list[Route]:
    fields = _Fields()
    fields.put(("source",), ["aws.securityhub"])
    fields.put(("detail-type",), detail_types)
    findings = ("detail", "findings")
    fields.put((*findings, "AwsAccountId"), trigger.account)
    fields.put((*findings, "Region"), trigger.region)
    # Riposte reads a finding's first type; EventBridge matches any of its Types.
    fields.glob((*findings, "Types"), trigger.type, "type")
    if trigger.type is not None:
        fields.loose.append("type: the first of a finding's Types")
    if floor > 0:
        fields.put((*findings, "Severity", "Label"), _labels_reaching(floor))
        if floor not in SEVERITY_OF_LABEL.values():
            fields.loose.append(f"severity_at_least {floor} within its label's band")
    wanted = _resource_types(trigger)
    if wanted == []:
        return []
    if wanted is not None:
        fields.put((*findings, "Resources", "Type"), wanted)
    if trigger.resources is not None and trigger.resources.production:
        fields.loose.append("resources: production")
    if trigger.event_name or trigger.principal_type:
        fields.loose.append("event_name, principal_type")
    return [fields.route()]


def _labels_reaching(floor: int) -> list[str]:
    """The Security Hub labels whose band holds a score of ``floor`` or more, lowest first."""
    bands = sorted(SEVERITY_BANDS)  # (floor, label), lowest band first
    tops = [higher - 1 for higher, _ in bands[1:]] + [100]
    return [label for (_, label), top in zip(bands, tops, strict=True) if top >= floor]


def _eventbridge(trigger: Trigger, floor: int) -> tuple[list[Route], list[str]]:
    if floor > 0:
        return [], [f"severity_at_least {trigger.severity_at_least}: generic EventBridge "
                    "events are INFORMATIONAL (0)"]
    if trigger.type is None or glob_matchers(trigger.type).matchers is None:
        return [], ["source eventbridge without a type would forward every event: name the "
                    "detail-types in type"]
    if trigger.kind and "generic" not in trigger.kind:
        return [], [f"kind {trigger.kind}: generic EventBridge alerts are of kind generic"]
    fields = _Fields()
    fields.glob(("detail-type",), trigger.type, "type")
    fields.put(("account",), trigger.account)
    fields.put(("region",), trigger.region)
    if trigger.resources is not None or trigger.event_name or trigger.principal_type:
        fields.loose.append("resources, event_name, principal_type")
    return [fields.route()], []


_FAMILIES = {
    "cloudtrail": _cloudtrail,
    "guardduty": _guardduty,
    "securityhub": _securityhub,
    "eventbridge": _eventbridge,
}
