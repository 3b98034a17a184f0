"""Normalize CloudTrail records: one alert per record (log file, single record or EventBridge).

- source ``cloudtrail``; kind from ``eventType``: AwsApiCall → ``api-call``, AwsConsoleSignIn →
  ``console-signin``, AwsServiceEvent → ``service-event``, AwsConsoleAction → ``console-action``
  (a ConsoleLogin from signin.amazonaws.com is a ``console-signin`` even without eventType);
- type: ``eventName`` (stripped: the seed's record has " TerminateInstances");
- severity: CloudTrail rates nothing, so every record is INFORMATIONAL (0); playbooks select
  records by type and thresholds, not by severity;
- account: ``recipientAccountId`` (where it happened), else ``userIdentity.accountId``;
- principal, for every ``userIdentity.type``:
  IAMUser / Root / SAMLUser / WebIdentityUser / Unknown → ``userName`` (Root without one: "root");
  AssumedRole → the role (``sessionIssuer.userName``, else from the ARN
  ``assumed-role/<role>/<session>``); the session name goes to ``details.extra.role_session_name``;
  FederatedUser → the name after ``federated-user/`` in the ARN (else the principalId's tail);
  AWSService → ``invokedBy``; AWSAccount → the calling account id;
  IdentityCenterUser → ``userName``, else ``onBehalfOf.userName`` / ``onBehalfOf.userId``;
  no ``userIdentity`` → no principal.
- resources: EC2 instances from ``requestParameters.instancesSet.items``,
  ``requestParameters.instanceId`` and ``responseElements.instancesSet.items``, plus the record's
  ``resources`` list (data events);
- dedup_key: ``cloudtrail:<eventID>``;
- event_time ``eventTime``, event_name ``eventName``, source_ip ``sourceIPAddress``, user_agent
  ``userAgent``; mfa_used from ``additionalEventData.MFAUsed`` (any case), else the session's
  ``mfaAuthenticated``;
- details: the documented artifacts; ``state_changes`` from responseElements' previousState /
  currentState names; ``extra`` holds event_source, error_code, error_message, outcome
  (ConsoleLogin Success / Failure) and session details.
"""

from __future__ import annotations

from typing import Any

from engine.alerts import NormalizedAlert, Principal, Resource
from engine.normalize.payload import (
    UnsupportedPayload,
    build_alert,
    dig,
    new_details,
    obj,
    objects,
    require_object,
    resource_from_arn,
    text,
    unique,
    yes_no,
)

_KINDS = {
    "awsapicall": "api-call",
    "awsconsolesignin": "console-signin",
    "awsserviceevent": "service-event",
    "awsconsoleaction": "console-action",
}
CLOUDTRAIL_EVIDENCE = ("eventName", "eventSource", "eventID", "userIdentity", "eventTime")


def normalize_cloudtrail_file(doc: object) -> list[NormalizedAlert]:
    """Normalize a CloudTrail log file (``{"Records": [...]}``): one alert per record."""
    body = require_object(doc, "a CloudTrail log file")
    records = body.get("Records")
    if not isinstance(records, list):
        raise UnsupportedPayload("a CloudTrail log file needs a 'Records' array")
    alerts = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise UnsupportedPayload(f"Records[{index}] must be a JSON object")
        alerts.append(normalize_cloudtrail_record(record, raw=record))
    return alerts


def normalize_cloudtrail(doc: object) -> list[NormalizedAlert]:
    """Normalize a log file or one bare record, whichever ``doc`` is."""
    body = require_object(doc, "a CloudTrail payload")
    if "Records" in body:
        return normalize_cloudtrail_file(body)
    return [normalize_cloudtrail_record(body)]


def normalize_cloudtrail_record(record: object, *, raw: object = None) -> NormalizedAlert:
    """Normalize one CloudTrail record; ``raw`` is what to keep verbatim (default: the record)."""
    body = require_object(record, "a CloudTrail record")
    if not any(key in body for key in CLOUDTRAIL_EVIDENCE):
        raise UnsupportedPayload(
            "not a CloudTrail record: it has none of " + ", ".join(CLOUDTRAIL_EVIDENCE)
        )
    details = new_details(body if raw is None else raw)
    identity = body.get("userIdentity")
    principal = principal_of(identity, details["extra"]) if isinstance(identity, dict) else None
    event_name = text(body.get("eventName"))
    event_source = text(body.get("eventSource"))
    region = text(body.get("awsRegion"))
    account = text(body.get("recipientAccountId")) or (principal.account if principal else None)

    request, response = obj(body.get("requestParameters")), obj(body.get("responseElements"))
    requested = [text(item.get("instanceId")) for item in _instance_items(request)]
    responded = _instance_items(response)
    instance_ids = unique([*requested, text(request.get("instanceId"))])
    instance_ids = unique([*instance_ids, *(text(i.get("instanceId")) for i in responded)])
    resources = [Resource(type="AwsEc2Instance", id=i, region=region) for i in instance_ids]
    for listed in objects(body.get("resources")):
        arn = text(listed.get("ARN"))
        described = resource_from_arn(arn, region=region) if arn else None
        if described is not None:
            resources.append(described)

    additional = obj(body.get("additionalEventData"))
    mfa = yes_no(additional.get("MFAUsed"))
    if mfa is None and isinstance(identity, dict):
        mfa = yes_no(dig(identity, "sessionContext", "attributes", "mfaAuthenticated"))
    outcome = text(response.get("ConsoleLogin"))
    details.update(instance_ids=instance_ids, state_changes=_state_changes(responded))
    details["extra"].update(
        event_source=event_source,
        event_type=text(body.get("eventType")),
        error_code=text(body.get("errorCode")),
        error_message=text(body.get("errorMessage")),
        outcome=outcome,
    )
    kind = _kind(body, event_name, event_source)
    event_id = text(body.get("eventID"))
    return build_alert(
        source="cloudtrail",
        kind=kind,
        type_=event_name,
        title=_title(event_name, event_source, principal, details["extra"]),
        score=0,
        label="INFORMATIONAL",
        account=account,
        region=region,
        principal=principal,
        resources=resources,
        details=details,
        dedup_key=f"cloudtrail:{event_id}" if event_id else None,
        event_time=text(body.get("eventTime")),
        event_name=event_name,
        source_ip=text(body.get("sourceIPAddress")),
        user_agent=text(body.get("userAgent")),
        mfa_used=mfa,
    )


def principal_of(identity: dict[str, Any], extra: dict[str, Any]) -> Principal:
    """Describe who made the call from a ``userIdentity`` element of any type."""
    kind = text(identity.get("type"))
    arn = text(identity.get("arn"))
    account = text(identity.get("accountId"))
    issuer = obj(dig(identity, "sessionContext", "sessionIssuer"))
    name = text(identity.get("userName"))
    if kind == "Root":
        name = name or "root"
    elif kind == "AssumedRole":
        role, session = _assumed_role(arn)
        name = text(issuer.get("userName")) or role or name
        extra["role_session_name"] = session
        extra["session_issuer_arn"] = text(issuer.get("arn"))
    elif kind == "FederatedUser":
        name = (
            name or _after(arn, "federated-user/") or _after(text(identity.get("principalId")), ":")
        )
        extra["session_issuer_arn"] = text(issuer.get("arn"))
    elif kind == "AWSService":
        name = text(identity.get("invokedBy")) or name
    elif kind == "AWSAccount":
        name = name or account
    elif kind == "IdentityCenterUser":
        behalf = obj(identity.get("onBehalfOf"))
        name = name or text(behalf.get("userName")) or text(behalf.get("userId"))
        extra["identity_store_arn"] = text(behalf.get("identityStoreArn"))
    if kind in ("SAMLUser", "WebIdentityUser"):
        extra["identity_provider"] = text(identity.get("identityProvider"))
    if identity.get("invokedBy") is not None:
        extra["invoked_by"] = text(identity.get("invokedBy"))
    return Principal(
        type=kind,
        name=name,
        arn=arn,
        access_key_id=text(identity.get("accessKeyId")),
        account=account,
    )


def _assumed_role(arn: str | None) -> tuple[str | None, str | None]:
    rest = _after(arn, ":assumed-role/")
    if rest is None:
        return None, None
    role, _, session = rest.partition("/")
    return role or None, session or None


def _after(value: str | None, marker: str) -> str | None:
    if not value or marker not in value:
        return None
    return value.split(marker, 1)[1].strip() or None


def _instance_items(section: dict[str, Any]) -> list[dict[str, Any]]:
    return objects(obj(section.get("instancesSet")).get("items"))


def _state_changes(items: list[dict[str, Any]]) -> list[dict[str, str | None]]:
    changes = []
    for item in items:
        previous = text(obj(item.get("previousState")).get("name"))
        current = text(obj(item.get("currentState")).get("name"))
        if previous or current:
            changes.append(
                {
                    "instance_id": text(item.get("instanceId")),
                    "previous": previous,
                    "current": current,
                }
            )
    return changes


def _kind(body: dict[str, Any], event_name: str | None, event_source: str | None) -> str:
    event_type = text(body.get("eventType"))
    if event_type and event_type.lower() in _KINDS:
        return _KINDS[event_type.lower()]
    if event_name == "ConsoleLogin" and event_source == "signin.amazonaws.com":
        return "console-signin"
    return "api-call"


def _title(
    event_name: str | None,
    event_source: str | None,
    principal: Principal | None,
    extra: dict[str, Any],
) -> str:
    who = principal.name if principal and principal.name else "an unknown principal"
    title = f"{event_name or 'CloudTrail event'} by {who}"
    if event_source:
        title += f" on {event_source}"
    failure = extra.get("error_code") or ("Failure" if extra.get("outcome") == "Failure" else None)
    return f"{title} (failed: {failure})" if failure else title
