"""What can go wrong with an SNS delivery: not an SNS message, or not one from SNS."""

from __future__ import annotations


class SnsMessageInvalid(ValueError):
    """The body is not a well-formed SNS message (answer 400)."""


class SnsSignatureInvalid(Exception):
    """The message cannot be proven to come from Amazon SNS (answer 403)."""


class SnsUrlRefused(SnsSignatureInvalid):
    """A URL in the message does not point at an Amazon SNS endpoint; nothing was requested."""
