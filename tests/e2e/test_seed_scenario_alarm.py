"""The seed's mass-termination case reported by a CloudWatch alarm through SNS, end to end.

Through the HTTP API with one in-process worker, with the shipped playbooks and AWS on a moto
server, the account seeded by ``riposte/demo_scenario.py`` (a week of history in the trail's
bucket). The attack is played on AWS and written to the trail's bucket as CloudTrail delivers
it, but none of its events reaches Riposte: only the alarm does, as a signed SNS notification.
The run must find the caller in the trail, ask one approval and contain it — checked afterwards
with plain boto3. A rehearsal of the same alarm changes nothing; an alarm whose calls are not in
the trail contains nothing and says so.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from engine.store.types import settle_clock
from riposte.demo_scenario import (
    ACCOUNT,
    FAILED_SIGN_INS,
    FIRST_CALL,
    REGION,
    TRAIL_BUCKET,
    USER,
    Account,
    Played,
    seed_account,
)
from riposte.demo_trail import console_sign_in, log_files, terminate_instances
from tests import sns_keys
from tests.alarm_samples import ALARM, alarm_message, alarm_notification
from tests.aws_sandbox import AwsSandbox
from tests.e2e.test_seed_scenario import (
    INTACT,
    Scene,
    finished,
    instances,
    moto_endpoint,  # noqa: F401  # the module's moto server, started as the demo starts it
    own_images,
    planned,
    replacements,
    scenario_settings,  # noqa: F401  # the shipped playbooks, the scenario's history settings
    statuses,
    user_state,
)

if TYPE_CHECKING:
    from tests.e2e.conftest import Tokens

PLAYBOOK = "mass-instance-termination"
ALARM_SETTLE = 120.0  # the playbook's settle: {quiet: 2m, at_most: 2m}
SNS = "/v1/webhooks/sns"


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """SQLite only: what this path stores is what the EventBridge path stores, and
    test_seed_scenario.py runs that on PostgreSQL too."""
    return sqlite_url


@pytest.fixture
def alarm_settings(scenario_settings: Settings, tmp_path: Path) -> Settings:  # noqa: F811
    """The scenario's settings, and SNS deliveries verified with the test certificate."""
    cert_dir = tmp_path / "sns-certs"
    cert_dir.mkdir()
    (cert_dir / sns_keys.CERT_FILE_NAME).write_bytes(sns_keys.default_identity().certificate_pem)
    return scenario_settings.model_copy(
        update={"sns_cert_dir": cert_dir, "sns_topics": [sns_keys.TOPIC_ARN]}
    )


def attack_unseen(account: Account, *, late: int = 0) -> datetime:
    """Play the attack on AWS and write its CloudTrail records to the trail's bucket only.

    Nine failed sign-ins and one without MFA, then the terminations in two calls, each phase a
    second after the one before and after the backups were taken; returns the time the alarm
    goes off, just after the last call. ``late``: that many production instances are
    terminated by a third call, a second after the alarm went off (the burst goes on).
    """
    caller = account.caller
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    records = [console_sign_in(caller, start, succeeded=False) for _ in range(FAILED_SIGN_INS)]
    records.append(console_sign_in(caller, start + timedelta(seconds=1), succeeded=True))
    ec2 = account.client("ec2")
    fleet = account.fleet
    last = [i for i in fleet.all if i not in fleet.production[len(fleet.production) - late:]]
    batches = [fleet.all[:FIRST_CALL], last[FIRST_CALL:]]
    if late:
        batches.append(fleet.production[-late:])
    for n, batch in enumerate(batches):
        n += 1 if n == 2 else 0  # the late call: after the alarm (start + 5)
        answer = ec2.terminate_instances(InstanceIds=batch)
        records.append(
            terminate_instances(
                caller,
                start + timedelta(seconds=2 + n),
                answer,
                region=account.region,
                console=True,
            )
        )
    s3 = account.client("s3")
    for key, body in log_files(records).items():
        s3.put_object(Bucket=TRAIL_BUCKET, Key=key, Body=body)
    return start + timedelta(seconds=5)


def post_alarm(client: TestClient, moment: datetime) -> list[str]:
    """Deliver the alarm as SNS does (signed, text/plain); return the runs it started."""
    message = sns_keys.sign(
        alarm_notification(alarm_message(moment, account=ACCOUNT, region=REGION))
    )
    response = client.post(
        SNS,
        content=json.dumps(message),
        headers={
            "Content-Type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": "Notification",
        },
    )
    assert response.status_code == 202, response.text
    [alert] = response.json()["alerts"]
    run_ids: list[str] = alert["run_ids"]
    # The run waits out the playbook's settle (two minutes) on the settle clock, not the wall's.
    settle_clock.advance(ALARM_SETTLE)
    return run_ids


@contextmanager
def serving(alarm_settings: Settings, tokens: Tokens, account: Account) -> Iterator[Scene]:
    with TestClient(create_app(alarm_settings, in_process_workers=1)) as client:
        try:
            yield Scene(client=client, tokens=tokens, account=account, played=Played())
        finally:
            settle_clock.reset()


def step_output(run: dict[str, Any], step_id: str) -> Any:
    step = finished(run, step_id)
    assert step["status"] == "succeeded", step
    return step["output"]


def test_an_alarm_finds_the_caller_in_the_trail_and_contains_it_once_approved(
    alarm_settings: Settings, tokens: Tokens, aws: AwsSandbox
) -> None:
    account = seed_account(aws.url)
    alarm_time = attack_unseen(account, late=2)
    fleet = account.fleet
    # The late call (a second after the alarm) is made before the run reads the trail, as
    # after the playbook's two minutes of settle it would be; on the wall clock, that is now.
    time.sleep(max(0.0, (alarm_time - datetime.now(UTC)).total_seconds() + 2))
    with serving(alarm_settings, tokens, account) as scene:
        [run_id] = post_alarm(scene.client, alarm_time)
        run = scene.run(run_id, "waiting_approval", "failed", "succeeded")
        assert run["status"] == "waiting_approval", run
        assert run["playbook"] == PLAYBOOK

        # The caller, found in the trail's bucket: Roboman1's three calls (the last one after
        # the alarm went off: the burst went on), the whole fleet.
        top = step_output(run, "callers")["top"]
        assert (top["name"], top["kind"], top["arn"]) == (USER, "user", account.user_arn)
        assert top["calls"] == 3 and sorted(top["instance_ids"]) == sorted(fleet.all)
        assert sorted(step_output(run, "production")["terminated_production"]) == sorted(
            fleet.production
        )

        # Investigated and narrated from its own calls; the alarm is told as an alarm.
        verdict = run["verdict"]
        assert verdict["unusual"] is True and verdict["principal"] == USER
        assert {"event_time.off_hours", "principal.sign_in_failures", "principal.mfa"} <= set(
            verdict["reasons"]
        )
        seen = {f["id"]: f for f in run["findings"]}["event_time.seen_at_this_hour"]
        assert seen["answer"].startswith("No: none of its")  # its sign-ins are its lead-up
        assert f"The CloudWatch alarm {ALARM} went into ALARM" in run["narrative"]
        assert f"CloudTrail recorded the user {USER} terminating" in run["narrative"]
        assert f"{ALARM} call" not in run["narrative"]

        # One approval: the user's containment, covering the keys and the relaunch.
        [pending] = run["approvals"]
        request = scene.get(f"/v1/approvals/{pending['id']}")
        assert request["step_id"] == "disable-user"
        assert request["plan"]["briefing"]["narrative"] == run["narrative"]
        covered = {
            sub["step"]: [c["operation"] for c in sub["calls"][0]]
            for sub in request["plan"]["covers"]
        }
        assert covered["revoke-keys"] == ["UpdateAccessKey"] * 2
        assert covered["relaunch"].count("RunInstances") == len(fleet.production)
        assert user_state(aws) == INTACT

        # A rehearsal of the same alarm, approved by another responder, changes nothing.
        images = own_images(aws)
        dry = scene.rehearse(run["alert_id"], PLAYBOOK)
        assert [c["operation"] for c in planned(dry, "revoke-keys")] == ["UpdateAccessKey"] * 2
        assert [c["operation"] for c in planned(dry, "relaunch")].count("RunInstances") == len(
            fleet.production
        )
        assert user_state(aws) == INTACT and replacements(aws) == {}
        assert own_images(aws) == images

        scene.approve(request, tokens.as_other_responder)
        run = scene.run(run_id, "succeeded", "failed", "rejected")
        assert run["status"] == "succeeded", run
        assert scene.get("/v1/audit/verify")["ok"] is True

    assert user_state(aws) == {"denied": True, "keys": ["Inactive", "Inactive"], "password": False}
    relaunched = replacements(aws)
    assert sorted(relaunched) == sorted(fleet.production)
    assert {new["State"]["Name"] for new in relaunched.values()} == {"running"}
    now = instances(aws)
    assert all(now[i]["State"]["Name"] == "terminated" for i in fleet.all)


# The trail holds none of the alarm's calls; or no CloudTrail source can be read at all.
NOT_FOUND = {
    "not-in-the-trail": ({}, "(no caller of TerminateInstances with at least 1 call(s) between"),
    "no-readable-source": (
        {"cloudtrail_sources": ["s3"], "cloudtrail_bucket": None},
        "(no CloudTrail source could be read: s3: SourceUnavailable: the s3 CloudTrail source "
        "needs RIPOSTE_CLOUDTRAIL_BUCKET",
    ),
}


@pytest.mark.parametrize("case", list(NOT_FOUND))
def test_an_alarm_whose_caller_is_not_found_contains_nothing_and_says_so(
    alarm_settings: Settings, tokens: Tokens, aws: AwsSandbox, case: str
) -> None:
    changed, why = NOT_FOUND[case]
    account = seed_account(aws.url, fleet=False)
    with serving(alarm_settings.model_copy(update=changed), tokens, account) as scene:
        [run_id] = post_alarm(scene.client, datetime.now(UTC))
        run = scene.run(run_id, "succeeded", "failed", "waiting_approval")

    assert run["status"] == "succeeded", run
    assert run["approvals"] == []
    said = step_output(run, "no-caller")["message"]
    assert said.startswith(
        f"alarm {ALARM} in account {ACCOUNT}: the caller of TerminateInstances was not found "
        f"in CloudTrail {why}"
    ), said
    assert said.endswith(
        "nothing is contained; find it by hand and contain it, or start "
        "mass-instance-termination on its CloudTrail event"
    )
    steps = statuses(run)
    assert steps["callers"] == ("failed" if case == "no-readable-source" else "succeeded")
    untouched = (
        "instances",
        "history",
        "assess",
        "disable-user",
        "revoke-role-sessions",
        "revoke-keys",
        "relaunch",
    )
    assert {steps[s] for s in untouched} == {"skipped"}
    assert step_output(run, "outcome")["outcome"][0] == said
    assert user_state(aws) == INTACT
