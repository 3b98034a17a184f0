"""Decide whether Riposte acts on a verified SNS message: an allowed topic, and not a replay.

A valid signature proves only that Amazon SNS sent the message, to someone: anyone can create a
topic, subscribe an endpoint of their own, and post what SNS delivered to it on to Riposte. So
every message type is held to the allow-list of topics, and to its signed ``Timestamp``: SNS
retries an HTTP(S) delivery for at most an hour, so a message much older than that is a
capture being replayed (a repeat within the window is a duplicate by its MessageId).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.sns.errors import SnsReplayRefused, SnsTopicRefused
from engine.sns.messages import SnsMessage, topic_allowed

# SNS stamps a message when it publishes it: one stamped further ahead than two clocks may
# differ by is no delivery in progress, or this host's clock is wrong (the refusal says so).
MAX_CLOCK_AHEAD = timedelta(minutes=5)


def admit(message: SnsMessage, *, topics: list[str], max_age: timedelta, now: datetime) -> None:
    """Raise SnsMessageRefused unless the message's topic is allowed and its time is current.

    ``topics``: the allow-list (RIPOSTE_SNS_TOPICS); ``max_age``: how old its Timestamp may be
    (RIPOSTE_SNS_MAX_AGE_SECONDS); ``now``: the time it is received, timezone-aware.
    """
    if not topic_allowed(message.topic_arn, topics):
        raise SnsTopicRefused(f"topic {message.topic_arn!r} is not allowed by RIPOSTE_SNS_TOPICS")
    sent = message.sent_at
    if sent < now - max_age:
        raise SnsReplayRefused(
            f"its Timestamp {message.timestamp} is {_age(now - sent)} old, older than "
            f"RIPOSTE_SNS_MAX_AGE_SECONDS ({max_age.total_seconds():g} s) allows; SNS retries "
            "a delivery for an hour at most"
        )
    if sent > now + MAX_CLOCK_AHEAD:
        raise SnsReplayRefused(
            f"its Timestamp {message.timestamp} is {_age(sent - now)} in the future, more than "
            f"the {_age(MAX_CLOCK_AHEAD)} clocks may differ by (check this host's clock)"
        )


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min" + (f" {seconds % 60} s" if seconds % 60 else "")
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"
