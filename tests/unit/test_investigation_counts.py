"""Counts said "before the event" are of the calls before it, and names keep IAM's spelling.

A held-out case: kestrel.ops works 13:00-21:00 UTC from an office and from home with the AWS
CLI. In the week before 02:47:05 UTC on 14 March 2024 it made exactly 158 CLI calls (89 from the
office, 69 from home; 4 of them TerminateInstances) and signed in three times from home (two
failures, then a success). Then, from the office with the CLI, 23 single-instance
TerminateInstances calls ten seconds apart. The history a playbook reads may hold the burst's
first call (the window ends at it and the ``ingested`` source has it), none of the burst (the
trail has not delivered it yet), or the whole burst (a window ending after it): every count a
finding or the narrative says is "before" is 89, 158 and 4 in each case. No AWS, no I/O.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from actions.aws.cloudtrail_history import summarize
from actions.aws.cloudtrail_records import PrincipalRef
from actions.investigation.artifacts import extract
from actions.investigation.assess import assess
from actions.investigation.narrative import narrate
from actions.investigation.sources import Sources
from engine.alerts import template_view
from engine.normalize.cloudtrail import normalize_cloudtrail_record
from tests import cloudtrail_samples as ct

USER = "kestrel.ops"
ARN = f"arn:aws:iam::{ct.ACCOUNT}:user/ops/{USER}"
KEY = "AKIAEXAMPLEKESTREL01"
OFFICE, HOME = "192.0.2.41", "198.51.100.77"
CLI = "aws-cli/2.13.4 Python/3.11.6 Linux/6.1"
EVENT_TIME = datetime(2024, 3, 14, 2, 47, 5, tzinfo=UTC)
BURST = [f"i-0ke{n:02d}" for n in range(23)]
GEO = {
    ip: {"ip": ip, "scope": "public", "owner": "unknown",
         "country": {"iso_code": "CA", "name": "Canada"},
         "asn": {"number": 577, "organization": "BACOM"}}
    for ip in (OFFICE, HOME)
}


def identity() -> dict[str, Any]:
    return ct.user_identity(ARN, key=KEY)


def earlier_calls() -> list[dict[str, Any]]:
    """The 158 CLI calls of the week before: 89 from the office, then 69 from home."""
    slots = sorted(
        datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
        for day in ((EVENT_TIME - timedelta(days=d)).date() for d in range(1, 8))
        for hour in range(13, 21)
        for minute in (5, 25, 45)
    )[:158]
    return [
        ct.record(moment, "TerminateInstances" if n in (10, 50, 90, 130) else "DescribeInstances",
                  identity=identity(), ip=OFFICE if n < 89 else HOME, agent=CLI)
        for n, moment in enumerate(slots)
    ]


def sign_ins() -> list[dict[str, Any]]:
    """Two failed console sign-ins from home two days before, then a success (its own agent)."""
    day = (EVENT_TIME - timedelta(days=2)).replace(hour=13, minute=0, second=0)
    return [
        {**ct.console_login(day + timedelta(seconds=n), success=n == 2, mfa=True, ip=HOME),
         "userIdentity": identity()}
        for n in range(3)
    ]


def burst() -> list[dict[str, Any]]:
    """The 23 single-instance TerminateInstances calls, ten seconds apart, from the office."""
    return [
        ct.record(EVENT_TIME + timedelta(seconds=10 * n), "TerminateInstances",
                  identity=identity(), ip=OFFICE, agent=CLI,
                  request={"instancesSet": {"items": [{"instanceId": i}]}},
                  response={"instancesSet": {"items": [
                      {"instanceId": i, "currentState": {"code": 32, "name": "shutting-down"},
                       "previousState": {"code": 16, "name": "running"}}]}})
        for n, i in enumerate(BURST)
    ]


def history(records: list[dict[str, Any]], *, end: datetime = EVENT_TIME) -> dict[str, Any]:
    """What aws.cloudtrail.principal_history answers, judged at the burst's first call."""
    start = end - timedelta(days=7)
    summary = summarize(records, principal=PrincipalRef.parse(ARN), start=start, end=end,
                        alert_time=EVENT_TIME, resource_ids=BURST)
    window = {"start": ct.stamp(start), "end": ct.stamp(end)}
    output: dict[str, Any] = json.loads(json.dumps(
        {"principal": {"arn": ARN}, "window": window, "sources": {}, **summary}))
    return output


def alerts_of(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [template_view(f"alert-{n}", normalize_cloudtrail_record(r))
            for n, r in enumerate(records)]


def investigated(records: list[dict[str, Any]], history_output: dict[str, Any]) -> dict[str, Any]:
    alerts = alerts_of(records)
    return assess(Sources(artifacts=extract(alerts[0], alerts), history=history_output,
                          geo=GEO))


def answers(result: dict[str, Any]) -> dict[str, str]:
    return {f["id"]: f["answer"] for f in result["findings"]}


def by_id(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in result["findings"]}


def written(result: dict[str, Any]) -> dict[str, Any]:
    return narrate(result["findings"], result["open_questions"], result["verdict"])


WEEK = [*earlier_calls(), *sign_ins()]
HISTORIES = {
    # The window ends at the burst's first call, and a source (``ingested``) already holds it.
    "ending at the event, holding it": lambda: history([*WEEK, *burst()]),
    # The trail has not delivered the burst yet (LookupEvents and S3 lag by minutes).
    "ending at the event, without it": lambda: history(WEEK),
    # A playbook ended the window after the burst: the history holds all 23 calls.
    "ending after the burst": lambda: history([*WEEK, *burst()],
                                              end=EVENT_TIME + timedelta(minutes=5)),
}


@pytest.mark.parametrize("case", list(HISTORIES))
def test_the_findings_count_only_the_calls_before_the_event(case: str) -> None:
    said = answers(investigated(burst(), HISTORIES[case]()))

    assert said["source_ip.first_seen"] == (
        f"{OFFICE} was used by {USER} 89 times in the 7 days before, first at "
        "2024-03-07 13:05:00 UTC.")
    assert said["user_agent.seen_before"] == (
        f"{CLI} was used by {USER} 158 times in the 7 days before, first at "
        "2024-03-07 13:05:00 UTC.")
    assert said["event_name.cadence"] == (
        f"{USER} made 4 TerminateInstances call(s), the first at 2024-03-07 16:25:00 UTC in the "
        "7 days before the event.")


@pytest.mark.parametrize("case", list(HISTORIES))
def test_the_narrative_counts_only_the_calls_before_the_event(case: str) -> None:
    narrative = written(investigated(burst(), HISTORIES[case]()))["narrative"]

    assert f"{USER} had made 4 TerminateInstances call(s) in the 7 days before." in narrative
    assert f"{USER} had used {OFFICE} 89 times in the 7 days before." in narrative


def test_a_count_the_history_cannot_split_at_the_event_is_not_said_to_be_before() -> None:
    # The burst alternates between the office and home, and the window runs past it: how many
    # of each address's calls came before the event is not in the history.
    calls = burst()
    for call in calls[1::2]:
        call["sourceIPAddress"] = HOME
    result = investigated(calls, history([*WEEK, *calls], end=EVENT_TIME + timedelta(minutes=5)))
    said = answers(result)["source_ip.first_seen"]
    narrative = written(result)["narrative"]

    assert said.startswith(f"{OFFICE} was used by {USER} before the event, first at "
                           "2024-03-07 13:05:00 UTC (how many times is not known: ")
    values = {e["value"]: e for e in by_id(result)["source_ip.first_seen"]["evidence"]["values"]}
    assert values[OFFICE]["uses_before_event"] is None
    assert f"{USER} had used {OFFICE} before, first on 7 March 2024 at 13:05:00 UTC." in narrative
    assert "101 times" not in narrative and "89 times" not in narrative


def test_the_triggering_sign_in_failure_is_not_a_failure_before_it() -> None:
    # The run's alert is itself a failed sign-in (from an unknown address): the failures
    # "before the event" are the two earlier ones.
    failed = {**ct.console_login(EVENT_TIME, success=False, mfa=False, ip="203.0.113.9"),
              "userIdentity": identity()}
    said = answers(investigated([failed], history([*WEEK, failed])))

    assert said["principal.sign_in_failures"] == (
        f"Yes: 2 failed console sign-ins by {USER} between 2024-03-12 13:00:00 UTC and "
        f"2024-03-12 13:00:01 UTC from {HOME}, then a successful sign-in at "
        "2024-03-12 13:00:02 UTC.")


def test_the_triggering_change_to_the_principal_is_not_a_change_before_it() -> None:
    # The run's alert is a new access key for kestrel.ops (made with its own key); one earlier
    # change, an admin's policy detach three days before, is the only change before it.
    detach = ct.record(EVENT_TIME - timedelta(days=3), "DetachUserPolicy",
                       source="iam.amazonaws.com", region="us-east-1", ip="203.0.113.5",
                       identity=ct.user_identity(ct.ADMIN_ARN, key="AKIAEXAMPLEADMIN0001"),
                       request={"userName": USER,
                                "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"})
    new_key = ct.record(EVENT_TIME, "CreateAccessKey", source="iam.amazonaws.com",
                        region="us-east-1", identity=identity(), ip=OFFICE, agent=CLI,
                        request={"userName": USER},
                        response={"accessKey": {"accessKeyId": "AKIAEXAMPLEKESTREL02",
                                                "userName": USER, "status": "Active"}})
    result = investigated([new_key], history([*WEEK, detach, new_key]))
    finding = by_id(result)["principal.recent_changes"]

    assert finding["answer"] == (
        f"1 change to {USER} in the 7 days before, none in the last day before the event.")
    assert finding["signal"] == "notable"
    assert [c["event_name"] for c in finding["evidence"]["cloudtrail_changes"]] == [
        "DetachUserPolicy"]


def test_the_user_name_keeps_iams_spelling_at_the_start_of_a_sentence() -> None:
    result = investigated(burst(), HISTORIES["ending at the event, holding it"]())
    out = written(result)
    sentences = [s["text"] for s in out["sentences"]]
    every_text = json.dumps([result["findings"], out], ensure_ascii=False)

    assert "Kestrel" not in every_text
    assert answers(result)["event.what_happened"].startswith(
        f"{USER} (user) made 23 TerminateInstances calls naming 23 instances")
    opening_with_the_name = [s for s in sentences if s.startswith(USER)]
    assert f"{USER} had made 4 TerminateInstances call(s) in the 7 days before." in (
        opening_with_the_name)
    # Every other sentence still opens with a capital letter (or a number).
    for sentence in sentences:
        assert sentence.startswith(USER) or sentence[0].isupper() or sentence[0].isdigit(), (
            sentence)


def test_without_a_name_a_sentence_about_the_principal_opens_with_a_capital() -> None:
    result = investigated(burst(), HISTORIES["ending at the event, holding it"]())
    for finding in result["findings"]:
        if finding["id"] == "event.what_happened":
            finding["evidence"]["principal"] = None
    sentences = [s["text"] for s in written(result)["sentences"]]

    assert "The principal had made 4 TerminateInstances call(s) in the 7 days before." in (
        sentences)
    assert all(s[0].isupper() or s[0].isdigit() for s in sentences), sentences
