"""aws.cloudtrail.find_callers: who made the TerminateInstances calls a CloudWatch alarm counted.

The night of tests/alarm_samples (``burst_night``): the alarm goes off three minutes after
Roboman1's burst of 22 terminations, among other callers' terminations in the same minutes.

The trail's bucket is moto's S3 with real gzip log files, the ingested source a real database
(SQLite; PostgreSQL too when configured). moto's LookupEvents does not return the events it
is given to look up (it answers from its own trail model, which no test can seed), so that
source is played with botocore's Stubber, which checks each request; its rate limiter runs on
an injected clock.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as SessionMaker

from actions.aws import cloudtrail_callers
from actions.base import ActionError
from riposte.demo_trail import log_files
from tests import cloudtrail_samples as ct
from tests.alarm_samples import (
    ALARM_TIME,
    INSTANCES,
    ROLE_ARN,
    alarm_alert,
    burst_night,
    terminate,
)
from tests.aws_sandbox import AwsSandbox
from tests.integration.test_actions_cloudtrail import StubbedCloudTrail, _ingest, stub_cloudtrail

NAME = "aws.cloudtrail.find_callers"
BUCKET = "org-trail-logs"
WINDOW_START = ALARM_TIME - timedelta(minutes=10)


def _seed_bucket(aws: AwsSandbox, records: list[dict[str, Any]]) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for key, body in log_files(records).items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def _with_sources(aws: AwsSandbox, *sources: str) -> None:
    aws.settings = aws.settings.model_copy(
        update={"cloudtrail_bucket": BUCKET, "cloudtrail_sources": list(sources)}
    )


def _assert_the_burst_is_roboman1s(out: dict[str, Any]) -> None:
    """The ranking and figures of the night, whatever source they were read from."""
    assert out["window"] == {"start": "2020-11-06T03:14:39Z", "end": "2020-11-06T03:24:39Z"}
    assert out["events"] == 8  # the early call and the DescribeInstances are not counted
    assert [(c["name"], c["kind"], c["calls"], len(c["instance_ids"])) for c in out["callers"]] == [
        (ct.USER, "user", 2, 22),
        ("autoscaling.amazonaws.com", "service", 3, 3),
        ("deployer", "role", 2, 2),
        ("jdoe", "user", 1, 0),
    ]
    top = out["top"]
    assert top == out["callers"][0]
    assert (top["arn"], top["type"], top["account"]) == (ct.USER_ARN, "IAMUser", ct.ACCOUNT)
    assert (top["first_call"], top["last_call"]) == ("2020-11-06T03:21:39Z", "2020-11-06T03:21:52Z")
    assert top["instance_ids"] == INSTANCES
    assert top["by_event_name"] == {"TerminateInstances": 2}
    assert top["access_key_ids"] == ["AKIAEXAMPLEROBOMAN1"]
    assert [(ip["value"], ip["count"]) for ip in top["source_ips"]] == [(ct.NIGHT_IP, 2)]
    assert [a["value"] for a in top["user_agents"]] == [ct.CONSOLE_AGENT]
    # Its calls, shaped like the alerts Riposte makes of CloudTrail records.
    first = top["events"][0]
    assert (first["source"], first["event_name"], first["event_time"]) == (
        "cloudtrail",
        "TerminateInstances",
        "2020-11-06T03:21:39Z",
    )
    assert first["principal"]["arn"] == ct.USER_ARN and first["source_ip"] == ct.NIGHT_IP
    assert first["details"]["instance_ids"] == INSTANCES[:2]
    assert "raw" not in first["details"]
    assert top["events_listed"] == 2
    role = out["callers"][2]
    assert (role["arn"], role["sessions"]) == (ROLE_ARN, ["ci-42", "ci-43"])
    refused = out["callers"][3]
    assert (refused["failed_calls"], refused["instance_ids"]) == (1, [])


@pytest.mark.parametrize("mode", ["live", "dry_run"])
def test_the_trails_log_files_name_the_caller_of_the_burst(aws: AwsSandbox, mode: str) -> None:
    _seed_bucket(aws, burst_night())
    _with_sources(aws, "s3")
    env = aws.env(mode=mode, alert=alarm_alert(ALARM_TIME, account=ct.ACCOUNT, region="us-east-1"))

    acted = aws.act(NAME, {}, env=env)

    _assert_the_burst_is_roboman1s(acted.output)
    assert acted.output["read"] == ["s3"] and acted.output["failed"] == {}
    assert acted.output["sources"]["s3"]["regions"] == ["us-east-2"]
    assert acted.output["summary"].startswith(
        f"{ct.USER} (user) made 2 TerminateInstances call(s) naming 22 instance(s) between "
        "2020-11-06T03:14:39Z and 2020-11-06T03:24:39Z, found in s3; 4 caller(s) in all"
    )
    assert not acted.mutations
    json.dumps(acted.output)  # a step output: plain JSON


def test_the_ingested_events_name_the_same_caller(
    aws: AwsSandbox, sessionmaker: SessionMaker[Session]
) -> None:
    _ingest(sessionmaker, burst_night())
    env = aws.env(alert=alarm_alert(ALARM_TIME, account=ct.ACCOUNT, region="us-east-1"))
    env.sessions = sessionmaker  # type: ignore[attr-defined]  # what the worker hands a run

    acted = aws.act(NAME, {"sources": ["ingested"]}, env=env)

    _assert_the_burst_is_roboman1s(acted.output)
    assert acted.output["sources"]["ingested"]["events"] == 8
    assert acted.sent == []  # nothing asked of AWS


@pytest.fixture
def stubbed(aws: AwsSandbox, monkeypatch: pytest.MonkeyPatch) -> StubbedCloudTrail:
    """A run on the alarm."""
    alert = alarm_alert(ALARM_TIME, account=ct.ACCOUNT, region="us-east-2")
    return stub_cloudtrail(aws, monkeypatch, cloudtrail_callers, alert)


def test_lookup_events_is_queried_by_event_name_and_an_unreadable_source_is_reported(
    aws: AwsSandbox, stubbed: StubbedCloudTrail
) -> None:
    # What LookupEvents holds for EventName TerminateInstances in the window, in two pages.
    found = [r for r in burst_night() if r["eventName"] == "TerminateInstances"][1:]
    stubbed.expect(
        "us-east-2",
        "EventName",
        "TerminateInstances",
        [found[:5], found[5:]],
        start=WINDOW_START,
        end=ALARM_TIME,
    )

    out = aws.act(NAME, {"sources": ["lookup_events", "s3"]}, env=stubbed.env).output

    stubbed.stubs["us-east-2"].assert_no_pending_responses()
    _assert_the_burst_is_roboman1s(out)
    assert out["read"] == ["lookup_events"]
    assert out["failed"]["s3"].startswith("SourceUnavailable: ")
    assert "RIPOSTE_CLOUDTRAIL_BUCKET" in out["failed"]["s3"]
    report = out["sources"]["lookup_events"]
    assert (report["calls"], report["events"]) == (2, 8)
    assert stubbed.clock.slept >= 0.5  # the second page waited its turn


def test_no_readable_source_fails_the_step_saying_why_for_each(aws: AwsSandbox) -> None:
    env = aws.env(alert=alarm_alert(ALARM_TIME, account=ct.ACCOUNT, region="us-east-1"))

    with pytest.raises(ActionError) as error:
        aws.act(NAME, {"sources": ["s3", "ingested"]}, env=env)

    assert error.value.code == "SourcesUnreadable"
    assert "s3: SourceUnavailable" in error.value.message
    assert "ingested: SourceUnavailable" in error.value.message


def test_a_quiet_window_has_no_caller_and_says_so(aws: AwsSandbox) -> None:
    _seed_bucket(aws, burst_night())
    _with_sources(aws, "s3")
    later = ALARM_TIME + timedelta(hours=2)
    env = aws.env(alert=alarm_alert(later, account=ct.ACCOUNT, region="us-east-1"))

    out = aws.act(NAME, {}, env=env).output

    assert out["callers"] == [] and out["top"] is None and out["events"] == 0
    assert out["summary"] == (
        "no caller of TerminateInstances with at least 1 call(s) between 2020-11-06T05:14:39Z "
        "and 2020-11-06T05:24:39Z in s3"
    )


def test_callers_below_min_calls_are_left_out_and_counted(aws: AwsSandbox) -> None:
    _seed_bucket(aws, burst_night())
    _with_sources(aws, "s3")
    env = aws.env(alert=alarm_alert(ALARM_TIME, account=ct.ACCOUNT, region="us-east-1"))

    out = aws.act(NAME, {"min_calls": 3, "event_names": ["TerminateInstances"]}, env=env).output

    assert [c["name"] for c in out["callers"]] == ["autoscaling.amazonaws.com"]
    assert out["callers_below_min_calls"] == 3


def test_what_a_caller_wrote_is_cleaned_and_stays_text(aws: AwsSandbox) -> None:
    agent = "evil\x1b[31m{{ 7*7 }}\u202egpj.exe\n"
    _seed_bucket(aws, [terminate(0, ["i-0prod00"], agent=agent)])
    _with_sources(aws, "s3")
    env = aws.env(alert=alarm_alert(ALARM_TIME, account=ct.ACCOUNT, region="us-east-1"))

    top = aws.act(NAME, {}, env=env).output["top"]

    shown = json.dumps([top["user_agents"], top["events"]], ensure_ascii=False)
    assert "\x1b" not in shown and "\u202e" not in shown and "\\n" not in shown
    assert top["user_agents"][0]["value"] == "evil[31m{{ 7*7 }}gpj.exe"
