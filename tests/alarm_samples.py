"""The CloudWatch alarm of the seed's condition, and the night of calls it counted.

A metric filter on the trail's log group counts TerminateInstances calls; the alarm goes off at
twenty within five minutes. The message has the fields of a real alarm notification (see
tests/samples/sns_cloudwatch_alarm_redshift.json, a delivery AWS made).

``burst_night()``: the alarm goes off at 03:24:39, three minutes after the seed's burst —
Roboman1 terminates 22 instances in two calls from the night's address. In the same ten minutes
an Auto Scaling group replaces three instances, a deployment role ends two in two sessions, and
a colleague's call is refused. Earlier that night Roboman1 had terminated one instance, before
the alarm's ten minutes; and it described instances, which is no termination.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.alerts import template_view
from engine.normalize import normalize_sns_message
from tests import cloudtrail_samples as ct
from tests import sns_keys

ALARM = "prod-instance-termination"
METRIC = "TerminateInstancesCount"
ALARM_TIME = ct.ALERT_TIME + timedelta(minutes=3)
INSTANCES = [f"i-0prod{n:02d}" for n in range(22)]
ROLE_ARN = f"arn:aws:iam::{ct.ACCOUNT}:role/deployer"


def alarm_message(
    moment: datetime, *, account: str, region: str, count: int = 22
) -> dict[str, Any]:
    """The alarm JSON CloudWatch publishes when the count reaches the threshold at ``moment``."""
    when = moment.astimezone(UTC)
    return {
        "AlarmName": ALARM,
        "AlarmDescription": "20 or more TerminateInstances calls within 5 minutes",
        "AWSAccountId": account,
        "NewStateValue": "ALARM",
        "NewStateReason": (
            f"Threshold Crossed: 1 out of the last 1 datapoints [{count:.1f} "
            f"({when:%d/%m/%y %H:%M:00})] was greater than or equal to the threshold (20.0) "
            "(minimum 1 datapoint for OK -> ALARM transition)."
        ),
        "StateChangeTime": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
        "Region": "US East (N. Virginia)",
        "AlarmArn": f"arn:aws:cloudwatch:{region}:{account}:alarm:{ALARM}",
        "OldStateValue": "OK",
        "AlarmActions": [sns_keys.TOPIC_ARN],
        "OKActions": [],
        "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": METRIC,
            "Namespace": "CloudTrailMetrics",
            "StatisticType": "Statistic",
            "Statistic": "SUM",
            "Unit": None,
            "Dimensions": [],
            "Period": 300,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 20.0,
            "TreatMissingData": "missing",
            "EvaluateLowSampleCountPercentile": "",
        },
    }


def alarm_notification(message: dict[str, Any]) -> dict[str, Any]:
    """The SNS Notification carrying ``message``, unsigned."""
    return sns_keys.notification(
        MessageId=str(uuid.uuid4()),
        Subject=f'ALARM: "{message["AlarmName"]}" in US East (N. Virginia)',
        Message=json.dumps(message),
        Timestamp=message["StateChangeTime"].replace("+0000", "Z"),
    )


def alarm_alert(moment: datetime, *, account: str, region: str) -> dict[str, Any]:
    """The alarm as a run's templates see it (``alert``)."""
    notification = alarm_notification(alarm_message(moment, account=account, region=region))
    [alert] = normalize_sns_message("Notification", notification)
    return template_view("alarm-1", alert)


def terminate(seconds: int, ids: list[str], **fields: Any) -> dict[str, Any]:
    """A TerminateInstances record ``seconds`` after the seed's alert time."""
    return ct.record(
        ct.ALERT_TIME + timedelta(seconds=seconds),
        "TerminateInstances",
        request={"instancesSet": {"items": [{"instanceId": i} for i in ids]}},
        **fields,
    )


def _session(name: str) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "accountId": ct.ACCOUNT,
        "arn": f"arn:aws:sts::{ct.ACCOUNT}:assumed-role/deployer/{name}",
        "accessKeyId": "ASIAEXAMPLEDEPLOYER1",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": ROLE_ARN, "userName": "deployer"}
        },
    }


def burst_night() -> list[dict[str, Any]]:
    """The night's records (see the module doc), in time order."""
    night = {"ip": ct.NIGHT_IP, "agent": ct.CONSOLE_AGENT}
    service = {"type": "AWSService", "invokedBy": "autoscaling.amazonaws.com"}
    jdoe = ct.user_identity(f"arn:aws:iam::{ct.ACCOUNT}:user/jdoe", key="AKIAEXAMPLEJDOE00001")
    return [
        terminate(-16 * 60, ["i-0early1"], **night),  # before the window
        terminate(-4 * 60, ["i-0asg0001"], identity=service, ip="autoscaling.amazonaws.com"),
        terminate(-3 * 60, ["i-0asg0002"], identity=service, ip="autoscaling.amazonaws.com"),
        terminate(-2 * 60, ["i-0asg0003"], identity=service, ip="autoscaling.amazonaws.com"),
        terminate(-90, ["i-0dep0001"], identity=_session("ci-42")),
        terminate(-80, ["i-0dep0002"], identity=_session("ci-43")),
        ct.record(ct.ALERT_TIME - timedelta(seconds=30), "DescribeInstances", **night),
        terminate(0, INSTANCES[:2], **night),
        terminate(13, INSTANCES[2:], **night),
        terminate(
            21,
            INSTANCES[:5],
            identity=jdoe,
            errorCode="Client.UnauthorizedOperation",
            errorMessage="You are not authorized to perform this operation.",
        ),
    ]
