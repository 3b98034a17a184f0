"""Normalize CloudWatch alarm state changes, from EventBridge or from an SNS notification.

Severity of an alarm is its new state (a label alone is its band's floor):

    ALARM               HIGH           70
    INSUFFICIENT_DATA   LOW             1
    OK                  INFORMATIONAL   0
    anything else       INFORMATIONAL   0

- source ``cloudwatch``, kind ``alarm``, type and event_name the alarm name, event_time the
  state change's;
- metric, metric math, anomaly detection and composite alarms all normalize the same way; the
  metric names / expressions or the composite ``AlarmRule`` go to ``details.extra``, and so do
  the ``threshold`` and ``comparison`` (ComparisonOperator) an SNS notification carries (an
  EventBridge state change carries neither);
- resources: the alarm (``AwsCloudWatchAlarm``, from its ARN) and every EC2 instance named in an
  ``InstanceId`` dimension;
- region: the alarm ARN's region; the SNS message's ``Region`` is a display name
  ("US East (N. Virginia)"), so it is kept in ``extra.region_name`` and the topic ARN's region is
  the fallback;
- dedup_key: the delivery's (``eventbridge:<id>`` or ``sns:<MessageId>``), passed in.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from engine.alerts import SEVERITY_OF_LABEL, NormalizedAlert, Resource
from engine.normalize.payload import (
    arn_parts,
    build_alert,
    new_details,
    number,
    obj,
    objects,
    resource_from_arn,
    text,
)

_STATE_LABELS = {"ALARM": "HIGH", "INSUFFICIENT_DATA": "LOW", "OK": "INFORMATIONAL"}


def alarm_severity(state: str | None) -> tuple[int, str]:
    """Map an alarm state to a score and label (table in the module docs)."""
    label = _STATE_LABELS.get((state or "").upper(), "INFORMATIONAL")
    return SEVERITY_OF_LABEL[label], label


def is_sns_alarm(message: object) -> TypeGuard[dict[str, Any]]:
    """Tell whether a decoded SNS ``Message`` is a CloudWatch alarm notification."""
    return isinstance(message, dict) and "AlarmName" in message and "NewStateValue" in message


def normalize_alarm_event(event: dict[str, Any], *, dedup_key: str | None) -> NormalizedAlert:
    """Normalize a "CloudWatch Alarm State Change" EventBridge event."""
    detail = obj(event.get("detail"))
    state, previous = obj(detail.get("state")), obj(detail.get("previousState"))
    configuration = obj(detail.get("configuration"))
    region = text(event.get("region"))
    arns = [a for a in (text(r) for r in _list(event.get("resources"))) if a]
    metrics = objects(configuration.get("metrics"))
    dimensions = [obj(m.get("metricStat")).get("metric") for m in metrics]
    instance_ids = [text(obj(obj(d).get("dimensions")).get("InstanceId")) for d in dimensions]
    details = new_details(event)
    details["extra"].update(
        state=text(state.get("value")),
        previous_state=text(previous.get("value")),
        reason=text(state.get("reason")),
        description=text(configuration.get("description")),
        metrics=[
            text(obj(d).get("name")) or text(m.get("expression"))
            for d, m in zip(dimensions, metrics, strict=True)
        ],
        alarm_rule=text(configuration.get("alarmRule")),
    )
    return _alarm(
        name=text(detail.get("alarmName")),
        event_time=text(state.get("timestamp")) or text(event.get("time")),
        state=text(state.get("value")),
        account=text(event.get("account")),
        region=region,
        alarm_arns=arns,
        instance_ids=[i for i in instance_ids if i],
        details=details,
        dedup_key=dedup_key,
    )


def normalize_sns_alarm(
    message: dict[str, Any],
    *,
    topic_arn: str | None,
    details: dict[str, Any],
    dedup_key: str | None,
) -> NormalizedAlert:
    """Normalize the alarm JSON CloudWatch publishes to an SNS topic."""
    trigger = obj(message.get("Trigger"))
    alarm_arn = text(message.get("AlarmArn"))
    region = _region_of(alarm_arn) or _region_of(topic_arn)
    dimension_lists = [trigger.get("Dimensions")]
    dimension_lists += [
        obj(obj(m.get("MetricStat")).get("Metric")).get("Dimensions")
        for m in objects(trigger.get("Metrics"))
    ]
    instance_ids = [
        text(d.get("value"))
        for dims in dimension_lists
        for d in objects(dims)
        if text(d.get("name")) == "InstanceId"
    ]
    details["extra"].update(
        state=text(message.get("NewStateValue")),
        previous_state=text(message.get("OldStateValue")),
        reason=text(message.get("NewStateReason")),
        description=text(message.get("AlarmDescription")),
        metrics=[text(trigger.get("MetricName"))]
        if trigger.get("MetricName")
        else [
            text(m.get("Expression")) or text(m.get("Id")) for m in objects(trigger.get("Metrics"))
        ],
        alarm_rule=text(message.get("AlarmRule")),
        region_name=text(message.get("Region")),
        threshold=number(trigger.get("Threshold")),
        comparison=text(trigger.get("ComparisonOperator")),
    )
    return _alarm(
        name=text(message.get("AlarmName")),
        event_time=text(message.get("StateChangeTime")),
        state=text(message.get("NewStateValue")),
        account=text(message.get("AWSAccountId")),
        region=region,
        alarm_arns=[alarm_arn] if alarm_arn else [],
        instance_ids=[i for i in instance_ids if i],
        details=details,
        dedup_key=dedup_key,
    )


def _alarm(
    *,
    name: str | None,
    event_time: str | None,
    state: str | None,
    account: str | None,
    region: str | None,
    alarm_arns: list[str],
    instance_ids: list[str],
    details: dict[str, Any],
    dedup_key: str | None,
) -> NormalizedAlert:
    resources: list[Resource] = [
        r for r in (resource_from_arn(a, region=region) for a in alarm_arns) if r is not None
    ]
    resources += [Resource(type="AwsEc2Instance", id=i, region=region) for i in instance_ids]
    score, label = alarm_severity(state)
    return build_alert(
        source="cloudwatch",
        kind="alarm",
        type_=name,
        title=f"{name or 'CloudWatch alarm'} is {state or 'in an unknown state'}",
        score=score,
        label=label,
        account=account,
        region=region,
        principal=None,
        resources=resources,
        details=details,
        dedup_key=dedup_key,
        event_time=event_time,
        event_name=name,
    )


def _region_of(arn: str | None) -> str | None:
    parts = arn_parts(arn)
    return (parts["region"] or None) if parts else None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
