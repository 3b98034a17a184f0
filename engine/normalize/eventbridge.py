"""Normalize EventBridge events: dispatch on ``detail-type``, anything unknown becomes generic.

Detail-types are compared case-insensitively with hyphens and extra spaces ignored, so legacy
and documented spellings match alike:

    Security Hub Findings - Imported      one ``securityhub`` finding alert per detail.findings
    Security Hub Findings - Custom Action one ``custom-action`` alert per finding
      (also "Security Findings - Custom Action", the user guide's spelling)
    Security Hub Insight Results          one ``insight`` alert
    GuardDuty Finding                     one ``guardduty`` finding alert
    AWS API Call via CloudTrail,          one ``cloudtrail`` alert (any "… via CloudTrail")
    AWS Console Sign In via CloudTrail, …
    CloudWatch Alarm State Change         one ``cloudwatch`` alarm alert
    anything else                         one generic alert (source ``eventbridge``)

An event whose detail-type is missing but whose source is aws.securityhub / aws.guardduty and whose
detail has the matching shape is read as that source.

dedup_key: the most specific natural key wins — a finding's (Id + UpdatedAt), a CloudTrail
record's eventID — so the same thing delivered by two routes is one alert; events with no
inner key use ``eventbridge:<id>``. ``details.delivery`` records the envelope (id, detail-type,
source, time).
"""

from __future__ import annotations

import re
from typing import Any

from engine.alerts import NormalizedAlert, Resource
from engine.normalize.cloudtrail import CLOUDTRAIL_EVIDENCE, normalize_cloudtrail_record
from engine.normalize.cloudwatch import normalize_alarm_event
from engine.normalize.guardduty import normalize_guardduty_finding
from engine.normalize.payload import (
    UnsupportedPayload,
    build_alert,
    new_details,
    obj,
    require_object,
    resource_from_arn,
    text,
)
from engine.normalize.securityhub import (
    normalize_securityhub_finding,
    normalize_securityhub_insight,
)

_IMPORTED = {"security hub findings imported", "security hub findings"}
_CUSTOM_ACTION = {"security hub findings custom action", "security findings custom action"}
_INSIGHT = {"security hub insight results", "security hub insight result"}
_GUARDDUTY = {"guardduty finding"}
_ALARM = {"cloudwatch alarm state change"}


def normalize_eventbridge_delivery(body: object) -> list[NormalizedAlert]:
    """Normalize what an API destination posts: one event or a JSON array of events."""
    if isinstance(body, list):
        alerts: list[NormalizedAlert] = []
        for index, event in enumerate(body):
            if not isinstance(event, dict):
                raise UnsupportedPayload(f"event [{index}] must be a JSON object")
            alerts += normalize_eventbridge(event)
        return alerts
    return normalize_eventbridge(body)


def normalize_eventbridge(event: object) -> list[NormalizedAlert]:
    """Normalize one EventBridge event into its alerts (several for a multi-finding event)."""
    body = require_object(event, "an EventBridge event")
    if not any(key in body for key in ("detail-type", "source", "detail")):
        raise UnsupportedPayload(
            "not an EventBridge event: it has none of 'detail-type', 'source', 'detail'"
        )
    detail_type = text(body.get("detail-type"))
    family = _family(detail_type, text(body.get("source")), body.get("detail"))
    event_id = text(body.get("id"))
    account, region = text(body.get("account")), text(body.get("region"))
    delivery = {
        "transport": "eventbridge",
        "id": event_id,
        "detail_type": detail_type,
        "source": text(body.get("source")),
        "time": text(body.get("time")),
    }
    detail = body.get("detail")
    alerts: list[NormalizedAlert]
    if family in ("imported", "custom-action"):
        findings = obj(detail).get("findings")
        items = findings if isinstance(findings, list) else []
        envelope = {k: v for k, v in body.items() if k != "detail"}
        if isinstance(detail, dict):
            envelope["detail"] = {k: v for k, v in detail.items() if k != "findings"}
        alerts = []
        for index, finding in enumerate(items):
            if not isinstance(finding, dict):
                continue
            alert = normalize_securityhub_finding(
                finding,
                kind="finding" if family == "imported" else "custom-action",
                account=account,
                region=region,
                event_id=event_id,
                raw=finding if len(items) > 1 else body,
            )
            if len(items) > 1:
                alert.details["envelope"] = envelope
                alert.details["finding_index"] = index
            if family == "custom-action":
                alert.details["extra"]["action_name"] = text(obj(detail).get("actionName"))
            alerts.append(alert)
        if not alerts:
            alerts = [_generic(body, detail_type, event_id)]
    elif family == "insight":
        alerts = [normalize_securityhub_insight(body)]
    elif family == "guardduty" and isinstance(detail, dict):
        alerts = [normalize_guardduty_finding(detail, account=account, region=region, raw=body)]
    elif family == "cloudtrail" and _is_cloudtrail_record(detail):
        alert = normalize_cloudtrail_record(detail, raw=body)
        alert.account = alert.account or account
        alert.region = alert.region or region
        alert.details["account"] = alert.details["account"] or account
        alert.dedup_key = alert.dedup_key or _key(event_id)
        alerts = [alert]
    elif family == "alarm":
        alerts = [normalize_alarm_event(body, dedup_key=_key(event_id))]
    else:
        alerts = [_generic(body, detail_type, event_id)]
    for alert in alerts:
        alert.details["delivery"] = delivery
    return alerts


def _family(detail_type: str | None, source: str | None, detail: object) -> str:
    name = re.sub(r"[\s\-]+", " ", (detail_type or "").lower()).strip()
    if name in _IMPORTED:
        return "imported"
    if name in _CUSTOM_ACTION:
        return "custom-action"
    if name in _INSIGHT:
        return "insight"
    if name in _GUARDDUTY:
        return "guardduty"
    if name in _ALARM:
        return "alarm"
    if name.endswith("via cloudtrail"):
        return "cloudtrail"
    if not name and isinstance(detail, dict):
        if source == "aws.securityhub" and isinstance(detail.get("findings"), list):
            return "imported"
        if source == "aws.guardduty" and "type" in {str(k).lower() for k in detail}:
            return "guardduty"
    return "generic"


def _is_cloudtrail_record(detail: object) -> bool:
    return isinstance(detail, dict) and any(key in detail for key in CLOUDTRAIL_EVIDENCE)


def _generic(
    body: dict[str, Any], detail_type: str | None, event_id: str | None
) -> NormalizedAlert:
    source = text(body.get("source"))
    region = text(body.get("region"))
    arns = body.get("resources")
    resources: list[Resource] = []
    for arn in arns if isinstance(arns, list) else []:
        named = text(arn)
        described = resource_from_arn(named, region=region) if named else None
        if described is not None:
            resources.append(described)
    details = new_details(body)
    details["extra"]["event_source"] = source
    return build_alert(
        source="eventbridge",
        kind="generic",
        type_=detail_type,
        title=f"{detail_type or 'EventBridge event'} from {source or 'an unknown source'}",
        score=0,
        label="INFORMATIONAL",
        account=text(body.get("account")),
        region=region,
        principal=None,
        resources=resources,
        details=details,
        dedup_key=_key(event_id),
        event_time=text(body.get("time")),
        event_name=detail_type,
    )


def _key(event_id: str | None) -> str | None:
    return f"eventbridge:{event_id}" if event_id else None
