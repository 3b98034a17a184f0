"""Parse the JSON body SNS posts to an HTTP(S) subscriber, and build the string it signed."""

from __future__ import annotations

import fnmatch
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.delivery_json import MalformedJson, UnstorableText, parse_delivery_json
from engine.sns.errors import SnsMessageInvalid

SnsMessageType = Literal["SubscriptionConfirmation", "Notification", "UnsubscribeConfirmation"]
SUBSCRIPTION_TYPES = frozenset({"SubscriptionConfirmation", "UnsubscribeConfirmation"})

# The signed keys per message type, in the byte order AWS signs them
# (docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html).
NOTIFICATION_SIGNED_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SUBSCRIPTION_SIGNED_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)


class SnsMessage(BaseModel):
    """One message SNS posted: a notification or a (un)subscription confirmation."""

    # AWS adds fields over time (MessageAttributes, ...): keep them rather than refuse the message.
    # Strict: a number where SNS always sends a string is a forged or broken body, not a value.
    model_config = ConfigDict(extra="allow", frozen=True, strict=True, populate_by_name=True)

    type: SnsMessageType = Field(alias="Type")
    message_id: str = Field(alias="MessageId", min_length=1)
    topic_arn: str = Field(alias="TopicArn", min_length=1)
    subject: str | None = Field(default=None, alias="Subject")
    message: str = Field(alias="Message")
    timestamp: str = Field(alias="Timestamp", min_length=1)
    signature_version: str = Field(alias="SignatureVersion")
    signature: str = Field(alias="Signature")
    signing_cert_url: str = Field(alias="SigningCertURL")
    subscribe_url: str | None = Field(default=None, alias="SubscribeURL")
    token: str | None = Field(default=None, alias="Token")
    unsubscribe_url: str | None = Field(default=None, alias="UnsubscribeURL")

    @field_validator("timestamp")
    @classmethod
    def _timestamp_is_a_time(cls, value: str) -> str:
        # Kept as text (it is signed as sent); read once here so that a bad one is a 400.
        _sent_at(value)
        return value

    @property
    def sent_at(self) -> datetime:
        """When SNS published the message (its signed Timestamp), timezone-aware."""
        return _sent_at(self.timestamp)

    @model_validator(mode="after")
    def _confirmation_has_url_and_token(self) -> SnsMessage:
        if self.type in SUBSCRIPTION_TYPES:
            missing = [
                name
                for name, value in (("SubscribeURL", self.subscribe_url), ("Token", self.token))
                if value is None
            ]
            if missing:
                raise ValueError(f"a {self.type} message needs {' and '.join(missing)}")
        return self

    def string_to_sign(self) -> bytes:
        """Return the canonical bytes SNS signed: each signed key and its value, one per line."""
        values: dict[str, str | None] = {
            "Message": self.message,
            "MessageId": self.message_id,
            "Subject": self.subject,
            "SubscribeURL": self.subscribe_url,
            "Timestamp": self.timestamp,
            "Token": self.token,
            "TopicArn": self.topic_arn,
            "Type": self.type,
        }
        subscription = self.type in SUBSCRIPTION_TYPES
        keys = SUBSCRIPTION_SIGNED_KEYS if subscription else NOTIFICATION_SIGNED_KEYS
        # Subject is signed only when present; a null Subject is absent (as in AWS's validators).
        text = "".join(f"{key}\n{values[key]}\n" for key in keys if values[key] is not None)
        return text.encode("utf-8")


def _sent_at(timestamp: str) -> datetime:
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        raise ValueError(f"{timestamp!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"{timestamp!r} has no time zone (SNS writes UTC, ending in Z)")
    return moment


def parse_sns_message(body: str | bytes) -> SnsMessage:
    """Parse an SNS HTTP(S) body (JSON sent as text/plain) into an SnsMessage.

    A field holding text no database stores as sent (a lone surrogate, a NUL) makes it invalid
    too: SNS never sends one, and the body is kept with the alerts it carries.
    """
    try:
        document: Any = parse_delivery_json(body)
    except MalformedJson as exc:
        raise SnsMessageInvalid(f"SNS message body is not JSON: {exc}") from exc
    except UnstorableText as exc:
        raise SnsMessageInvalid(f"SNS message cannot be stored: {exc}") from exc
    return sns_message_from_document(document)


def sns_message_from_document(document: Any) -> SnsMessage:
    """Build an SnsMessage from an already decoded JSON document."""
    if not isinstance(document, dict):
        raise SnsMessageInvalid(
            f"SNS message body must be a JSON object, got {type(document).__name__}"
        )
    try:
        return SnsMessage.model_validate(document)
    except ValidationError as exc:
        raise SnsMessageInvalid(f"SNS message is invalid: {_describe(exc)}") from exc


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        if error["type"] == "missing":
            problems.append(f"field '{where}' is missing")
        elif where:
            problems.append(f"field '{where}': {error['msg'].removeprefix('Value error, ')}")
        else:
            problems.append(error["msg"].removeprefix("Value error, "))
    return "; ".join(problems)


def topic_allowed(topic_arn: str, patterns: list[str]) -> bool:
    """Return whether a topic ARN matches one of the allow-list's shell-style patterns."""
    # fnmatchcase: ARNs are case-sensitive, and fnmatch would fold case on some platforms.
    return any(fnmatch.fnmatchcase(topic_arn, pattern) for pattern in patterns)
