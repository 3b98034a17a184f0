"""Publish a short, readable run summary to an SNS topic."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import Field

from actions.aws.arns import arn_fields
from actions.aws.clients import AwsError, Client
from actions.aws.target import AwsInput
from actions.base import Action, ActionContext, ActionError, PlannedCall
from actions.notify import SummaryInput, plain, plain_block, summary_of
from actions.policy import Scope
from actions.registry import register

# arn:<partition>:sns:<region>:<account>:<name>; no named groups: it is a JSON Schema pattern too.
TOPIC_ARN = r"^arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$"
SUBJECT_LIMIT = 99  # SNS: "less than 100 characters", one line, no control characters
# SNS takes 256 KiB (bytes, attributes included): 60,000 characters fit even at 4 bytes each,
# and a summary meant for people is far shorter.
MESSAGE_LIMIT = 60_000


class PublishInput(AwsInput, SummaryInput):
    topic_arn: str = Field(pattern=TOPIC_ARN, description="ARN of the topic to publish to.")
    subject: str | None = Field(
        default=None,
        description="Subject for email subscribers; made one line and cut to 99 characters.",
    )
    message: str | None = Field(
        default=None, description="Message text; default: the run summary (plain text)."
    )
    message_group_id: str | None = Field(
        default=None,
        max_length=128,
        description="FIFO topics only: the message group; default: 'riposte-<run id>'.",
    )
    # A notification goes to the topic's own account and region, not to the alert's.
    account: str | None = Field(
        default=None,
        description="Account to publish from; default: the topic's (Riposte's own credentials "
        "there, else the responder role).",
    )
    region: str | None = Field(
        default=None, description="Region of the SNS endpoint; default: the topic's."
    )


@register
class Publish(Action[PublishInput]):
    """Publish a message (the run summary by default) to an SNS topic.

    Alert values in the summary are plain text, one line each, capped. On a FIFO topic the
    message carries ``MessageGroupId`` and a ``MessageDeduplicationId`` derived from run,
    step, topic and content, so a re-execution within SNS's 5-minute deduplication window
    delivers nothing twice. A standard topic has no deduplication: a retry after a lost answer
    may deliver the message twice; every message carries a ``riposte.dedup_id`` attribute so
    subscribers can drop duplicates. Not reversible: a published message cannot be unsent.

    ```yaml
    - id: tell-security
      action: aws.sns.publish
      with:
        topic_arn: arn:aws:sns:us-east-1:123456789012:security-alerts
        subject: "Riposte contained {{ alert.principal.name }}"
        done:
          - "user disabled"
    ```
    """

    name = "aws.sns.publish"
    Input = PublishInput
    grants = (
        Scope(
            "SnsTopicsOfTheAccount",
            "the topics are named in playbooks (vars, for_each): any topic of the account",
            ("arn:{partition}:sns:{region}:{account}:*",),
        ).allow("sns:GetTopicAttributes", "sns:Publish"),
    )
    mutating = True

    def plan(self, ctx: ActionContext, params: PublishInput) -> list[PlannedCall]:
        return [_prepare(ctx, params)[1]]

    def run(self, ctx: ActionContext, params: PublishInput) -> dict[str, Any]:
        sns, call = _prepare(ctx, params)
        answer = sns.publish(**call.params)
        fifo = "MessageGroupId" in call.params
        ctx.log.info("published message %s to %s", answer.get("MessageId"), params.topic_arn)
        return {
            "topic_arn": params.topic_arn,
            "message_id": answer.get("MessageId"),
            "fifo": fifo,
            "sequence_number": answer.get("SequenceNumber"),
            "subject": call.params.get("Subject"),
            "message": call.params["Message"],
            "dedup_id": call.params["MessageAttributes"]["riposte.dedup_id"]["StringValue"],
            "undo": None,
            "note": "a published message cannot be unsent"
            + (
                ""
                if fifo
                else "; a standard topic does not deduplicate, so a retry after a lost answer "
                "may deliver it twice"
            ),
        }


def _prepare(ctx: ActionContext, params: PublishInput) -> tuple[Client, PlannedCall]:
    """The client for the topic and the exact Publish call, after checking the topic exists."""
    topic = arn_fields(params.topic_arn)  # the input's pattern holds
    sns = ctx.aws.client(
        "sns", account=params.account or topic.account, region=params.region or topic.region
    )
    try:
        attributes = sns.get_topic_attributes(TopicArn=params.topic_arn)["Attributes"]
    except AwsError as exc:
        if exc.code == "NotFound":
            raise ActionError(
                "TopicNotFound", f"SNS topic {params.topic_arn} does not exist", retryable=False
            ) from exc
        raise
    message = plain_block(params.message, MESSAGE_LIMIT) if params.message else ""
    message = message or summary_of(ctx, params)
    subject = _subject(params.subject or "")
    dedup_id = _dedup_id(ctx, params.topic_arn, subject, message)
    request: dict[str, Any] = {
        "TopicArn": params.topic_arn,
        "Message": message,
        "MessageAttributes": {
            "riposte.run_id": {"DataType": "String", "StringValue": ctx.run_id},
            "riposte.dedup_id": {"DataType": "String", "StringValue": dedup_id},
        },
    }
    if subject:
        request["Subject"] = subject
    if attributes.get("FifoTopic") == "true":
        request["MessageGroupId"] = params.message_group_id or f"riposte-{ctx.run_id}"[:128]
        request["MessageDeduplicationId"] = dedup_id
    return sns, PlannedCall(
        service="sns", operation="Publish", params=request, target=params.topic_arn
    )


def _subject(text: str) -> str:
    """One line under SNS's limit, cut with an ASCII mark (email subjects are the strictest)."""
    line = plain(text, len(text))
    return line if len(line) <= SUBJECT_LIMIT else line[: SUBJECT_LIMIT - 3] + "..."


def _dedup_id(ctx: ActionContext, topic_arn: str, subject: str, message: str) -> str:
    """The same run, step, topic and content give the same id (64 hex characters)."""
    parts = (ctx.run_id, ctx.step_id, topic_arn, subject, message)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
