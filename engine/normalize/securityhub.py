"""Normalize Security Hub findings (ASFF) and insight results.

- source ``securityhub``; kind ``finding`` (Findings - Imported), ``custom-action`` (Findings -
  Custom Action) or ``insight`` (Insight Results);
- type: ``Types[0]``, else ProductFields' ``aws/guardduty/type`` / ``type``, else GeneratorId;
- severity: ``Severity.Label`` with ``Severity.Normalized`` as the score when it lies in the
  label's band; a label alone is its band's floor; Normalized alone gives its own band; neither:
  the legacy ``Severity.Product`` is not comparable across products, so INFORMATIONAL (0);
- account ``AwsAccountId``; region ``Region``, else the first resource's, else the event's;
- resources: ``Resources[]`` with Type, Id, Region, Tags; an AwsEc2Instance whose Id is an ARN
  gets the bare ``i-…`` id and the ARN in ``arn``; other Ids are kept as given (ARN in ``arn``
  when the Id is one);
- principal: from an AwsIamAccessKey resource (PrincipalName / UserName, AccessKeyId or the
  ``AWS::IAM::AccessKey:<id>`` Id), an AwsIamUser / AwsIamRole resource, or GuardDuty's
  ProductFields (``resource/accessKeyDetails/...``);
- dedup_key: ``securityhub:<Id>@<UpdatedAt>``; a custom action is a new request every time, so
  it is keyed ``securityhub-action:<event id>:<Id>``; insight results by the event id;
- details ``extra``: finding id, product, generator, workflow status, record state, compliance
  status, and ``note_updated_by`` (``Note.UpdatedBy``, so Riposte can ignore its own updates).
"""

from __future__ import annotations

from typing import Any

from engine.alerts import NormalizedAlert, Principal, Resource
from engine.normalize.payload import (
    build_alert,
    dig,
    instance_id_from,
    new_details,
    number,
    obj,
    objects,
    require_object,
    resource_from_arn,
    score_and_label,
    tags_from,
    text,
)


def normalize_securityhub_finding(
    finding: object,
    *,
    kind: str = "finding",
    account: str | None = None,
    region: str | None = None,
    event_id: str | None = None,
    raw: object = None,
) -> NormalizedAlert:
    """Normalize one ASFF finding; ``account``/``region`` are the envelope's fallbacks."""
    body = require_object(finding, "a Security Hub finding")
    fields = obj(body.get("ProductFields"))
    resources = [r for r in map(_resource, objects(body.get("Resources"))) if r is not None]
    finding_region = (
        text(body.get("Region")) or next((r.region for r in resources if r.region), None) or region
    )
    finding_account = text(body.get("AwsAccountId")) or account
    principal = _principal(objects(body.get("Resources")), fields, finding_account)

    severity = obj(body.get("Severity"))
    score, label = score_and_label(number(severity.get("Normalized")), severity.get("Label"))
    types = body.get("Types")
    finding_type = (
        (text(types[0]) if isinstance(types, list) and types else None)
        or text(fields.get("aws/guardduty/type"))
        or text(fields.get("type"))
        or text(body.get("GeneratorId"))
    )
    action = obj(body.get("Action"))
    details = new_details(body if raw is None else raw)
    finding_id, updated = text(body.get("Id")), text(body.get("UpdatedAt"))
    details["extra"].update(
        finding_id=finding_id,
        product_arn=text(body.get("ProductArn")),
        product_name=text(body.get("ProductName"))
        or text(fields.get("aws/securityhub/ProductName")),
        generator_id=text(body.get("GeneratorId")),
        description=text(body.get("Description")),
        workflow_status=text(dig(body, "Workflow", "Status")),
        record_state=text(body.get("RecordState")),
        compliance_status=text(dig(body, "Compliance", "Status")),
        note_updated_by=text(dig(body, "Note", "UpdatedBy")),
    )
    if kind == "custom-action":
        key = f"securityhub-action:{event_id or ''}:{finding_id}" if finding_id else None
    else:
        key = f"securityhub:{finding_id}@{updated or ''}" if finding_id else None
    return build_alert(
        source="securityhub",
        kind=kind,
        type_=finding_type,
        title=text(body.get("Title")) or finding_type,
        score=score,
        label=label,
        account=finding_account,
        region=finding_region,
        principal=principal,
        resources=resources,
        details=details,
        dedup_key=key,
        event_time=updated,
        event_name=text(dig(action, "AwsApiCallAction", "Api"))
        or text(fields.get("action/awsApiCallAction/api")),
        source_ip=text(dig(action, "AwsApiCallAction", "RemoteIpDetails", "IpAddressV4"))
        or text(dig(action, "NetworkConnectionAction", "RemoteIpDetails", "IpAddressV4"))
        or text(fields.get("action/awsApiCallAction/remoteIpDetails/ipAddressV4"))
        or text(dig(body, "Network", "SourceIpV4")),
    )


def normalize_securityhub_insight(event: dict[str, Any]) -> NormalizedAlert:
    """Normalize a "Security Hub Insight Results" event: one informational alert."""
    detail = obj(event.get("detail"))
    name = text(detail.get("insightName"))
    region = text(event.get("region"))
    resources = [
        r
        for r in (resource_from_arn(a, region=region) for a in _texts(event.get("resources")))
        if r is not None
    ]
    details = new_details(event)
    details["extra"].update(
        insight_arn=text(detail.get("insightArn")),
        action_name=text(detail.get("actionName")),
        result_type=text(detail.get("resultType")),
        results=detail.get("insightResults"),
    )
    event_id = text(event.get("id"))
    return build_alert(
        source="securityhub",
        kind="insight",
        type_=name or text(detail.get("resultType")),
        title=f"Security Hub insight results: {name}" if name else "Security Hub insight results",
        score=0,
        label="INFORMATIONAL",
        account=text(event.get("account")),
        region=region,
        principal=None,
        resources=resources,
        details=details,
        dedup_key=f"eventbridge:{event_id}" if event_id else None,
        event_time=text(event.get("time")),
        event_name=name,
    )


def _resource(item: dict[str, Any]) -> Resource | None:
    kind, ident = text(item.get("Type")), text(item.get("Id"))
    if not kind or not ident:
        return None
    region, tags = text(item.get("Region")), tags_from(item.get("Tags"))
    arn = ident if ident.startswith("arn:") else None
    if kind == "AwsEc2Instance":
        ident = instance_id_from(ident) or ident
    elif arn is None and kind == "AwsIamAccessKey":
        ident = ident.rsplit(":", 1)[-1].strip() or ident
    return Resource(type=kind, id=ident, arn=arn, region=region, tags=tags)


def _principal(
    items: list[dict[str, Any]], fields: dict[str, Any], account: str | None
) -> Principal | None:
    for item in items:
        kind, ident = text(item.get("Type")), text(item.get("Id")) or ""
        if kind == "AwsIamAccessKey":
            key = obj(dig(item, "Details", "AwsIamAccessKey"))
            key_id = text(key.get("AccessKeyId")) or (
                ident.rsplit(":", 1)[-1].strip() if "AccessKey:" in ident else None
            )
            return Principal(
                type=text(key.get("PrincipalType")),
                name=text(key.get("PrincipalName")) or text(key.get("UserName")),
                access_key_id=key_id or None,
                account=text(key.get("AccountId")) or account,
            )
        if kind in ("AwsIamUser", "AwsIamRole"):
            section = obj(dig(item, "Details", kind))
            name = text(section.get("UserName")) or text(section.get("RoleName"))
            arn = ident if ident.startswith("arn:") else None
            if name is None and arn:
                name = arn.rsplit("/", 1)[-1] or None
            return Principal(
                type="IAMUser" if kind == "AwsIamUser" else "Role",
                name=name,
                arn=arn,
                account=account,
            )
    name = text(fields.get("resource/accessKeyDetails/userName"))
    key_id = text(fields.get("resource/accessKeyDetails/accessKeyId"))
    if name or key_id:
        return Principal(
            type=text(fields.get("resource/accessKeyDetails/userType")),
            name=name,
            access_key_id=key_id,
            account=account,
        )
    return None


def _texts(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [t for t in map(text, value) if t]
