"""The least-privilege policy, proved on the seed scenario: enough under enforcement, and no more.

One moto server of this module's own is started with IAM enforcement held back
(``INITIAL_NO_AUTH_ACTION_COUNT``): the set-up's calls are unauthenticated — the seed account of
``riposte/demo_scenario.py`` (Roboman1, his keys, the fleet, its backups, the trail's week in
S3), Riposte's own user holding only the generated policy's *actions* (on ``*``: moto checks
actions but compares every non-S3 resource with ``*`` and cannot evaluate most condition keys),
and the attack (the terminations). Then moto's ``/moto-api/reset-auth`` (what moto's own
``set_initial_no_auth_action_count`` does in server mode) turns enforcement on: from there every
call must be signed by a known key and allowed by its holder's policies.

The seed's playbook is driven through the engine as the API would (``ingest_delivery`` of the
CloudTrail events as EventBridge delivers them, the threshold trigger, the settle clock moved
on, a worker, one approval), not over HTTP. CloudTrail ``LookupEvents`` and Security Hub are not
in moto and not used here: the scenario reads the history from the trail's S3 bucket and the
events Riposte ingested (``SETTINGS`` of the scenario), and its alerts come from CloudTrail, so
the Security Hub step is skipped.

The second half matches every call Riposte really made in that run, and the calls it must never
make, against the *scoped* statements with ``tests/policy_evaluator.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from sqlalchemy import select

from actions import registry
from actions.aws.clients import AwsCall, AwsClients, iam_action
from actions.policy import least_privilege_policy
from core.settings import Settings
from engine.normalize.eventbridge import normalize_eventbridge
from engine.playbooks import load_all
from engine.store import deciders
from engine.store.alerts import ingest_delivery
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import ApprovalRequest, StepRecord
from engine.store.types import settle_clock
from riposte.demo_scenario import (
    ACCOUNT,
    REGION,
    SETTINGS,
    TRAIL_BUCKET,
    USER,
    Account,
    seed_account,
)
from riposte.demo_trail import console_sign_in, eventbridge_event, terminate_instances
from tests.integration.engine_helpers import drain, run_row, worker
from tests.live_server import free_port
from tests.policy_evaluator import Request, allowing

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = "mass-instance-termination"
DENY_ALL = "arn:aws:iam::aws:policy/AWSDenyAll"
FAKE = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# What an AWS endpoint answers to a call the signer's policies do not allow.
DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                "InvalidClientTokenId", "SignatureDoesNotMatch", "AuthFailure"}
SETTLE_AT_MOST = 300.0  # the playbook's settle: {quiet: 1m, at_most: 5m}


@dataclass
class Answer:
    """One answer AWS (moto) gave to a call of Riposte's."""

    service: str
    operation: str
    status: int
    code: str | None


@dataclass
class EnforcedRun:
    """The seed scenario run under enforcement, and what it left."""

    url: str
    account: Account
    policy_actions: list[str]
    run_status: str
    steps: dict[str, StepRecord]
    calls: list[AwsCall] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    create_user_refusal: str | None = None

    def client(self, service: str) -> Any:
        """A plain boto3 client on this module's moto (enforcement is off again by then)."""
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, **FAKE)


def seed_actions() -> set[str]:
    loaded, problems = load_all([ROOT / "playbooks" / f"{PLAYBOOK}.yml"])
    assert not problems, problems
    return {step.action for step in loaded[PLAYBOOK].spec.steps}


def _start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",  # AWSDenyAll exists, as in AWS
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",  # no public images for the backup lookups to walk
        # Unauthenticated until the set-up is done, whatever its number of calls; the fixture
        # then turns enforcement on with /moto-api/reset-auth.
        "INITIAL_NO_AUTH_ACTION_COUNT": "1000000",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, "moto server exited"
        try:
            httpx.get(f"{url}/moto-api/", timeout=1)
            return process, url
        except httpx.TransportError:
            assert time.monotonic() < deadline, "moto server did not start"
            time.sleep(0.1)


def _enforce(url: str, on: bool) -> None:
    count = "0" if on else "inf"
    httpx.post(f"{url}/moto-api/reset-auth", content=count, timeout=10).raise_for_status()


def _riposte_user(url: str, actions: list[str]) -> dict[str, str]:
    """Riposte's principal: a user holding the policy's actions on ``*``; its access key."""
    iam = boto3.client("iam", endpoint_url=url, region_name=REGION, **FAKE)
    iam.create_user(UserName="riposte")
    iam.put_user_policy(
        UserName="riposte", PolicyName="riposte-least-privilege-actions",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": actions, "Resource": "*"}]}),
    )
    key = iam.create_access_key(UserName="riposte")["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def _attack(account: Account) -> list[dict[str, Any]]:
    """Terminate the fleet as the seed's attacker did; return the events as EventBridge sends."""
    caller = account.caller
    ec2 = account.client("ec2")
    # Whole seconds after every backup (moto dates them to the second), one phase a second.
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    records = [console_sign_in(caller, start, succeeded=False) for _ in range(9)]
    records.append(console_sign_in(caller, start + timedelta(seconds=1), succeeded=True))
    fleet = account.fleet.all
    for number, batch in enumerate((fleet[:2], fleet[2:])):
        answer = ec2.terminate_instances(InstanceIds=batch)
        moment = start + timedelta(seconds=2 + number)
        records.append(terminate_instances(caller, moment, answer, region=REGION, console=True))
    return [eventbridge_event(record) for record in records]


@pytest.fixture(scope="module")
def enforced(
    tmp_path_factory: pytest.TempPathFactory, _sqlite_template: Path
) -> Iterator[EnforcedRun]:
    process, url = _start_moto()
    try:
        with pytest.MonkeyPatch.context() as patch:
            yield _play(url, patch, tmp_path_factory.mktemp("policy") / "riposte.db",
                        _sqlite_template)
    finally:
        settle_clock.reset()
        process.terminate()
        process.wait(timeout=10)


def _play(url: str, patch: pytest.MonkeyPatch, db: Path, template: Path) -> EnforcedRun:
    """Seed, attack, enforce, then run the playbook and approve it; return what happened."""
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                 "AWS_SESSION_TOKEN"):
        patch.delenv(name, raising=False)
    patch.setenv("AWS_ACCESS_KEY_ID", "testing")
    patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    patch.setenv("AWS_DEFAULT_REGION", REGION)
    actions = sorted({a for s in least_privilege_policy(seed_actions())["Statement"]
                      for a in s["Action"]})
    account = seed_account(url)
    keys = _riposte_user(url, actions)
    events = _attack(account)

    # From here on Riposte's calls are signed with its own key, and enforced.
    factories, answers = _record_calls(patch)
    for name, value in keys.items():
        patch.setenv(name, value)
    _enforce(url, on=True)

    db.write_bytes(template.read_bytes())
    engine = make_engine(f"sqlite:///{db}")
    sessions = make_sessionmaker(engine)
    settings = Settings(
        aws_endpoint_url=url, aws_region=REGION, aws_retry_seconds=2.0,
        playbook_dir=ROOT / "playbooks", ec2_poll_seconds=0.1, **SETTINGS,
    )
    loaded, problems = load_all([ROOT / "playbooks" / f"{PLAYBOOK}.yml"])
    assert not problems
    run_ids: list[str] = []
    for event in events:
        with sessions() as session:
            results = ingest_delivery(
                session=session, alerts=normalize_eventbridge(event), playbooks=loaded,
                endpoint="eventbridge", body_sha256="0" * 64, body_bytes=0, actor="eventbridge",
                is_production=settings.is_production,
            )
        run_ids += [run for result in results for run in result.run_ids]
    [run_id] = run_ids
    settle_clock.advance(SETTLE_AT_MOST)  # the burst is over: no quiet minute to wait
    w = worker(sessions, settings=settings)
    drain(w)
    with sessions.begin() as session:
        request = session.execute(
            select(ApprovalRequest).where(ApprovalRequest.status == "pending")
        ).scalars().one_or_none()  # none: a step failed before it; the tests say which
        if request is not None:
            deciders.decide(session=session, request_id=request.id, actor="alice",
                             role="responder", decision="approve", reason="contain",
                             seen_plan_hash=request.plan_hash)
    drain(w)
    settle_clock.reset()

    # The same key, outside the policy's actions: moto itself refuses it.
    refusal = None
    iam = boto3.client("iam", endpoint_url=url, region_name=REGION,
                       aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"])
    try:
        iam.create_user(UserName="eve")
    except ClientError as exc:
        refusal = exc.response["Error"]["Code"]
    _enforce(url, on=False)

    with sessions() as session:
        records = session.execute(
            select(StepRecord).where(StepRecord.run_id == run_id, StepRecord.status != "running")
        ).scalars().all()
        steps = {record.step_id: record for record in records}
    status = run_row(sessions, run_id).status
    engine.dispose()
    return EnforcedRun(
        url=url, account=account, policy_actions=actions, run_status=status, steps=steps,
        calls=[call for factory in factories for call in factory.calls.sent], answers=answers,
        create_user_refusal=refusal,
    )


def _record_calls(patch: pytest.MonkeyPatch) -> tuple[list[AwsClients], list[Answer]]:
    """Keep every run's client factory (its CallLog has the calls sent) and every answer."""
    made: list[AwsClients] = []
    answers: list[Answer] = []
    original_init = AwsClients.__init__
    original_watch = AwsClients._watch

    def init(self: AwsClients, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        made.append(self)

    def watch(self: AwsClients, client: Any, *, account: str | None, region: str) -> None:
        original_watch(self, client, account=account, region=region)
        service = client.meta.service_model.service_name

        def answered(http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
            code = (parsed.get("Error") or {}).get("Code") if isinstance(parsed, dict) else None
            answers.append(Answer(service, model.name, http_response.status_code, code))

        client.meta.events.register(f"after-call.{service}", answered)

    patch.setattr(AwsClients, "__init__", init)
    patch.setattr(AwsClients, "_watch", watch)
    return made, answers


# ---------------------------------------------------------------------------------------------
# (1) Enough: the scenario runs end to end with only the policy's actions, enforced by moto


def test_the_seed_scenario_runs_end_to_end_holding_only_the_policys_actions(
    enforced: EnforcedRun,
) -> None:
    failed = {s: r.error for s, r in enforced.steps.items() if r.status == "failed"}
    assert failed == {}
    assert enforced.run_status == "succeeded"
    for step in ("history", "principal", "disable-user", "revoke-keys", "relaunch"):
        assert enforced.steps[step].status == "succeeded", step
    # The history step goes on when a source is refused: both of its sources were read.
    history = enforced.steps["history"].output
    assert sorted(history["read"]) == ["ingested", "s3"], history["failed"]
    # Every answer moto gave Riposte was a success: nothing was refused along the way.
    refused = [a for a in enforced.answers if a.code in DENIED_CODES or a.status >= 400]
    assert refused == []
    assert len(enforced.answers) == len(enforced.calls) > 0
    # Every call reached moto as an action the policy grants (sts:GetCallerIdentity needs none).
    sent = {iam_action(c.service, c.operation) for c in enforced.calls} - {"sts:GetCallerIdentity"}
    assert sent <= set(enforced.policy_actions)
    # The key is moto's to judge: a call outside the policy's actions is refused by moto.
    assert enforced.create_user_refusal == "AccessDenied"
    assert "eve" not in {u["UserName"] for u in enforced.client("iam").list_users()["Users"]}


def test_aws_shows_the_user_contained_and_the_production_fleet_relaunched(
    enforced: EnforcedRun,
) -> None:
    iam = enforced.client("iam")
    attached = iam.list_attached_user_policies(UserName=USER)["AttachedPolicies"]
    assert DENY_ALL in {p["PolicyArn"] for p in attached}
    keys = iam.list_access_keys(UserName=USER)["AccessKeyMetadata"]
    assert sorted(k["AccessKeyId"] for k in keys) == sorted(enforced.account.access_keys)
    assert {k["Status"] for k in keys} == {"Inactive"}
    with pytest.raises(ClientError, match="NoSuchEntity"):
        iam.get_login_profile(UserName=USER)
    fleet = enforced.account.fleet
    replaced = replacements(enforced)
    assert sorted(replaced) == sorted(fleet.production)  # not the staging ones
    assert {i["State"]["Name"] for i in replaced.values()} == {"running"}
    for old, new in replaced.items():
        if old in fleet.images:
            assert new["ImageId"] == fleet.images[old]
        else:  # its AMI was retired: an image registered from its snapshot
            assert new["ImageId"] in registered_images(enforced)


# ---------------------------------------------------------------------------------------------
# (2) No more: every call made (and undo's) matched by a scoped statement; others by none


@pytest.fixture(scope="module")
def world(enforced: EnforcedRun) -> World:
    return World.read(enforced)


def test_every_call_riposte_made_and_its_undo_is_allowed_by_a_scoped_statement(
    enforced: EnforcedRun, world: World
) -> None:
    requests = [r for call in enforced.calls for r in world.requests_of(call)]
    requests += world.undo_requests()
    authorised = {r.action for r in requests}
    assert {"ec2:RunInstances", "ec2:RegisterImage", "ec2:CreateTags", "iam:PassRole",
            "iam:AttachUserPolicy", "iam:TagUser", "iam:UpdateAccessKey", "s3:ListBucket",
            "s3:GetObject", "ec2:TerminateInstances", "ec2:DeregisterImage"} <= authorised
    for policy in seed_policies():
        denied = [str(r) for r in requests if not allowing(policy, r)]
        assert denied == []
    scoped = least_privilege_policy(seed_actions(), account=ACCOUNT, passed_roles=["app-server"],
                                    trail_bucket=TRAIL_BUCKET)
    # Only the reads AWS authorises on "*" are let through by an unscoped statement.
    unscoped = {s["Sid"] for s in scoped["Statement"] if s["Resource"] == "*"}
    for request in requests:
        if request.resource != "*":
            assert not set(allowing(scoped, request)) & unscoped, str(request)


def test_what_riposte_did_not_create_or_must_not_touch_is_allowed_by_no_statement(
    world: World,
) -> None:
    narrowed = least_privilege_policy(ALL_ACTIONS, account=ACCOUNT, passed_roles=["app-server"],
                                      trail_bucket=TRAIL_BUCKET)
    for policy, forbidden in (
        *((p, world.forbidden_requests()) for p in seed_policies()),
        (least_privilege_policy(ALL_ACTIONS), world.forbidden_requests()),
        (narrowed, world.forbidden_requests() + world.outside_the_narrowing()),
        (seed_policies()[1], world.outside_the_narrowing()),
    ):
        allowed = {str(r): allowing(policy, r) for r in forbidden if allowing(policy, r)}
        assert allowed == {}


# ---------------------------------------------------------------------------------------------
# The request contexts AWS evaluates, built from the calls and from what AWS shows afterwards

ALL_ACTIONS = list(registry.all_actions())
EC2_ARN = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
IMAGE_ARN = f"arn:aws:ec2:{REGION}::image"
SNAPSHOT_ARN = f"arn:aws:ec2:{REGION}::snapshot"
OTHER_ACCOUNT = "999988887777"


def seed_policies() -> list[dict[str, Any]]:
    """The seed playbook's policy as printed by default, and narrowed to this account."""
    return [
        least_privilege_policy(seed_actions()),
        least_privilege_policy(seed_actions(), account=ACCOUNT, passed_roles=["app-server"],
                               trail_bucket=TRAIL_BUCKET),
    ]


def tags_of(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("Tags") or []}


def instances(enforced: EnforcedRun) -> dict[str, dict[str, Any]]:
    reservations = enforced.client("ec2").describe_instances()["Reservations"]
    return {i["InstanceId"]: i for r in reservations for i in r["Instances"]}


def replacements(enforced: EnforcedRun) -> dict[str, dict[str, Any]]:
    """Replacement instances by the id of the instance they replace."""
    return {tags_of(i)["riposte:replaces"]: i for i in instances(enforced).values()
            if "riposte:replaces" in tags_of(i)}


def registered_images(enforced: EnforcedRun) -> dict[str, dict[str, str]]:
    """The images Riposte registered, by id, with the tags its RegisterImage gave them.

    moto drops RegisterImage's TagSpecifications, so the tags are the call's: what AWS puts.
    """
    ec2 = enforced.client("ec2")
    registered = {}
    for call in enforced.calls:
        if call.operation == "RegisterImage":
            [image] = ec2.describe_images(
                Owners=["self"], Filters=[{"Name": "name", "Values": [call.params["Name"]]}]
            )["Images"]
            registered[image["ImageId"]] = {
                t["Key"]: t["Value"] for s in call.params["TagSpecifications"] for t in s["Tags"]
            }
    return registered


def request_tags(tags: dict[str, str], prefix: str = "aws:RequestTag/") -> dict[str, Any]:
    return {**{prefix + k: v for k, v in tags.items()}, "aws:TagKeys": tuple(tags)}


def resource_tags(tags: dict[str, str]) -> dict[str, Any]:
    return {f"aws:ResourceTag/{k}": v for k, v in tags.items()}


@dataclass
class World:
    """What the account holds after the run: the ARNs and tags the request contexts need."""

    users: dict[str, str]  # name -> ARN
    groups: dict[str, str]
    key_owners: dict[str, str]  # access key id -> user name
    profile_roles: dict[str, list[str]]  # instance profile ARN -> role ARNs
    instances: dict[str, dict[str, Any]]
    images: dict[str, dict[str, Any]]
    snapshot_owners: dict[str, str]
    replaced: dict[str, dict[str, Any]]
    registered: dict[str, dict[str, str]]  # image id -> its tags
    originals: list[str]
    nightly: dict[str, str]

    @classmethod
    def read(cls, enforced: EnforcedRun) -> World:
        iam, ec2 = enforced.client("iam"), enforced.client("ec2")
        users = {u["UserName"]: u["Arn"] for u in iam.list_users()["Users"]}
        keys = {k["AccessKeyId"]: name for name in users
                for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]}
        profiles = iam.list_instance_profiles()["InstanceProfiles"]
        return cls(
            users=users,
            groups={g["GroupName"]: g["Arn"] for g in iam.list_groups()["Groups"]},
            key_owners=keys,
            profile_roles={p["Arn"]: [r["Arn"] for r in p["Roles"]] for p in profiles},
            instances=instances(enforced),
            images={i["ImageId"]: i for i in ec2.describe_images(Owners=["self"])["Images"]},
            snapshot_owners={s["SnapshotId"]: s["OwnerId"]
                             for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]},
            replaced=replacements(enforced),
            registered=registered_images(enforced),
            originals=enforced.account.fleet.all,
            nightly=enforced.account.fleet.images,
        )

    def requests_of(self, call: AwsCall) -> list[Request]:
        """The authorisations AWS makes for one call (sts:GetCallerIdentity needs none)."""
        action, p = iam_action(call.service, call.operation), call.params
        if call.service == "sts" and call.operation == "GetCallerIdentity":
            return []
        if call.service == "ec2" and call.operation.startswith("Describe"):
            return [Request(action, "*")]
        if call.service == "s3":
            bucket = f"arn:aws:s3:::{p['Bucket']}"
            if call.operation == "GetObject":
                return [Request(action, f"{bucket}/{p['Key']}")]
            return [Request(action, bucket, {"s3:prefix": p["Prefix"]} if "Prefix" in p else {})]
        if call.service == "iam":
            return [self._iam(action, p)]
        if call.operation == "RunInstances":
            return self._launch(p)
        if call.operation == "RegisterImage":
            return self._registration(p)
        raise AssertionError(f"no request context known for {action}: add it to World")

    def _iam(self, action: str, p: dict[str, Any]) -> Request:
        if "GroupName" in p:
            return Request(action, self.groups[p["GroupName"]])
        if "PolicyArn" in p and "UserName" not in p:
            return Request(action, p["PolicyArn"])
        user = p.get("UserName") or self.key_owners[p["AccessKeyId"]]
        context: dict[str, Any] = {}
        if "PolicyArn" in p:
            context["iam:PolicyARN"] = p["PolicyArn"]
        if "Tags" in p:
            context.update(request_tags({t["Key"]: t["Value"] for t in p["Tags"]}))
        if "TagKeys" in p:
            context["aws:TagKeys"] = tuple(p["TagKeys"])
        return Request(action, self.users[user], context)

    def _launch(self, p: dict[str, Any]) -> list[Request]:
        specs = {s["ResourceType"]: {t["Key"]: t["Value"] for t in s["Tags"]}
                 for s in p["TagSpecifications"]}
        new = self.replaced[specs["instance"]["riposte:replaces"]]
        image = self.images[p["ImageId"]]
        created = {f"{EC2_ARN}:instance/{new['InstanceId']}": specs["instance"]}
        for mapping in new.get("BlockDeviceMappings") or []:
            created[f"{EC2_ARN}:volume/{mapping['Ebs']['VolumeId']}"] = specs["volume"]
        requests = []
        for arn, tags in created.items():
            requests.append(Request("ec2:RunInstances", arn, request_tags(tags)))
            requests.append(Request("ec2:CreateTags", arn,
                                    {"ec2:CreateAction": "RunInstances", **request_tags(tags)}))
        requests.append(Request("ec2:RunInstances", f"{IMAGE_ARN}/{image['ImageId']}",
                                {"ec2:Owner": image["OwnerId"]}))
        for mapping in image.get("BlockDeviceMappings") or []:
            snapshot = mapping["Ebs"]["SnapshotId"]
            requests.append(Request("ec2:RunInstances", f"{SNAPSHOT_ARN}/{snapshot}",
                                    {"ec2:Owner": self.snapshot_owners[snapshot]}))
        existing = [f"subnet/{p['SubnetId']}", f"key-pair/{p['KeyName']}",
                    *(f"security-group/{g}" for g in p["SecurityGroupIds"]),
                    *(f"network-interface/{n['NetworkInterfaceId']}"
                      for n in new.get("NetworkInterfaces") or [])]
        requests += [Request("ec2:RunInstances", f"{EC2_ARN}:{r}") for r in existing]
        profile = (p.get("IamInstanceProfile") or {}).get("Arn")
        if profile:
            requests += [Request("iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"})
                         for role in self.profile_roles[profile]]
        return requests

    def _registration(self, p: dict[str, Any]) -> list[Request]:
        [image] = [i for i in self.registered if self.images[i]["Name"] == p["Name"]]
        arn = f"{IMAGE_ARN}/{image}"
        tags = {t["Key"]: t["Value"] for s in p["TagSpecifications"] for t in s["Tags"]}
        requests = [
            Request("ec2:RegisterImage", arn, request_tags(tags)),
            Request("ec2:CreateTags", arn, {"ec2:CreateAction": "RegisterImage",
                                            **request_tags(tags)}),
        ]
        for mapping in p["BlockDeviceMappings"]:
            snapshot = mapping["Ebs"]["SnapshotId"]
            requests.append(Request("ec2:RegisterImage", f"{SNAPSHOT_ARN}/{snapshot}",
                                    {"ec2:Owner": self.snapshot_owners[snapshot]}))
        return requests

    def undo_requests(self) -> list[Request]:
        """What undoing the run asks: the replacements terminated, the images deregistered,
        the deny detached, the tag removed, the keys reactivated; and the role a relaunch
        passes when given its original's profile (AWS, and moto, show none once terminated)."""
        user = self.users[USER]
        requests = [Request("ec2:TerminateInstances", f"{EC2_ARN}:instance/{i['InstanceId']}",
                            resource_tags(tags_of(i))) for i in self.replaced.values()]
        requests += [Request("ec2:DeregisterImage", f"{IMAGE_ARN}/{i}", resource_tags(tags))
                     for i, tags in self.registered.items()]
        assert self.replaced and self.registered
        return requests + [
            Request("iam:DetachUserPolicy", user, {"iam:PolicyARN": DENY_ALL}),
            Request("iam:UntagUser", user, {"aws:TagKeys": ("riposte:disabled-by-run",)}),
            Request("iam:UpdateAccessKey", user),
            *(Request("iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"})
              for roles in self.profile_roles.values() for role in roles),
        ]

    def forbidden_requests(self) -> list[Request]:
        """Calls on what Riposte did not create, or outside what it may do."""
        user = self.users[USER]
        original = self.instances[self.originals[0]]
        original_arn = f"{EC2_ARN}:instance/{original['InstanceId']}"
        nightly = next(iter(self.nightly.values()))
        nightly_snapshot = self.images[nightly]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
        app_server = next(iter(self.profile_roles.values()))[0]
        return [
            # Terminating, deregistering, deleting what someone else made.
            Request("ec2:TerminateInstances", original_arn, resource_tags(tags_of(original))),
            Request("ec2:DeregisterImage", f"{IMAGE_ARN}/{nightly}"),
            Request("ec2:DeleteSnapshot", f"{SNAPSHOT_ARN}/{nightly_snapshot}",
                    {"ec2:Owner": ACCOUNT}),
            # Launching or registering without Riposte's tags; launching another's image.
            Request("ec2:RunInstances", f"{EC2_ARN}:instance/i-0attacker0000000",
                    request_tags({"Name": "miner"})),
            Request("ec2:RegisterImage", f"{IMAGE_ARN}/ami-0attacker0000000",
                    request_tags({"Name": "backdoor"})),
            # Tagging outside a create call, another key than Riposte's, or every key away.
            Request("ec2:CreateTags", original_arn, request_tags({"Environment": "staging"})),
            Request("ec2:DeleteTags", original_arn),
            Request("iam:TagUser", user, request_tags({"team": "attackers"})),
            # Another policy than the deny; another role, or to another service than EC2.
            Request("iam:AttachUserPolicy", user,
                    {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"}),
            Request("iam:PassRole", app_server, {"iam:PassedToService": "lambda.amazonaws.com"}),
            # The trail's bucket beyond its log files; what no action needs.
            Request("s3:GetObject", f"arn:aws:s3:::{TRAIL_BUCKET}/exports/customers.csv"),
            Request("s3:ListBucket", f"arn:aws:s3:::{TRAIL_BUCKET}", {"s3:prefix": ""}),
            Request("s3:ListBucket", f"arn:aws:s3:::{TRAIL_BUCKET}"),
            Request("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/eve"),
            Request("iam:CreateAccessKey", user),
        ]

    def outside_the_narrowing(self) -> list[Request]:
        """Calls a policy narrowed to this account, role and bucket refuses as well."""
        return [
            Request("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin",
                    {"iam:PassedToService": "ec2.amazonaws.com"}),
            Request("iam:UpdateAccessKey", f"arn:aws:iam::{OTHER_ACCOUNT}:user/{USER}"),
            Request("ec2:RunInstances", f"{IMAGE_ARN}/ami-0other00000000",
                    {"ec2:Owner": OTHER_ACCOUNT}),
            Request("ec2:RunInstances", f"arn:aws:ec2:{REGION}:{OTHER_ACCOUNT}:subnet/subnet-0a"),
            Request("s3:GetObject",
                    f"arn:aws:s3:::another-bucket/AWSLogs/{ACCOUNT}/CloudTrail/a.json.gz"),
        ]
