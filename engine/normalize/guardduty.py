"""Normalize GuardDuty findings (a "GuardDuty Finding" event's detail, or GetFindings output).

Keys are read case-insensitively: EventBridge delivers camelCase, boto3 and the CLI PascalCase.

Severity: GuardDuty scores 0.1-8.9 (9.0-10.0 for its critical findings). The 0-100 score is
``floor(severity × 10)`` clamped to 0-100, so GuardDuty's bands land on Security Hub's:

    GuardDuty severity   score     label
    0.1 - 0.9            1 - 9     LOW
    1.0 - 3.9            10 - 39   LOW
    4.0 - 6.9            40 - 69   MEDIUM
    7.0 - 8.9            70 - 89   HIGH
    9.0 - 10.0           90 - 100  CRITICAL
    missing / not a number          0  INFORMATIONAL

- source ``guardduty``, kind ``finding``, type the finding type
  (e.g. ``UnauthorizedAccess:IAMUser/ConsoleLogin``);
- principal from ``resource.accessKeyDetails`` (userType, userName, accessKeyId);
- resources: ``resource.instanceDetails`` (instance id, tags, availability zone as region
  fallback), the access key, ``s3BucketDetails``;
- dedup_key ``guardduty:<id>@<updatedAt>``;
- source_ip from the action's remoteIpDetails, event_name the API called (if any), user_agent
  the API call's, event_time ``service.eventLastSeen`` (else updatedAt);
- details ``extra`` holds finding id / arn, description, count, action type, resource role.
"""

from __future__ import annotations

import math
from typing import Any

from engine.alerts import NormalizedAlert, Principal, Resource
from engine.normalize.payload import (
    build_alert,
    dig,
    new_details,
    number,
    obj,
    objects,
    pick,
    require_object,
    resource_from_arn,
    score_and_label,
    tags_from,
    text,
)

_ACTIONS = (
    "awsApiCallAction",
    "networkConnectionAction",
    "portProbeAction",
    "dnsRequestAction",
    "kubernetesApiCallAction",
    "rdsLoginAttemptAction",
)


def guardduty_score(severity: object) -> tuple[int, str]:
    """Map GuardDuty's 0.1-10 severity to a 0-100 score and label (table in module docs)."""
    value = number(severity)
    if value is None:
        return score_and_label(None)
    clamped = max(0.0, min(10.0, value))
    # A tiny epsilon so 7.0 stored as 6.9999999 still lands in HIGH.
    return score_and_label(float(math.floor(clamped * 10 + 1e-6)))


def normalize_guardduty_finding(
    finding: object,
    *,
    account: str | None = None,
    region: str | None = None,
    raw: object = None,
) -> NormalizedAlert:
    """Normalize one GuardDuty finding; ``account``/``region`` are the envelope's fallbacks."""
    body = require_object(finding, "a GuardDuty finding")
    resource = obj(pick(body, "resource"))
    service = obj(pick(body, "service"))
    finding_account = text(pick(body, "accountId")) or account
    finding_region = text(pick(body, "region")) or region

    resources: list[Resource] = []
    instance = obj(pick(resource, "instanceDetails"))
    instance_id = text(pick(instance, "instanceId"))
    if instance_id:
        zone = text(pick(instance, "availabilityZone"))
        resources.append(
            Resource(
                type="AwsEc2Instance",
                id=instance_id,
                region=finding_region or (zone[:-1] if zone else None),
                tags=tags_from(pick(instance, "tags")),
            )
        )
    key = obj(pick(resource, "accessKeyDetails"))
    principal = None
    if key:
        principal = Principal(
            type=text(pick(key, "userType")),
            name=text(pick(key, "userName")),
            access_key_id=text(pick(key, "accessKeyId")),
            account=finding_account,
        )
        if principal.access_key_id:
            resources.append(
                Resource(type="AwsIamAccessKey", id=principal.access_key_id, region=finding_region)
            )
    for bucket in objects(pick(resource, "s3BucketDetails")):
        arn, name = text(pick(bucket, "arn")), text(pick(bucket, "name"))
        described = resource_from_arn(arn, region=finding_region) if arn else None
        if described is None and name:
            described = Resource(type="AwsS3Bucket", id=name, arn=arn, region=finding_region)
        if described is not None:
            resources.append(described)

    action = obj(pick(service, "action"))
    details = new_details(body if raw is None else raw)
    finding_id, updated = text(pick(body, "id")), text(pick(body, "updatedAt"))
    details["extra"].update(
        finding_id=finding_id,
        finding_arn=text(pick(body, "arn")),
        description=text(pick(body, "description")),
        count=number(pick(service, "count")),
        action_type=text(pick(action, "actionType")),
        resource_role=text(pick(service, "resourceRole")),
        resource_type=text(pick(resource, "resourceType")),
    )
    finding_type = text(pick(body, "type"))
    score, label = guardduty_score(pick(body, "severity"))
    return build_alert(
        source="guardduty",
        kind="finding",
        type_=finding_type,
        title=text(pick(body, "title")) or finding_type,
        score=score,
        label=label,
        account=finding_account,
        region=finding_region,
        principal=principal,
        resources=resources,
        details=details,
        dedup_key=f"guardduty:{finding_id}@{updated or ''}" if finding_id else None,
        event_time=text(pick(service, "eventLastSeen")) or updated,
        event_name=text(dig(action, "awsApiCallAction", "api")),
        source_ip=_remote_ip(action),
        user_agent=text(dig(action, "awsApiCallAction", "userAgent", "fullUserAgent")),
    )


def _remote_ip(action: dict[str, Any]) -> str | None:
    for name in _ACTIONS:
        found = text(dig(action, name, "remoteIpDetails", "ipAddressV4"))
        if found:
            return found
    for probe in objects(dig(action, "portProbeAction", "portProbeDetails")):
        found = text(dig(probe, "remoteIpDetails", "ipAddressV4"))
        if found:
            return found
    return None
