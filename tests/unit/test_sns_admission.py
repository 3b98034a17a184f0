"""engine.sns.admission: a verified SNS message is acted on only from an allowed topic, and
only while SNS could still be delivering it (its signed Timestamp)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from engine.sns import (
    MAX_CLOCK_AHEAD,
    SnsMessage,
    SnsReplayRefused,
    SnsTopicRefused,
    admit,
    parse_sns_message,
)
from tests.sns_keys import TOPIC_ARN, confirmation, notification, sign, sns_timestamp

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
HOUR_AND_A_QUARTER = timedelta(seconds=4500)
ALLOWED = ["arn:aws:sns:*:123456789012:riposte-*"]
KINDS = ["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"]


def _message(kind: str, sent: datetime, **fields: str) -> SnsMessage:
    fields["Timestamp"] = sns_timestamp(sent)
    unsigned = (notification(**fields) if kind == "Notification"
                else confirmation(kind, **fields))
    return parse_sns_message(json.dumps(sign(unsigned)))


def _admit(message: SnsMessage, *, topics: list[str] = ALLOWED) -> None:
    admit(message, topics=topics, max_age=HOUR_AND_A_QUARTER, now=NOW)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sent", [
    pytest.param(NOW, id="now"),
    pytest.param(NOW - timedelta(hours=1), id="after-an-hour-of-retries"),
    pytest.param(NOW - HOUR_AND_A_QUARTER, id="at-the-limit"),
    pytest.param(NOW + MAX_CLOCK_AHEAD, id="clock-five-minutes-ahead"),
])
def test_a_current_message_from_an_allowed_topic_is_admitted(kind: str, sent: datetime) -> None:
    _admit(_message(kind, sent))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("topics", [
    pytest.param([], id="no-allow-list"),
    pytest.param(["arn:aws:sns:*:999999999999:*"], id="another-account"),
    pytest.param([TOPIC_ARN.upper()], id="case-differs"),
])
def test_a_topic_the_allow_list_does_not_match_is_refused_whatever_the_type(
    kind: str, topics: list[str]
) -> None:
    with pytest.raises(SnsTopicRefused, match=f"topic '{TOPIC_ARN}' is not allowed by "
                                              "RIPOSTE_SNS_TOPICS"):
        _admit(_message(kind, NOW), topics=topics)


@pytest.mark.parametrize(("sent", "said"), [
    pytest.param(NOW - HOUR_AND_A_QUARTER - timedelta(milliseconds=1), "75 min old",
                 id="just-past-the-limit"),
    pytest.param(datetime(2015, 5, 26, 7, 49, 42, tzinfo=UTC), "3567 days old", id="from-2015"),
    pytest.param(NOW + MAX_CLOCK_AHEAD + timedelta(seconds=1), "5 min 1 s in the future",
                 id="just-too-far-ahead"),
])
def test_a_message_outside_the_window_is_a_replay_saying_how_far(
    sent: datetime, said: str
) -> None:
    with pytest.raises(SnsReplayRefused, match=said):
        _admit(_message("Notification", sent))


def test_the_topic_is_judged_before_the_time() -> None:
    old_and_foreign = _message("Notification", NOW - timedelta(days=3650),
                               TopicArn="arn:aws:sns:us-east-1:999999999999:attacker-topic")
    with pytest.raises(SnsTopicRefused):
        _admit(old_and_foreign)


def test_a_timestamp_in_another_offset_is_compared_as_the_same_instant() -> None:
    message = parse_sns_message(json.dumps(
        sign(notification(Timestamp="2025-03-01T13:59:00+02:00"))))
    _admit(message)  # 11:59 UTC: a minute old
