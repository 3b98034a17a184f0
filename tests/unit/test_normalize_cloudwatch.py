"""CloudWatch alarm state changes from EventBridge normalize by state, with alarm and instances."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.normalize import normalize_eventbridge
from tests.samples import load

# Samples: awsdocs/amazon-cloudwatch-user-guide, doc_source/cloudwatch-and-eventbridge.md.


@pytest.mark.parametrize(
    "name, alarm, event_id",
    [
        (
            "cloudwatch_alarm_single_metric",
            "ServerCpuTooHigh",
            "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        ),
        (
            "cloudwatch_alarm_metric_math",
            "TotalNetworkTrafficTooHigh",
            "2dde0eb1-528b-d2d5-9ca6-6d590caf2329",
        ),
        (
            "cloudwatch_alarm_anomaly_detection",
            "EC2 CPU Utilization Anomaly",
            "daafc9f1-bddd-c6c9-83af-74971fcfc4ef",
        ),
    ],
)
def test_alarm_state_change(name: str, alarm: str, event_id: str) -> None:
    """Samples: single-metric, metric math and anomaly detection alarm events of the guide."""
    event = load(name)
    [alert] = normalize_eventbridge(event)

    assert (alert.source, alert.kind, alert.type) == ("cloudwatch", "alarm", alarm)
    assert (alert.severity, alert.severity_label) == (70, "HIGH")
    assert (alert.account, alert.region) == ("123456789012", "us-east-1")
    assert alert.principal is None
    assert [(r.type, r.id) for r in alert.resources] == [
        ("AwsCloudWatchAlarm", f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}"),
        ("AwsEc2Instance", "i-12345678901234567"),
    ]
    assert alert.dedup_key == f"eventbridge:{event_id}"
    assert alert.details["extra"]["state"] == "ALARM"
    assert alert.details["raw"] == event


@pytest.mark.parametrize(
    "state, expected",
    [
        ("ALARM", (70, "HIGH")),
        ("INSUFFICIENT_DATA", (1, "LOW")),
        ("OK", (0, "INFORMATIONAL")),
        ("ok", (0, "INFORMATIONAL")),
        ("BOGUS", (0, "INFORMATIONAL")),
        (None, (0, "INFORMATIONAL")),
    ],
)
def test_alarm_state_mapping(state: str | None, expected: tuple[int, str]) -> None:
    """Sample: the single-metric event with its state replaced (mapping in cloudwatch.py)."""
    event = load("cloudwatch_alarm_single_metric")
    event["detail"]["state"]["value"] = state
    [alert] = normalize_eventbridge(event)
    assert (alert.severity, alert.severity_label) == expected


def test_composite_alarm_keeps_its_rule() -> None:
    """Sample: the single-metric event reshaped as a composite alarm (configuration.alarmRule as
    the CloudWatch guide's composite alarm event carries it, no metrics)."""
    event = load("cloudwatch_alarm_single_metric")
    event["detail"]["configuration"] = {"alarmRule": "ALARM(ServerCpuTooHigh) OR ALARM(Disk)"}
    [alert] = normalize_eventbridge(event)
    assert alert.details["extra"]["alarm_rule"] == "ALARM(ServerCpuTooHigh) OR ALARM(Disk)"
    assert [r.type for r in alert.resources] == ["AwsCloudWatchAlarm"]


def test_the_event_time_is_the_state_change_not_the_delivery() -> None:
    """Sample: the guide's single-metric alarm (state timestamp written with a +0000 offset)."""
    [alert] = normalize_eventbridge(load("cloudwatch_alarm_single_metric"))

    assert alert.event_time == datetime(2019, 10, 2, 17, 4, 40, 989000, tzinfo=UTC)
    assert alert.event_name == "ServerCpuTooHigh"
