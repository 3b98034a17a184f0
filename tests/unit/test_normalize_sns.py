"""SNS notifications: alarms, forwarded EventBridge events and plain text all become alerts."""

from __future__ import annotations

import json

import pytest

from engine.normalize import UnsupportedPayload, normalize_sns_message
from tests.samples import load


def test_cloudwatch_alarm_through_sns() -> None:
    """Sample: starrlingo/aws-sns-to-slack-hook, test.js (Records[0].Sns of a real alarm delivery;
    its Region is the display name "US - N. Virginia", so the topic ARN's region is used)."""
    body = load("sns_cloudwatch_alarm_redshift")
    [alert] = normalize_sns_message("Notification", body)

    assert (alert.source, alert.kind, alert.type) == ("cloudwatch", "alarm", "martin-test")
    assert (alert.severity, alert.severity_label) == (70, "HIGH")
    assert alert.account == "147946154733"
    assert alert.region == "us-east-1"
    assert alert.principal is None
    assert alert.resources == []  # a Redshift cluster dimension, no alarm ARN in 2015 messages
    assert alert.dedup_key == "sns:33e80a51-6e86-54a8-996a-478f495096df"
    assert alert.details["extra"]["region_name"] == "US - N. Virginia"
    assert alert.details["extra"]["previous_state"] == "OK"
    assert (alert.details["extra"]["threshold"], alert.details["extra"]["comparison"]) == (
        10.0, "GreaterThanOrEqualToThreshold")
    assert alert.details["raw"] == body
    assert alert.details["delivery"]["topic_arn"] == body["TopicArn"]


def test_alarm_message_with_alarm_arn_and_instance_dimension() -> None:
    """Sample: the alarm delivery above with AlarmArn and an InstanceId dimension, as current
    CloudWatch alarm notifications carry them."""
    body = load("sns_cloudwatch_alarm_redshift")
    message = json.loads(body["Message"])
    message["AlarmArn"] = "arn:aws:cloudwatch:eu-west-1:147946154733:alarm:martin-test"
    message["Trigger"]["Dimensions"] = [{"name": "InstanceId", "value": "i-0abc"}]
    message["NewStateValue"] = "INSUFFICIENT_DATA"
    body["Message"] = json.dumps(message)
    [alert] = normalize_sns_message(None, body)
    assert alert.region == "eu-west-1"
    assert [(r.type, r.id) for r in alert.resources] == [
        ("AwsCloudWatchAlarm", "arn:aws:cloudwatch:eu-west-1:147946154733:alarm:martin-test"),
        ("AwsEc2Instance", "i-0abc"),
    ]
    assert alert.severity_label == "LOW"


def test_plain_text_notification_is_generic_with_subject_as_title() -> None:
    """Sample: AdRoll/goamz, sns/http_notification_test.go (the SNS developer guide's example)."""
    body = load("sns_notification_plain_text")
    [alert] = normalize_sns_message("Notification", body)
    assert (alert.source, alert.kind, alert.title) == ("sns", "generic", "My First Message")
    assert alert.type == "MyTopic"
    assert (alert.account, alert.region) == ("123456789012", "us-east-1")
    assert alert.dedup_key == "sns:22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
    assert alert.details["extra"]["message"] == "Hello world!"


@pytest.mark.parametrize("subject", [None, "", "   "])
def test_null_subject_falls_back_to_the_first_line(subject: str | None) -> None:
    """Sample: the goamz notification with Subject null / empty."""
    body = {
        **load("sns_notification_plain_text"),
        "Subject": subject,
        "Message": "\n  disk almost full on web-1\nsecond line",
    }
    [alert] = normalize_sns_message("Notification", body)
    assert alert.title == "disk almost full on web-1"


def test_eventbridge_event_forwarded_through_sns_keeps_its_natural_key() -> None:
    """Sample: the GuardDuty SSH brute-force event (blu371ck/GuardDuty-SOAR) as the Message of the
    goamz notification with Subject null, as an SNS target of an EventBridge rule delivers it."""
    event = load("guardduty_ec2_ssh_brute_force")
    body = {**load("sns_notification_plain_text"), "Subject": None, "Message": json.dumps(event)}
    [alert] = normalize_sns_message("Notification", body)
    assert (alert.source, alert.kind) == ("guardduty", "finding")
    assert alert.dedup_key == "guardduty:49514155ed6b4536b05649a87fc3c05a@2025-10-01T18:05:37.470Z"
    assert alert.account == "1234567891234"
    assert alert.details["delivery"]["transport"] == "sns"
    assert alert.details["raw"] == body


def test_generic_event_through_sns_is_keyed_by_its_event_id() -> None:
    """Sample: the goamz notification carrying an unknown detail-type event."""
    event = {
        "version": "0",
        "id": "abc",
        "detail-type": "Something New",
        "source": "acme",
        "account": "1",
        "region": "us-east-1",
        "detail": {},
    }
    body = {**load("sns_notification_plain_text"), "Message": json.dumps(event)}
    [alert] = normalize_sns_message("Notification", body)
    assert (alert.source, alert.kind, alert.dedup_key) == (
        "eventbridge",
        "generic",
        "eventbridge:abc",
    )


@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_confirmations_make_no_alert(kind: str) -> None:
    """Confirmation messages are the webhook's business, not alerts."""
    assert normalize_sns_message(kind, {"Type": kind}) == []


@pytest.mark.parametrize(
    "kind, body", [("Bogus", {}), (None, {"Type": 3}), (None, []), ("Notification", "text")]
)
def test_unknown_type_or_shape_is_unsupported(kind: str | None, body: object) -> None:
    """An unknown message type or a body that is not an object is refused."""
    with pytest.raises(UnsupportedPayload):
        normalize_sns_message(kind, body)
