"""A run's investigation through the HTTP API: GET /v1/runs/{id} shows findings and narrative.

The playbook feeds investigation.assess literal enrichment outputs (no AWS): a week of
09:00-17:00 UTC work from the office, then the seed's termination at 03:21:39 UTC from an
address in another country, after a sign-in without MFA.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from core.settings import AccountEntry, Settings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import PostAlert, Tokens, WaitForRun

OWNER = "platform-team@example.com"
ACCOUNTS = {"123456789012": AccountEntry(name="prod-apps", environment="production", owner=OWNER)}
INVESTIGATE = """\
name: investigate
description: Investigate an instance termination from literal enrichment outputs
trigger:
  source: [cloudtrail]
  event_name: [TerminateInstances]
steps:
  - id: assess
    action: investigation.assess
    with:
      alerts: "{{ alerts }}"
      geolocate: false
      usual_countries: [US]
      history:
        window: {start: "2020-10-30T03:21:39Z", end: "2020-11-06T03:21:39Z"}
        principal_events: 56
        working_hours: {start_hour: 9, end_hour: 17, hours: 8, label: "09:00-17:00 UTC",
                        based_on_events: 56, based_on_active_hours: 56}
        activity_by_hour: [0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 7, 7, 7, 7, 7, 7, 7, 0, 0, 0, 0, 0, 0, 0]
        source_ips:
          - {value: 198.51.100.10, count: 56, first_seen: "2020-10-30T09:15:00Z",
             last_seen: "2020-11-05T16:15:00Z", seen_before_alert: true}
        console_sign_ins:
          sign_ins:
            - {time: "2020-11-06T03:02:23Z", outcome: Success, mfa_used: false,
               source_ip: 180.163.251.231}
  - id: narrate
    action: investigation.narrate
    with:
      findings: "{{ vars.findings }}"
      open_questions: "{{ vars.open_questions }}"
      verdict: "{{ vars.verdict }}"
"""
ALERT: dict[str, Any] = {
    "title": "TerminateInstances by Roboman1",
    "source": "cloudtrail",
    "severity": 0,
    "account": "123456789012",
    "region": "us-east-2",
    "principal": {"type": "IAMUser", "name": "Roboman1", "account": "123456789012",
                  "arn": "arn:aws:iam::123456789012:user/Development/Roboman1"},
    "resources": [{"type": "AwsEc2Instance", "id": "i-2oc7w12"},
                  {"type": "AwsEc2Instance", "id": "i-eob7w13"}],
    "event_time": "2020-11-06T03:21:39Z",
    "event_name": "TerminateInstances",
    "source_ip": "180.163.251.231",
    "user_agent": "console.ec2.amazonaws.com",
    "mfa_used": False,
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"accounts": ACCOUNTS})


@pytest.fixture(autouse=True)
def _playbooks(write_playbook: Callable[[str, str], Path]) -> None:
    write_playbook("investigate.yml", INVESTIGATE)


def test_the_run_shows_its_findings_open_questions_narrative_and_recommendation(
    worker_client: TestClient, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun
) -> None:
    [run_id] = post_alert(worker_client, tokens.as_ingest, **ALERT)["run_ids"]
    run = wait_for_run(worker_client, run_id, tokens.as_responder, "succeeded")

    findings = {f["id"]: f for f in run["findings"]}
    hours = findings["event_time.off_hours"]
    assert hours["question"] == "Is the activity occurring off-hours for this principal?"
    assert hours["answer"].startswith("Yes: 2020-11-06 03:21:39 UTC is outside")
    assert (hours["evidence"]["usual_window"], hours["evidence"]["based_on_events"]) == (
        "09:00-17:00 UTC", 56)
    assert hours["confidence"] == "high"
    assert findings["account.purpose"]["evidence"]["owner"] == OWNER
    assert findings["principal.mfa"]["evidence"]["mfa_used"] is False
    opened = {q["id"]: q["why_not_answered"] for q in run["open_questions"]}
    assert "geolocate: false" in opened["source_ip.location"]
    assert "aws.ec2.describe_instances" in opened["instances.launched"]
    assert run["verdict"]["unusual"] is True and run["verdict"]["principal_kind"] == "user"
    assert set(run["verdict"]["reasons"]) == {"event_time.off_hours", "principal.mfa"}
    assert run["narrative"].startswith(
        "On 6 November 2020 at 03:21:39 UTC, AWS CloudTrail alerted to the user Roboman1 "
        "terminating 2 instances in the AWS account 123456789012")
    assert run["recommendation"][0].startswith(
        "We recommend temporarily disabling the user Roboman1")
    assert OWNER in run["recommendation"][0]
    # The same values, as the steps stored them in the run's context.
    assert run["vars"]["findings"] == run["findings"]
    assert run["vars"]["narrative"] == run["narrative"]
