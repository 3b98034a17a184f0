"""Read the CloudTrail events Riposte ingested itself: alerts of source ``cloudtrail``.

Each such alert keeps the payload it came from in ``details.raw``: the record itself (a log
file's record, or a bare record), the EventBridge event whose ``detail`` is the record, or the
SNS message whose ``Message`` is that event. When none of these holds a record, one is made
from the alert's columns, so every ingested event counts.

Actions get no database session of their own: the worker hands its session factory to the run
(``RunEnv.sessions``); without it this source fails with ``SourceUnavailable``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.aws.cloudtrail_records import Record, iso
from engine.store.models import Alert


@dataclass
class IngestedReport:
    """What was read from Riposte's database: records kept, alerts read, truncation."""

    records: list[Record] = field(default_factory=list)
    alerts_read: int = 0
    truncated: bool = False


def ingested_records(
    *,
    session: Session,
    account: str | None,
    start: datetime,
    end: datetime,
    keep: Callable[[Record], bool],
    report: IngestedReport,
    max_events: int,
) -> None:
    """Add to ``report`` the ingested CloudTrail records of ``[start, end]`` that ``keep`` likes.

    Only reads. ``account`` (when given) keeps the events of that account only.
    """
    query = select(Alert).where(
        Alert.source == "cloudtrail",
        Alert.event_time >= start,
        Alert.event_time <= end,
    )
    if account is not None:
        query = query.where(Alert.account == account)
    query = query.order_by(Alert.event_time, Alert.id).execution_options(yield_per=500)
    for alert in session.execute(query).scalars():
        report.alerts_read += 1
        record = record_of(alert)
        if not keep(record):
            continue
        if len(report.records) >= max_events:
            report.truncated = True
            return
        report.records.append(record)


def record_of(alert: Alert) -> Record:
    """The CloudTrail record an ingested alert came from (see the module doc)."""
    details = alert.details if isinstance(alert.details, dict) else {}
    raw: Any = details.get("raw")
    for _ in range(3):  # the record, EventBridge's event around it, SNS's message around that
        if isinstance(raw, dict) and "eventID" in raw and "eventName" in raw:
            return raw
        if isinstance(raw, dict) and isinstance(raw.get("detail"), dict):
            raw = raw["detail"]
        elif isinstance(raw, dict) and isinstance(raw.get("Message"), str):
            try:
                raw = json.loads(raw["Message"])
            except ValueError:
                break
        else:
            break
    return _rebuilt(alert, details)


def _rebuilt(alert: Alert, details: dict[str, Any]) -> Record:
    principal = alert.principal or {}
    found = details.get("extra")
    extra: dict[str, Any] = found if isinstance(found, dict) else {}
    dedup = alert.dedup_key or ""
    return {
        "eventID": dedup.removeprefix("cloudtrail:") or alert.id,
        "eventTime": iso(alert.event_time),
        "eventName": alert.event_name or alert.type,
        "eventSource": extra.get("event_source"),
        "awsRegion": alert.region,
        "recipientAccountId": alert.account,
        "sourceIPAddress": alert.source_ip,
        "userAgent": alert.user_agent,
        "errorCode": extra.get("error_code"),
        "userIdentity": {
            "type": principal.get("type"),
            "arn": principal.get("arn"),
            "userName": principal.get("name"),
            "accessKeyId": principal.get("access_key_id"),
            "accountId": principal.get("account"),
        },
        "requestParameters": {
            "instancesSet": {
                "items": [{"instanceId": i} for i in details.get("instance_ids") or []]
            }
        },
        "responseElements": {"ConsoleLogin": extra.get("outcome")},
        "additionalEventData": {
            "MFAUsed": None if alert.mfa_used is None else ("Yes" if alert.mfa_used else "No")
        },
    }
