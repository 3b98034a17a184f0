"""EventBridge dispatch: unknown detail-types are generic, legacy names and arrays are accepted."""

from __future__ import annotations

import pytest

from engine.normalize import (
    UnsupportedPayload,
    normalize_eventbridge,
    normalize_eventbridge_delivery,
)
from tests.samples import load


def test_unknown_detail_type_is_a_generic_alert() -> None:
    """Sample: the EC2 instance state-change event shape of the EventBridge user guide."""
    event = {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2015-11-11T21:29:54Z",
        "region": "us-east-1",
        "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
        "detail": {"instance-id": "i-abcd1111", "state": "pending"},
    }
    [alert] = normalize_eventbridge(event)
    assert (alert.source, alert.kind) == ("eventbridge", "generic")
    assert alert.type == "EC2 Instance State-change Notification"
    assert (alert.account, alert.region) == ("123456789012", "us-east-1")
    assert [(r.type, r.id) for r in alert.resources] == [("AwsEc2Instance", "i-abcd1111")]
    assert alert.dedup_key == "eventbridge:7bf73129-1428-4cd3-a780-95db273d1602"
    assert alert.details["raw"] == event


@pytest.mark.parametrize(
    "spelling", ["GuardDuty Finding", "guardduty  finding", "GuardDuty-Finding"]
)
def test_detail_type_spellings(spelling: str) -> None:
    """Sample: blu371ck/GuardDuty-SOAR SSH brute-force event with its detail-type respelled."""
    event = {**load("guardduty_ec2_ssh_brute_force"), "detail-type": spelling}
    [alert] = normalize_eventbridge(event)
    assert alert.source == "guardduty"


def test_legacy_custom_action_spelling() -> None:
    """The Security Hub guide's heading spells it "Security Findings - Custom Action"."""
    event = load("securityhub_event_custom_action_envelope")
    event["detail-type"] = "Security Findings - Custom Action"
    event["detail"]["findings"] = [load("securityhub_finding_afsbp_ec2_2")]
    [alert] = normalize_eventbridge(event)
    assert alert.kind == "custom-action"


def test_an_array_of_events_gives_all_their_alerts() -> None:
    """An API destination may post a JSON array: the alarm and the GuardDuty samples together."""
    alerts = normalize_eventbridge_delivery(
        [load("cloudwatch_alarm_single_metric"), load("guardduty_ec2_ssh_brute_force")]
    )
    assert [a.source for a in alerts] == ["cloudwatch", "guardduty"]


@pytest.mark.parametrize("body", [None, 3, "x", {"hello": 1}, [1]])
def test_not_an_event_is_unsupported(body: object) -> None:
    """Input with no detail-type, source or detail is refused."""
    with pytest.raises(UnsupportedPayload):
        normalize_eventbridge_delivery(body)
