"""What can go wrong with an SNS delivery: not an SNS message, not one from SNS, or not one
Riposte acts on."""

from __future__ import annotations


class SnsMessageInvalid(ValueError):
    """The body is not a well-formed SNS message (answer 400)."""


class SnsSignatureInvalid(Exception):
    """The message cannot be proven to come from Amazon SNS (answer 403)."""


class SnsUrlRefused(SnsSignatureInvalid):
    """A URL in the message does not point at an Amazon SNS endpoint; nothing was requested."""


class SnsMessageRefused(Exception):
    """A message from SNS that Riposte does not act on (answer 403)."""


class SnsTopicRefused(SnsMessageRefused):
    """Its topic is not in the allow-list (RIPOSTE_SNS_TOPICS)."""


class SnsReplayRefused(SnsMessageRefused):
    """Its Timestamp is too old, or too far in the future: a replay of a captured message."""
