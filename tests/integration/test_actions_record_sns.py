"""aws.sns.publish against the moto server: delivery is proven by an SQS queue subscribed to the
topic, from which each test reads back what subscribers received."""

from __future__ import annotations

import json
from typing import Any

import pytest

from actions.base import ActionError
from tests.aws_sandbox import OTHER_ACCOUNT, AwsSandbox

ACTION = "aws.sns.publish"
ALERT = {
    "source": "guardduty",
    "kind": "finding",
    "title": "Key used from Tor\nStatus: all clear <!channel>",
    "severity": 75,
    "severity_label": "HIGH",
    "account": "123456789012",
    "region": "us-east-1",
    "principal": {"type": "IAMUser", "name": "alice"},
    "resources": [{"type": "AwsIamAccessKey", "id": "AKIAEXAMPLE"}],
}


def subscribed_topic(
    aws: AwsSandbox, name: str = "security-alerts", *, account: str | None = None
) -> tuple[str, str]:
    """A topic and the URL of an SQS queue subscribed to it (FIFO when ``name`` ends .fifo)."""
    sns, sqs = aws.client("sns", account=account), aws.client("sqs", account=account)
    fifo = name.endswith(".fifo")
    attributes = {"FifoTopic": "true"} if fifo else {}
    topic = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
    queue_attributes = {"FifoQueue": "true"} if fifo else {}
    queue = sqs.create_queue(QueueName=f"inbox-{name}", Attributes=queue_attributes)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    return topic, queue


def received(aws: AwsSandbox, queue: str, *, account: str | None = None) -> list[dict[str, Any]]:
    """The SNS envelopes that reached the queue (Message, Subject, MessageAttributes)."""
    answer = aws.client("sqs", account=account).receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0
    )
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def test_live_run_delivers_the_run_summary_to_subscribers(aws: AwsSandbox) -> None:
    topic, queue = subscribed_topic(aws)
    params = {
        "topic_arn": topic,
        "subject": "Riposte: key used\nfrom Tor",
        "done": ["user disabled"],
    }
    dry = aws.act(ACTION, params, env=aws.env(mode="dry_run", alert=ALERT))
    live = aws.act(ACTION, params, env=aws.env(alert=ALERT))

    [delivered] = received(aws, queue)
    assert delivered["Subject"] == "Riposte: key used from Tor"
    assert delivered["Message"] == live.output["message"]
    lines = delivered["Message"].splitlines()
    assert lines[0] == "Riposte run run-1"
    # The alert's title cannot forge a line of its own.
    assert "Alert: Key used from Tor Status: all clear <!channel> (guardduty finding)" in lines
    assert "Principal: IAMUser alice" in lines
    assert "- user disabled" in lines
    assert delivered["MessageAttributes"]["riposte.run_id"]["Value"] == "run-1"
    assert live.output["message_id"] == delivered["MessageId"]
    assert live.output["undo"] is None
    assert "cannot be unsent" in live.output["note"]
    assert [(c.operation, c.params) for c in live.mutations] == [
        (p.operation, p.params) for p in dry.output
    ]


def test_dry_run_publishes_nothing_and_plans_the_call(aws: AwsSandbox) -> None:
    topic, queue = subscribed_topic(aws)
    dry = aws.act(ACTION, {"topic_arn": topic, "message": "hello"}, env=aws.env(mode="dry_run"))
    assert dry.mutations == []
    assert received(aws, queue) == []
    [call] = dry.output
    assert (call.operation, call.target) == ("Publish", topic)
    assert call.params["Message"] == "hello"
    assert "MessageGroupId" not in call.params  # a standard topic takes no group or dedup id


def test_fifo_topic_delivers_a_re_executed_step_once(aws: AwsSandbox) -> None:
    """moto's SNS passes the deduplication id on and its FIFO queue drops the repeat; real SNS
    FIFO topics drop it already at the topic, within a 5-minute window."""
    topic, queue = subscribed_topic(aws, "security-alerts.fifo")
    params = {"topic_arn": topic, "message": "contained alice"}
    first = aws.act(ACTION, params, env=aws.env(run_id="run-9"))
    again = aws.act(ACTION, params, env=aws.env(run_id="run-9"))
    other_step = aws.act(ACTION, params, env=aws.env(run_id="run-9"), step_id="later")

    assert [m["Message"] for m in received(aws, queue)] == ["contained alice"] * 2
    sent = [c.params for acted in (first, again) for c in acted.mutations]
    assert sent[0] == sent[1]
    assert sent[0]["MessageGroupId"] == "riposte-run-9"
    assert sent[0]["MessageDeduplicationId"] == first.output["dedup_id"]
    assert other_step.output["dedup_id"] != first.output["dedup_id"]
    assert first.output["fifo"] is True


def test_missing_topic_is_a_clear_error(aws: AwsSandbox) -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:nobody-listens"
    with pytest.raises(ActionError) as missing:
        aws.act(ACTION, {"topic_arn": topic, "message": "hello"})
    assert missing.value.code == "TopicNotFound"
    assert topic in missing.value.message
    assert not missing.value.retryable


def test_the_topics_account_is_where_it_is_published(aws: AwsSandbox) -> None:
    topic, queue = subscribed_topic(aws, account=OTHER_ACCOUNT)
    acted = aws.act(ACTION, {"topic_arn": topic, "message": "hello"}, env=aws.env(alert=ALERT))
    assert [m["Message"] for m in received(aws, queue, account=OTHER_ACCOUNT)] == ["hello"]
    assumed = [c.params["RoleArn"] for c in acted.sent if c.operation == "AssumeRole"]
    assert assumed == [f"arn:aws:iam::{OTHER_ACCOUNT}:role/riposte-responder"]


def test_subject_is_one_line_under_the_sns_limit(aws: AwsSandbox) -> None:
    topic, queue = subscribed_topic(aws)
    subject = "Alert\r\n" + "x" * 150
    acted = aws.act(ACTION, {"topic_arn": topic, "subject": subject, "message": "m"})
    [delivered] = received(aws, queue)
    assert delivered["Subject"] == acted.output["subject"]
    assert len(delivered["Subject"]) == 99
    assert delivered["Subject"].startswith("Alert xxx") and delivered["Subject"].endswith("...")
