"""Check a trigger's values against the alerts Riposte's normalizers really produce.

Sources, kinds, resource types and principal types below are what ``engine.normalize`` writes
(``tests/unit/test_playbook_checks.py`` normalizes every sample payload and proves each value it
sees is listed). An alert posted to the generic endpoint carries the source and kind it is posted
with, and Security Hub findings name any ASFF resource type, so a value not listed is refused only
when it is a near miss of one that is (``gaurdduty``): a different name may be a real one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from engine.checks import Finding, did_you_mean
from engine.spec import Trigger

# Each normalizer's source and the kinds it gives (``generic``: the generic endpoint's default).
KINDS_OF_SOURCE: Mapping[str, tuple[str, ...]] = {
    "cloudtrail": ("api-call", "console-signin", "console-action", "service-event"),
    "cloudwatch": ("alarm",),
    "eventbridge": ("generic",),
    "generic": ("generic",),
    "guardduty": ("finding",),
    "securityhub": ("finding", "custom-action", "insight"),
    "sns": ("generic",),
}
# Resource types in Security Hub's vocabulary that the normalizers name (payload._ARN_TYPES,
# GuardDuty's resources, CloudTrail's instances); "Other" is an ARN of any other service.
RESOURCE_TYPES = (
    "AwsCloudWatchAlarm", "AwsEc2Instance", "AwsEc2SecurityGroup", "AwsEc2Volume",
    "AwsIamAccessKey", "AwsIamPolicy", "AwsIamRole", "AwsIamUser", "AwsLambdaFunction",
    "AwsS3Bucket", "Other",
)
# CloudTrail's userIdentity types (CloudTrail, GuardDuty) and Security Hub's principal types.
PRINCIPAL_TYPES = (
    "AWSAccount", "AWSService", "AssumedRole", "FederatedUser", "IAMUser", "IdentityCenterUser",
    "Role", "Root", "SAMLUser", "Unknown", "WebIdentityUser",
)
# Sources whose event name is an AWS API call (CloudTrail's eventName, GuardDuty's api).
_API_SOURCES = frozenset({"cloudtrail", "guardduty"})
# The services whose calls Riposte's playbooks watch and whose resources its actions change.
_API_SERVICES = ("ec2", "iam", "sts", "s3")
_SIGN_IN_EVENTS = ("ConsoleLogin", "CheckMfa", "ExitRole", "GetSigninToken", "RenewRole",
                   "SwitchRole")
# How close an unlisted value must be to a listed one to be called a typo of it.
_NEAR = 0.75
_NEAR_API = 0.85  # API names share long words (…Instances): only a very near miss is a typo


def trigger_value_problems(trigger: Trigger, name: str = "trigger") -> list[Finding]:
    """Return the values of one trigger no alert will have, with locations inside the trigger.

    ``name`` is how messages call the trigger (``trigger[1]`` in a list of several).
    """
    problems: list[Finding] = []
    problems += _near_misses(name, ("source",), trigger.source, KINDS_OF_SOURCE, "source")
    problems += _kind_problems(name, trigger)
    if trigger.event_name and trigger.source and set(trigger.source) <= _API_SOURCES:
        problems += _near_misses(name, ("event_name",), trigger.event_name, api_event_names(),
                                 "event name", cutoff=_NEAR_API)
    if trigger.resources is not None:
        problems += _near_misses(name, ("resources", "type"), trigger.resources.type,
                                 RESOURCE_TYPES, "resource type")
    problems += _near_misses(name, ("principal_type",), trigger.principal_type, PRINCIPAL_TYPES,
                             "principal type")
    floor = trigger.severity_at_least
    if isinstance(floor, int) and not 0 <= floor <= 100:
        problems.append((("severity_at_least",), f"{name}.severity_at_least: {floor} is not a "
                         "severity: alerts have 0 to 100 (or write INFORMATIONAL, LOW, MEDIUM, "
                         "HIGH or CRITICAL)"))
    return problems


@functools.cache
def api_event_names() -> frozenset[str]:
    """Return the API calls of the services Riposte watches, as CloudTrail names them."""
    import botocore.session  # a few tenths of a second, paid only by a trigger that needs it

    loader = botocore.session.get_session().get_component("data_loader")
    names = set(_SIGN_IN_EVENTS)
    for service in _API_SERVICES:
        names.update(loader.load_service_model(service, "service-2")["operations"])
    return frozenset(names)


def _kind_problems(name: str, trigger: Trigger) -> list[Finding]:
    sources = set(trigger.source)
    if not sources or not sources <= set(KINDS_OF_SOURCE) or "generic" in sources:
        every = {kind for kinds in KINDS_OF_SOURCE.values() for kind in kinds}
        return _near_misses(name, ("kind",), trigger.kind, every, "kind")
    allowed = sorted({kind for source in sources for kind in KINDS_OF_SOURCE[source]})
    named = " or ".join(sorted(sources))
    return [
        (("kind", index), f"{name}.kind: no {named} alert has kind {kind!r}"
         f"{did_you_mean(kind, allowed)}; {named} alerts have {', '.join(allowed)}")
        for index, kind in enumerate(trigger.kind)
        if kind not in allowed
    ]


def _near_misses(
    name: str, loc: tuple[str, ...], values: Iterable[str], known: Iterable[str], what: str,
    *, cutoff: float = _NEAR,
) -> list[Finding]:
    listed = sorted(known)
    field = name + "." + ".".join(loc)
    problems: list[Finding] = []
    for index, value in enumerate(values):
        if value in listed:
            continue
        hint = did_you_mean(value, listed, cutoff=cutoff)
        if hint:
            known_text = f"; the {what}s are {', '.join(listed)}" if len(listed) <= 12 else ""
            problems.append(((*loc, index),
                             f"{field}: no alert has {what} {value!r}{hint}{known_text}"))
    return problems
