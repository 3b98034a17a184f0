"""The seed's mass-termination case end to end, as ``riposte demo`` plays it.

Through the HTTP API with one in-process worker, on SQLite and PostgreSQL, with the shipped
playbooks and AWS on a moto server: the account is seeded and attacked by
``riposte/demo_scenario.py`` (the demo's own module), the CloudTrail events arrive as
EventBridge delivers them, and what is checked afterwards is read back with plain boto3.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from core.settings import Settings
from engine.store.types import settle_clock
from riposte.cli import app
from riposte.demo_aws import LocalAws
from riposte.demo_scenario import (
    ACCOUNT,
    REGION,
    USER,
    Account,
    Played,
    play,
    seed_account,
)
from riposte.demo_scenario import SETTINGS as SCENARIO_SETTINGS
from tests.aws_sandbox import AwsSandbox
from tests.replay.record import guardduty_finding as recorded_finding

if TYPE_CHECKING:
    from tests.e2e.conftest import Tokens

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
PLAYBOOK = "mass-instance-termination"
WAIT_SECONDS = 60.0
DENY_ALL = "arn:aws:iam::aws:policy/AWSDenyAll"
SETTLE_AT_MOST = 300.0  # the shipped playbook's settle: {quiet: 1m, at_most: 5m}


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """This module's moto server, started as the demo starts it: without moto's ~1300 public
    images, whose snapshots its tag filter would walk one by one on every backup lookup (two
    per instance here). The ``aws`` fixture resets it and points Riposte at it as usual."""
    local = LocalAws(REGION)
    url = local.start(point_boto3=False)
    try:
        yield url
    finally:
        local.stop()


@pytest.fixture
def scenario_settings(settings: Settings, aws: AwsSandbox) -> Settings:
    """The e2e settings (database, polling), the sandbox's AWS, the scenario's history and
    account registry, the shipped playbooks."""
    return Settings.model_validate(
        {
            **settings.model_dump(),
            **aws.settings.model_dump(
                include={"aws_endpoint_url", "aws_region", "aws_retry_seconds", "responder_role"}
            ),
            **SCENARIO_SETTINGS,
            "playbook_dir": PLAYBOOKS,
            "ec2_poll_seconds": 0.1,
        }
    )


@dataclass
class Scene:
    client: TestClient
    tokens: Tokens
    account: Account
    played: Played

    def run(self, run_id: str, *statuses: str) -> dict[str, Any]:
        """Wait for the run to reach one of ``statuses``; return it."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            run: dict[str, Any] = self.get(f"/v1/runs/{run_id}")
            if run["status"] in statuses:
                return run
            assert time.monotonic() < deadline, f"run {run_id} is {run['status']}: {run}"
            time.sleep(0.1)

    def get(self, path: str) -> Any:
        response = self.client.get(path, headers=self.tokens.as_responder)
        assert response.status_code == 200, response.text
        return response.json()

    def rehearse(self, alert_id: str, playbook: str) -> dict[str, Any]:
        """Run ``playbook`` on the alert in dry-run; another responder approves it; return it."""
        started = self.client.post(
            "/v1/runs", headers=self.tokens.as_responder,
            json={"alert_id": alert_id, "playbook": playbook, "mode": "dry_run"},
        )
        assert started.status_code == 201, started.text
        dry_id = started.json()["id"]
        dry = self.run(dry_id, "waiting_approval", "failed", "succeeded")
        assert dry["status"] == "waiting_approval", dry
        [rehearsed] = dry["approvals"]
        self.approve(self.get(f"/v1/approvals/{rehearsed['id']}"), self.tokens.as_other_responder)
        dry = self.run(dry_id, "succeeded", "failed", "rejected")
        assert dry["status"] == "succeeded" and dry["mode"] == "dry_run", dry
        return dry

    def approve(self, request: dict[str, Any], headers: dict[str, str]) -> None:
        response = self.client.post(
            f"/v1/approvals/{request['id']}/decision", headers=headers,
            json={"decision": "approve", "plan_hash": request["plan_hash"],
                  "reason": "contain and recover"},
        )
        assert response.status_code == 200, response.text


@contextmanager
def attacked(
    scenario_settings: Settings, tokens: Tokens, aws: AwsSandbox, *, routine: bool = False
) -> Iterator[Scene]:
    """Seed the account, start Riposte, play the terminations; yield while it serves.

    The burst is over once played: the settle clock moves on past the playbook's settle period
    (``at_most``) instead of the test waiting for the quiet minute.
    """
    account = seed_account(aws.url, routine=routine)
    with TestClient(create_app(scenario_settings, in_process_workers=1)) as client:
        played = play(account, client, tokens.ingest)
        settle_clock.advance(SETTLE_AT_MOST)
        try:
            yield Scene(client=client, tokens=tokens, account=account, played=played)
        finally:
            settle_clock.reset()


# ---------------------------------------------------------------------------------------------
# What AWS shows afterwards, read with plain boto3


def user_state(aws: AwsSandbox) -> dict[str, Any]:
    iam = aws.client("iam")
    attached = iam.list_attached_user_policies(UserName=USER)["AttachedPolicies"]
    keys = iam.list_access_keys(UserName=USER)["AccessKeyMetadata"]
    try:
        iam.get_login_profile(UserName=USER)
        password = True
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchEntity"
        password = False
    return {
        "denied": DENY_ALL in {p["PolicyArn"] for p in attached},
        "keys": sorted(k["Status"] for k in keys),
        "password": password,
    }


INTACT = {"denied": False, "keys": ["Active", "Active"], "password": True}


def instances(aws: AwsSandbox) -> dict[str, dict[str, Any]]:
    reservations = aws.client("ec2").describe_instances()["Reservations"]
    return {i["InstanceId"]: i for r in reservations for i in r["Instances"]}


def own_images(aws: AwsSandbox) -> set[str]:
    return {i["ImageId"] for i in aws.client("ec2").describe_images(Owners=["self"])["Images"]}


def replacements(aws: AwsSandbox) -> dict[str, dict[str, Any]]:
    """Replacement instances by the id of the instance they replace."""
    found = {}
    for instance in instances(aws).values():
        tags = {t["Key"]: t["Value"] for t in instance.get("Tags") or []}
        if "riposte:replaces" in tags:
            found[tags["riposte:replaces"]] = instance
    return found


def finished(run: dict[str, Any], step_id: str) -> dict[str, Any]:
    """The step's one finished journal record.

    A step right after a skipped approval step also leaves a record that stays ``running``
    (engine/worker.py drops the record it began for it); only finished records are read.
    """
    [step] = [s for s in run["steps"] if s["step_id"] == step_id and s["status"] != "running"]
    return step


def planned(run: dict[str, Any], step_id: str) -> list[dict[str, Any]]:
    step = finished(run, step_id)
    assert step["status"] == "succeeded", step
    calls: list[dict[str, Any]] = step["output"]["planned"]
    return calls


def statuses(run: dict[str, Any]) -> dict[str, str]:
    return {s["step_id"]: s["status"] for s in run["steps"] if s["status"] != "running"}


# ---------------------------------------------------------------------------------------------
# The shipped playbooks


def test_the_shipped_playbooks_validate_and_their_policy_grants_the_containment() -> None:
    runner = CliRunner()
    validated = runner.invoke(app, ["validate", str(PLAYBOOKS)])
    assert validated.exit_code == 0, validated.output
    assert validated.output.startswith("ok: ")
    printed = runner.invoke(app, ["policy", str(PLAYBOOKS)])
    assert printed.exit_code == 0, printed.output
    statements = {s["Sid"]: set(s["Action"]) for s in json.loads(printed.output)["Statement"]}
    granted = set().union(*statements.values())
    assert {
        "iam:AttachUserPolicy", "iam:UpdateAccessKey", "iam:DeleteLoginProfile",  # disable
        "iam:PutRolePolicy",  # revoke a role's sessions
        "ec2:RunInstances", "ec2:RegisterImage", "iam:PassRole",  # relaunch
        "cloudtrail:LookupEvents", "s3:GetObject",  # the principal's history
        "securityhub:BatchUpdateFindings", "sns:Publish",  # the outcome
    } <= granted
    # Scoped: the one policy IAM may attach, launches only of Riposte's tagged replacements.
    assert {"IamAttachDenyAllOnly", "Ec2LaunchOnlyTaggedReplacements"} <= set(statements)


# ---------------------------------------------------------------------------------------------
# The attack: rehearsed, then contained


def test_the_attack_is_narrated_rehearsed_without_a_change_then_contained_once_approved(
    scenario_settings: Settings, tokens: Tokens, aws: AwsSandbox
) -> None:
    with attacked(scenario_settings, tokens, aws) as scene:
        [run_id] = scene.played.run_ids
        run = scene.run(run_id, "waiting_approval", "failed", "succeeded")
        assert run["status"] == "waiting_approval", run
        assert len(run["alert_ids"]) == 2  # both TerminateInstances calls of the burst
        verdict = run["verdict"]
        assert verdict["unusual"] is True and verdict["principal_kind"] == "user"
        assert verdict["severity"] in ("HIGH", "CRITICAL")
        assert {"event_time.off_hours", "source_ip.location", "principal.sign_in_failures",
                "principal.mfa"} <= set(verdict["reasons"])
        answered = {f["id"]: f for f in run["findings"]}
        assert "9 failed console sign-ins" in answered["principal.sign_in_failures"]["answer"]
        assert "China" in answered["source_ip.location"]["answer"]
        assert "China" in run["narrative"] and USER in run["narrative"]
        assert any("disabling the user" in r for r in run["recommendation"])
        assert {q["id"] for q in run["open_questions"]} >= {"principal.authorised"}
        [pending] = run["approvals"]
        request = scene.get(f"/v1/approvals/{pending['id']}")
        assert request["step_id"] == "disable-user"
        assert request["plan"]["briefing"]["narrative"] == run["narrative"]
        operations = sorted(c["operation"] for c in request["plan"]["calls"][0])
        assert operations == ["AttachUserPolicy", "DeleteLoginProfile", "TagUser"]
        # The one approval covers the key revocation and the relaunch: their calls are shown.
        covered = {sub["step"]: [c["operation"] for c in sub["calls"][0]]
                   for sub in request["plan"]["covers"]}
        assert covered["revoke-keys"] == ["UpdateAccessKey"] * 2
        production = len(scene.account.fleet.production)  # named by both calls of the burst
        assert covered["relaunch"].count("RunInstances") == production
        assert covered["relaunch"].count("RegisterImage") == 2
        assert user_state(aws) == INTACT  # nothing is contained before the decision

        # A responder rehearses the response on the alert that completed the count; another
        # approves the rehearsal's containment: it is planned, never made.
        images = own_images(aws)
        dry = scene.rehearse(run["alert_id"], PLAYBOOK)
        disable = [c["operation"] for c in planned(dry, "disable-user")]
        assert disable == ["AttachUserPolicy", "DeleteLoginProfile", "TagUser"]
        assert [c["operation"] for c in planned(dry, "revoke-keys")] == ["UpdateAccessKey"] * 2
        # That call named twenty production instances, two of them to be rebuilt from
        # snapshots (an image registered first).
        relaunch = [c["operation"] for c in planned(dry, "relaunch")]
        assert relaunch.count("RunInstances") == 20 and relaunch.count("RegisterImage") == 2
        assert user_state(aws) == INTACT
        assert replacements(aws) == {}
        assert {i["State"]["Name"] for i in instances(aws).values()} == {"terminated"}
        assert own_images(aws) == images  # no image registered from the snapshots

        scene.approve(request, tokens.as_other_responder)
        run = scene.run(run_id, "succeeded", "failed", "rejected")
        assert run["status"] == "succeeded", run
        verified = scene.get("/v1/audit/verify")
        assert verified["ok"] is True, verified
        verbs = [e["verb"] for e in scene.get(f"/v1/audit?run_id={run_id}&limit=500")["events"]]
        assert {"threshold.reached", "approval.requested", "approval.approved",
                "run.succeeded"} <= set(verbs)

    assert user_state(aws) == {"denied": True, "keys": ["Inactive", "Inactive"],
                               "password": False}
    revoked = finished(run, "revoke-keys")["output"]
    assert sorted(revoked["deactivated"]) == sorted(scene.account.access_keys)
    fleet = scene.account.fleet
    relaunched = replacements(aws)
    assert sorted(relaunched) == sorted(fleet.production)  # staging ones are not relaunched
    sources = {i["old"]: i["from"] for i in finished(run, "relaunch")["output"]["relaunched"]}
    ec2 = aws.client("ec2")
    for old, new in relaunched.items():
        assert new["State"]["Name"] == "running"
        if old in fleet.images:
            assert new["ImageId"] == fleet.images[old]  # its nightly AMI
        else:
            # Its AMI was deregistered: an image was registered from its surviving snapshot
            # (moto makes a registered image's volumes anew, so the snapshot it was registered
            # from shows only in the RegisterImage call the step reports).
            assert [s["snapshot_id"] for s in sources[old]["snapshots"]] == [fleet.snapshots[old]]
            assert new["ImageId"] == sources[old]["registered_image"]["image_id"]
            [image] = ec2.describe_images(ImageIds=[new["ImageId"]])["Images"]
            assert image["State"] == "available" and image["OwnerId"] == ACCOUNT
    now = instances(aws)
    assert all(now[i]["State"]["Name"] == "terminated" for i in fleet.all)


# ---------------------------------------------------------------------------------------------
# A planned decommission: the principal's usual pattern


def test_terminations_matching_the_principals_week_are_noted_lower_and_not_contained(
    scenario_settings: Settings, tokens: Tokens, aws: AwsSandbox
) -> None:
    with attacked(scenario_settings, tokens, aws, routine=True) as scene:
        [run_id] = scene.played.run_ids
        run = scene.run(run_id, "succeeded", "failed", "waiting_approval")

    assert run["status"] == "succeeded", run
    assert run["approvals"] == []
    verdict = run["verdict"]
    assert verdict["unusual"] is False and verdict["reasons"] == []
    assert verdict["severity"] in ("INFORMATIONAL", "LOW")
    assert "usual" in run["narrative"]
    assert "China" not in run["narrative"]
    steps = statuses(run)
    assert steps["usual-activity"] == "succeeded"
    assert {steps[s] for s in ("disable-user", "revoke-role-sessions", "revoke-keys",
                               "relaunch")} == {"skipped"}
    noted = finished(run, "usual-activity")["output"]["message"]
    assert f"severity lowered to {verdict['severity']}" in noted
    assert user_state(aws) == INTACT
    assert replacements(aws) == {}


# ---------------------------------------------------------------------------------------------
# compromised-credentials: GuardDuty says Roboman1's key is used from elsewhere


def guardduty_finding(access_key_id: str) -> dict[str, Any]:
    """A "GuardDuty Finding" event: Roboman1's key calling S3 from the seed's address, now,
    with fresh ids (the replay corpus records the same finding with fixed ones)."""
    event = recorded_finding(access_key_id, datetime.now(UTC))
    finding_id = uuid.uuid4().hex
    detail = event["detail"]
    detail["id"] = finding_id
    detail["arn"] = detail["arn"].rsplit("/", 1)[0] + f"/{finding_id}"
    return {**event, "id": str(uuid.uuid4())}


def test_a_guardduty_finding_on_a_key_revokes_the_key_and_its_sessions_once_approved(
    scenario_settings: Settings, tokens: Tokens, aws: AwsSandbox
) -> None:
    account = seed_account(aws.url, fleet=False)
    with TestClient(create_app(scenario_settings, in_process_workers=1)) as client:
        scene = Scene(client=client, tokens=tokens, account=account, played=Played())
        posted = client.post("/v1/webhooks/eventbridge", headers=tokens.as_ingest,
                             json=guardduty_finding(account.access_keys[0]))
        assert posted.status_code == 202, posted.text
        [alert] = posted.json()["alerts"]
        runs = {scene.get(f"/v1/runs/{run_id}")["playbook"]: run_id
                for run_id in alert["run_ids"]}
        assert sorted(runs) == ["compromised-credentials"]
        run = scene.run(runs["compromised-credentials"], "waiting_approval", "failed")
        assert run["status"] == "waiting_approval", run
        assert run["verdict"]["principal_kind"] == "user"
        assert "China" in run["narrative"]
        [pending] = run["approvals"]
        request = scene.get(f"/v1/approvals/{pending['id']}")
        assert request["step_id"] == "revoke-user-sessions"
        assert [c["operation"] for c in request["plan"]["calls"][0]] == [
            "AttachUserPolicy", "TagUser"]  # the console password is kept
        [covered] = request["plan"]["covers"]
        assert covered["step"] == "revoke-keys"
        assert {c["params"]["AccessKeyId"] for c in covered["calls"][0]} == set(
            account.access_keys)
        assert user_state(aws) == INTACT
        scene.approve(request, tokens.as_other_responder)
        run = scene.run(run["id"], "succeeded", "failed", "rejected")
        assert run["status"] == "succeeded", run

    # Denied everything (which ends the sessions the key issued), keys off, password kept.
    assert user_state(aws) == {"denied": True, "keys": ["Inactive", "Inactive"],
                               "password": True}
