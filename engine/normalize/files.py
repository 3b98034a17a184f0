"""Read an alert file in any form Riposte ingests, through the webhooks' own normalizers.

A file (JSON, or gzipped JSON as CloudTrail writes its logs) may hold:

    an SNS HTTP body (``Type``: Notification …)     what POST /v1/webhooks/sns stores of it
    an EventBridge event, or an array of them        what POST /v1/webhooks/eventbridge stores
    a CloudTrail log file (``{"Records": [...]}``)   what POST /v1/webhooks/cloudtrail stores
      or one CloudTrail record
    a Security Hub (ASFF) or GuardDuty finding,      one alert per finding, as when the finding
      or GetFindings output (``{"Findings": [...]}``) arrives in its EventBridge event
    a normalized alert (it has ``severity_label``)   itself (what the database stores)
    anything else                                    the generic alert of POST /v1/alerts

The generic form's model belongs to the API (``api.schemas.AlertIn``), which the engine does not
import: the caller passes it in as ``generic``.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.alerts import NormalizedAlert
from engine.delivery_json import MalformedJson, UnstorableText, parse_delivery_json
from engine.normalize.cloudtrail import (
    CLOUDTRAIL_EVIDENCE,
    normalize_cloudtrail_file,
    normalize_cloudtrail_record,
)
from engine.normalize.eventbridge import normalize_eventbridge_delivery
from engine.normalize.guardduty import normalize_guardduty_finding
from engine.normalize.payload import UnsupportedPayload
from engine.normalize.securityhub import normalize_securityhub_finding
from engine.normalize.sns import normalize_sns_message

# Turns a generic alert body (POST /v1/alerts) into an alert; raises ValidationError.
GenericAlert = Callable[[dict[str, Any]], NormalizedAlert]

_GZIP_MAGIC = b"\x1f\x8b"
_SNS_TYPES = {"Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"}
# Keys only an ASFF finding has (GuardDuty's own findings say AccountId, not AwsAccountId).
_ASFF_KEYS = ("ProductArn", "AwsAccountId", "GeneratorId")


class AlertFileInvalid(ValueError):
    """A file that holds no alert Riposte reads; the message names the file and says why."""


def read_alert_file(
    path: Path, *, generic: GenericAlert, text: bytes | None = None
) -> list[NormalizedAlert]:
    """Return the alerts of one file (``text``: its bytes, already read, e.g. from stdin)."""
    try:
        body = path.read_bytes() if text is None else text
    except OSError as exc:
        raise AlertFileInvalid(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if body.startswith(_GZIP_MAGIC):
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise AlertFileInvalid(f"{path}: not a readable gzip file: {exc}") from None
    try:
        document = parse_delivery_json(body)
    except (MalformedJson, UnstorableText) as exc:
        raise AlertFileInvalid(f"{path}: not JSON Riposte reads: {exc}") from None
    try:
        alerts = alerts_in_document(document, generic=generic)
    except UnsupportedPayload as exc:
        raise AlertFileInvalid(f"{path}: {exc}") from None
    if not alerts:
        raise AlertFileInvalid(
            f"{path}: holds no event to rehearse (an SNS subscription message, an empty list?)"
        )
    return alerts


def read_alert_files(paths: Sequence[Path], *, generic: GenericAlert) -> list[NormalizedAlert]:
    """Return the alerts of every file, in event-time order (as a burst would arrive)."""
    return in_time_order(
        alert for path in paths for alert in read_alert_file(path, generic=generic)
    )


def in_time_order(alerts: Iterable[NormalizedAlert]) -> list[NormalizedAlert]:
    """Sort alerts by event time; one without a time counts as received now, as the store
    counts it (the sort is stable: files keep their order within one time)."""
    now = datetime.now(UTC)
    return sorted(alerts, key=lambda alert: alert.event_time or now)


def alerts_in_document(document: Any, *, generic: GenericAlert) -> list[NormalizedAlert]:
    """Normalize a parsed document of any form (module docstring); raise UnsupportedPayload."""
    if isinstance(document, list):
        if all(isinstance(item, dict) and _is_event(item) for item in document):
            return normalize_eventbridge_delivery(document)
        return [a for item in document for a in alerts_in_document(item, generic=generic)]
    if not isinstance(document, dict):
        raise UnsupportedPayload("an alert file holds a JSON object or an array of them")
    if document.get("Type") in _SNS_TYPES and "TopicArn" in document:
        return normalize_sns_message(None, document)
    if isinstance(document.get("Records"), list):
        return normalize_cloudtrail_file(document)
    if _is_event(document):
        return normalize_eventbridge_delivery(document)
    findings = document.get("Findings")
    if isinstance(findings, list):
        return [_finding(finding, index) for index, finding in enumerate(findings)]
    if _is_asff(document) or _is_guardduty(document):
        return [_finding(document, None)]
    if "severity_label" in document:
        return [_validated(lambda: NormalizedAlert.model_validate(document), "a normalized alert")]
    if any(key in document for key in CLOUDTRAIL_EVIDENCE):
        return [normalize_cloudtrail_record(document)]
    return [_validated(lambda: generic(document), "a POST /v1/alerts body")]


def _is_event(document: dict[str, Any]) -> bool:
    return "detail-type" in document or ("detail" in document and "source" in document)


def _is_asff(document: dict[str, Any]) -> bool:
    return any(key in document for key in _ASFF_KEYS)


def _is_guardduty(document: dict[str, Any]) -> bool:
    keys = {str(key).lower() for key in document}
    return {"type", "service", "resource"} <= keys


def _finding(finding: object, index: int | None) -> NormalizedAlert:
    where = f"Findings[{index}]" if index is not None else "the finding"
    if not isinstance(finding, dict):
        raise UnsupportedPayload(f"{where} must be a JSON object")
    if _is_asff(finding):
        return normalize_securityhub_finding(finding)
    if _is_guardduty(finding):
        return normalize_guardduty_finding(finding)
    raise UnsupportedPayload(
        f"{where} is neither a Security Hub (ASFF) finding (it has none of "
        f"{', '.join(_ASFF_KEYS)}) nor a GuardDuty finding (type, service, resource)"
    )


def _validated(make: Callable[[], NormalizedAlert], what: str) -> NormalizedAlert:
    try:
        return make()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'alert'}: {e['msg']}" for e in exc.errors()
        )
        raise UnsupportedPayload(
            f"not an alert in a form Riposte ingests (an EventBridge event, an SNS body, a "
            f"CloudTrail record or log file, a Security Hub or GuardDuty finding); read as "
            f"{what}: {problems}"
        ) from None
