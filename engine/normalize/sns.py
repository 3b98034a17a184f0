"""Normalize SNS HTTP/S deliveries: the ``Message`` of a Notification becomes alerts.

- ``SubscriptionConfirmation`` / ``UnsubscribeConfirmation``: no alert (the webhook confirms or
  records them); any other message type is an ``UnsupportedPayload``;
- a ``Message`` holding CloudWatch alarm JSON → a ``cloudwatch`` alarm alert (metric, metric math,
  anomaly detection and composite alarms; severity table in ``cloudwatch``), keyed
  ``sns:<MessageId>``;
- a ``Message`` holding an EventBridge event (an SNS target of a rule) → exactly what
  ``normalize_eventbridge`` makes of it (source securityhub / guardduty / cloudtrail / …, with
  their natural keys; an event with no inner key gets ``sns:<MessageId>``);
- a ``Message`` that is JSON holding text no database stores (a lone surrogate, a NUL) →
  ``UnsupportedPayload`` naming where (engine.delivery_json); one that is not JSON as Riposte
  reads it (NaN, numbers out of range, nesting deeper than 64) is plain text;
- anything else (plain text, other JSON) → one generic alert: source ``sns``, kind ``generic``,
  title the ``Subject`` (it may be null or absent: then the message's first line), type the
  topic name, event_name the ``Subject``, event_time the ``Timestamp``, INFORMATIONAL, account
  and region from the TopicArn, keyed ``sns:<MessageId>``.

``details.delivery`` holds ``transport`` "sns", message_id, topic_arn, subject and timestamp;
``details.raw`` is the SNS body verbatim (for a multi-finding event: the finding, as in
``eventbridge``); ``details.extra.message`` the decoded text of a generic message;
``details.envelope_delivery`` the forwarded EventBridge event's own envelope.
"""

from __future__ import annotations

from typing import Any

from engine.alerts import NormalizedAlert
from engine.delivery_json import MalformedJson, UnstorableText, parse_delivery_json
from engine.normalize.cloudwatch import is_sns_alarm, normalize_sns_alarm
from engine.normalize.eventbridge import normalize_eventbridge
from engine.normalize.payload import (
    TITLE_LIMIT,
    UnsupportedPayload,
    arn_parts,
    build_alert,
    new_details,
    require_object,
    text,
)

NO_ALERT_TYPES = frozenset({"SubscriptionConfirmation", "UnsubscribeConfirmation"})


def normalize_sns_message(message_type: str | None, body: object) -> list[NormalizedAlert]:
    """Normalize an SNS delivery; ``message_type`` is the x-amz-sns-message-type header."""
    envelope = require_object(body, "an SNS message")
    kind = text(message_type) or text(envelope.get("Type"))
    if kind in NO_ALERT_TYPES:
        return []
    if kind != "Notification":
        raise UnsupportedPayload(
            f"unknown SNS message type {kind!r}: expected Notification, "
            "SubscriptionConfirmation or UnsubscribeConfirmation"
        )
    message_id = text(envelope.get("MessageId"))
    topic_arn = text(envelope.get("TopicArn"))
    subject = text(envelope.get("Subject"))
    key = f"sns:{message_id}" if message_id else None
    delivery = {
        "transport": "sns",
        "message_id": message_id,
        "topic_arn": topic_arn,
        "subject": subject,
        "timestamp": text(envelope.get("Timestamp")),
    }
    message = _decode(envelope.get("Message"))

    if is_sns_alarm(message):
        details = new_details(envelope)
        alert = normalize_sns_alarm(message, topic_arn=topic_arn, details=details, dedup_key=key)
        alerts = [alert]
    elif _is_event(message):
        alerts = normalize_eventbridge(message)
        for alert in alerts:
            alert.dedup_key = alert.dedup_key or key
            alert.details["envelope_delivery"] = alert.details["delivery"]
            if len(alerts) == 1:
                alert.details["raw"] = envelope
    else:
        alerts = [_generic(envelope, message, subject, topic_arn, key)]
    for alert in alerts:
        alert.details["delivery"] = delivery
    return alerts


def _decode(message: object) -> object:
    if not isinstance(message, str):
        return message
    stripped = message.strip()
    if not stripped.startswith(("{", "[")):
        return message
    try:
        return parse_delivery_json(stripped, at=("Message",))
    except MalformedJson:
        return message  # not JSON Riposte reads: a text message, kept as sent
    except UnstorableText as exc:
        # Kept as text it could be stored, but then an event the EventBridge endpoint refuses
        # would pass through SNS as a plain notification that matches no playbook.
        raise UnsupportedPayload(str(exc)) from None


def _is_event(message: object) -> bool:
    return isinstance(message, dict) and "detail-type" in message and "detail" in message


def _generic(
    envelope: dict[str, Any],
    message: object,
    subject: str | None,
    topic_arn: str | None,
    key: str | None,
) -> NormalizedAlert:
    parts = arn_parts(topic_arn)
    topic = parts["resource"] if parts else None
    first_line = None
    if isinstance(message, str):
        first_line = next((line.strip() for line in message.splitlines() if line.strip()), None)
    details = new_details(envelope)
    details["extra"]["message"] = message
    title = subject or (first_line[:TITLE_LIMIT] if first_line else None)
    return build_alert(
        source="sns",
        kind="generic",
        type_=topic,
        title=title or f"SNS notification on {topic or 'an unknown topic'}",
        score=0,
        label="INFORMATIONAL",
        account=(parts["account"] or None) if parts else None,
        region=(parts["region"] or None) if parts else None,
        principal=None,
        resources=[],
        details=details,
        dedup_key=key,
        event_time=text(envelope.get("Timestamp")),
        event_name=subject,
    )
