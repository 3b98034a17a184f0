"""Read untrusted AWS payloads defensively and assemble the normalized alert.

Every normalizer reads through these functions: a field of the wrong type counts as missing,
strings are stripped, and the only exception that leaves this package is ``UnsupportedPayload``.

The seed's artifacts that playbooks match and group on are fields of the alert itself:
``event_time`` (when it happened, parsed from the payload's ISO 8601 text; None when missing or
unreadable), ``event_name`` (the API call / finding's API / alarm name), ``source_ip``,
``user_agent`` and ``mfa_used`` (bool | None: whether the sign-in / session used MFA).

``details`` of every alert is a dict with these keys (always present, ``None`` / ``[]`` when the
payload does not say):

- ``user_name`` (str), ``arn`` (str): the principal's name and ARN (the seed's artifacts);
- ``account`` (str): the account it happened in;
- ``instance_ids`` (list[str]): every EC2 instance the alert names;
- ``state_changes`` (list of ``{"instance_id", "previous", "current"}``): instance state names;
- ``extra`` (dict): source-specific facts (alarm reason, finding product, action name, …);
- ``delivery`` (dict | None): how it arrived when wrapped (``transport``: "eventbridge" | "sns",
  the envelope id, detail-type or topic);
- ``raw``: the original payload verbatim. For an event carrying several findings, ``raw`` is the
  finding itself and ``envelope`` holds the event's other top-level fields (copying the whole event
  into every alert would make an N-finding event cost N² storage).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from botocore.utils import ArnParser

from engine.alerts import (
    SEVERITY_OF_LABEL,
    NormalizedAlert,
    Principal,
    Resource,
    event_time_in_range,
    severity_label,
)

# Values AWS writes where it withholds or lacks the real one: treated as missing.
PLACEHOLDERS = frozenset({"", "HIDDEN_DUE_TO_SECURITY_REASONS"})
TITLE_LIMIT = 1024
_ARNS = ArnParser()


class UnsupportedPayload(ValueError):
    """The payload is not the shape this normalizer reads (the message says what is wrong)."""


def require_object(value: object, what: str) -> dict[str, Any]:
    """Return ``value`` if it is a JSON object, else raise ``UnsupportedPayload`` naming it."""
    if not isinstance(value, dict):
        raise UnsupportedPayload(f"{what} must be a JSON object, not {json_type(value)}")
    return value


def json_type(value: object) -> str:
    """Name the JSON type of a value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def text(value: object) -> str | None:
    """Return a stripped string, or None for anything that is not a meaningful string.

    Numbers become their decimal text (an account id sent as a number is still an id).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else None
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    return None if stripped in PLACEHOLDERS else stripped


def obj(value: object) -> dict[str, Any]:
    """Return ``value`` if it is an object, else an empty one."""
    return value if isinstance(value, dict) else {}


def objects(value: object) -> list[dict[str, Any]]:
    """Return the objects in a list (other members skipped); anything else gives []."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def pick(mapping: dict[str, Any], *names: str) -> Any:
    """Return the first present key among ``names``, matched case-insensitively.

    GuardDuty findings arrive camelCase from EventBridge and PascalCase from boto3 / the CLI.
    """
    for name in names:
        if name in mapping:
            return mapping[name]
    lowered = {key.lower(): key for key in mapping if isinstance(key, str)}
    for name in names:
        key = lowered.get(name.lower())
        if key is not None:
            return mapping[key]
    return None


def dig(mapping: dict[str, Any], *path: str) -> Any:
    """Follow ``path`` through nested objects (case-insensitive keys); None when it breaks."""
    current: Any = mapping
    for name in path:
        if not isinstance(current, dict):
            return None
        current = pick(current, name)
    return current


def number(value: object) -> float | None:
    """Return a finite number from a number or a numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def timestamp(value: object) -> datetime | None:
    """Read an ISO 8601 time ("2020-11-06T03:21:39Z", "…+0000"); naive means UTC; else None."""
    written = text(value)
    if written is None:
        return None
    try:
        return event_time_in_range(datetime.fromisoformat(written))
    except ValueError:
        return None


def yes_no(value: object) -> bool | None:
    """Read "Yes"/"yes"/"NO"/"true"/"false" (any case) or a boolean; anything else is None."""
    if isinstance(value, bool):
        return value
    word = text(value)
    if word is None:
        return None
    return {"yes": True, "true": True, "no": False, "false": False}.get(word.lower())


def unique(values: Iterable[str | None]) -> list[str]:
    """Return the non-empty values once each, in first-seen order."""
    seen: dict[str, None] = {}
    for value in values:
        if value:
            seen.setdefault(value, None)
    return list(seen)


def arn_parts(arn: str | None) -> dict[str, str] | None:
    """Split an ARN into partition, service, region, account and resource; None if not one."""
    if not arn or not ArnParser.is_arn(arn):
        return None
    return dict(_ARNS.parse_arn(arn))


# (service, resource-type prefix) -> the ASFF resource type, so every source names alike.
_ARN_TYPES = {
    ("ec2", "instance"): "AwsEc2Instance",
    ("ec2", "security-group"): "AwsEc2SecurityGroup",
    ("ec2", "volume"): "AwsEc2Volume",
    ("iam", "user"): "AwsIamUser",
    ("iam", "role"): "AwsIamRole",
    ("iam", "policy"): "AwsIamPolicy",
    ("s3", ""): "AwsS3Bucket",
    ("lambda", "function"): "AwsLambdaFunction",
    ("cloudwatch", "alarm"): "AwsCloudWatchAlarm",
}


def resource_from_arn(arn: str, *, region: str | None = None) -> Resource | None:
    """Describe the resource an ARN names (type in Security Hub's vocabulary, or "Other")."""
    parts = arn_parts(arn)
    if parts is None:
        return None
    resource = parts["resource"]
    for separator in ("/", ":"):
        if separator in resource:
            prefix, _, name = resource.partition(separator)
            break
    else:
        prefix, name = "", resource
    kind = _ARN_TYPES.get((parts["service"], prefix))
    if kind is None and parts["service"] == "s3" and "/" not in resource:
        kind = "AwsS3Bucket"
    if kind == "AwsEc2Instance" and name:
        return Resource(type=kind, id=name, arn=arn, region=parts["region"] or region)
    return Resource(type=kind or "Other", id=arn, arn=arn, region=parts["region"] or region)


def instance_id_from(value: str | None) -> str | None:
    """Return the bare ``i-…`` id from an id or an instance ARN."""
    if not value:
        return None
    parts = arn_parts(value)
    if parts is not None:
        prefix, _, name = parts["resource"].partition("/")
        return name.strip() or None if prefix == "instance" else None
    return value if value.startswith("i-") else None


def score_and_label(score: float | None, label: object = None) -> tuple[int, str]:
    """Return a 0-100 score and its label; a label alone stands for its band's floor.

    When both are given and disagree, the label wins (it is what the sender displays) and the
    score is moved to the label's floor.
    """
    named = text(label)
    named = named.upper() if named else None
    if score is not None:
        clamped = max(0, min(100, int(score)))
        if named not in SEVERITY_OF_LABEL or severity_label(clamped) == named:
            return clamped, severity_label(clamped)
    if named in SEVERITY_OF_LABEL:
        return SEVERITY_OF_LABEL[named], named
    return 0, "INFORMATIONAL"


def new_details(raw: object) -> dict[str, Any]:
    """Return the details dict with every documented key present."""
    return {
        "user_name": None,
        "arn": None,
        "account": None,
        "instance_ids": [],
        "state_changes": [],
        "extra": {},
        "delivery": None,
        "raw": raw,
    }


def build_alert(
    *,
    source: str,
    kind: str,
    type_: str | None,
    title: str | None,
    score: int,
    label: str,
    account: str | None,
    region: str | None,
    principal: Principal | None,
    resources: list[Resource],
    details: dict[str, Any],
    dedup_key: str | None,
    event_time: str | None = None,
    event_name: str | None = None,
    source_ip: str | None = None,
    user_agent: str | None = None,
    mfa_used: bool | None = None,
) -> NormalizedAlert:
    """Assemble the alert; fills the artifacts the principal and resources already carry.

    ``event_time`` is the payload's text; one that is not a time leaves the alert without.
    """
    details["account"] = details["account"] or account
    if principal is not None:
        details["user_name"] = details["user_name"] or principal.name
        details["arn"] = details["arn"] or principal.arn
    details["instance_ids"] = unique(
        [*details["instance_ids"], *(r.id for r in resources if r.type == "AwsEc2Instance")]
    )
    return NormalizedAlert.model_validate(
        {
            "source": source,
            "kind": kind,
            "type": type_ or "",
            "title": (title or type_ or f"{source} {kind}")[:TITLE_LIMIT],
            "severity": score,
            "severity_label": label,
            "account": account,
            "region": region,
            "principal": principal,
            "resources": dedupe_resources(resources),
            "event_time": timestamp(event_time),
            "event_name": event_name,
            "source_ip": source_ip,
            "user_agent": user_agent,
            "mfa_used": mfa_used,
            "details": details,
            "dedup_key": dedup_key,
        }
    )


def dedupe_resources(resources: list[Resource]) -> list[Resource]:
    """Drop repeats of the same (type, id), keeping the first (usually the richest)."""
    seen: dict[tuple[str, str], Resource] = {}
    for resource in resources:
        seen.setdefault((resource.type, resource.id), resource)
    return list(seen.values())


def tags_from(value: object) -> dict[str, str]:
    """Read tags given as a {key: value} map or as [{"key"/"Key", "value"/"Value"}] pairs."""
    tags: dict[str, str] = {}
    if isinstance(value, dict):
        for key, tag_value in value.items():
            name, content = text(key), text(tag_value)
            if name is not None:
                tags[name] = content or ""
    for pair in objects(value):
        name, content = text(pick(pair, "key")), text(pick(pair, "value"))
        if name is not None:
            tags[name] = content or ""
    return tags
