"""The seed's mass-termination case as a live AWS account: seeded, then attacked.

Shared by ``riposte demo`` and ``tests/e2e/test_seed_scenario.py``, so the demo shows exactly
what the tests prove. Everything is made with plain boto3 against a local endpoint (moto), never
through Riposte's own AWS code:

- **the account** — a developer, Roboman1 (``/Development/``, in group ``developers``), with two
  access keys and a console password; a colleague working from the same office address; 22
  production instances (``Environment=production``) and 2 staging ones; a nightly AMI of every
  production instance taken before the incident, two of which retention has since deregistered,
  so only their snapshots remain;
- **the trail** — a week of CloudTrail history in the trail's bucket: Roboman1 working ten hours
  a day from the office in the United States, signing in once a day, terminating one
  development instance every other day; the colleague on the same address;
- **the attack** (:func:`play`) — nine failed console sign-ins and one success without MFA
  from an address in China, outside those hours, then TerminateInstances on every production
  and staging instance (EC2 really terminates them), each event delivered to Riposte as
  EventBridge delivers CloudTrail events;
- **the routine variant** (``routine=True``) — the same terminations by a Roboman1 who uses MFA,
  from the office, inside the hours the week shows: a planned decommission, not an attack.

The incident happens now (moto dates what it creates with the real clock, and backups must
predate the incident), so the week's working hours are laid out around the current hour: ten
hours that start five hours after it (the attack falls outside them), or three hours before it
(the routine variant falls inside).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx

from riposte.demo_trail import (
    Caller,
    Record,
    console_sign_in,
    eventbridge_event,
    log_files,
    terminate_instances,
    working_week,
)

ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"
USER = "Roboman1"
USER_PATH = "/Development/"
ROBOMAN_ID = "AIDAROBOMAN1EXAMPLE"
COLLEAGUE = "jdoe"
HOME_IP = "72.184.20.3"  # a US cable ISP (Florida, like the seed's office)
ATTACKER_IP = "180.163.251.231"  # the seed's address: China Telecom
TRAIL_BUCKET = "acme-cloudtrail-logs"
GOLDEN_IMAGE = "acme-golden-al2023"  # the image every instance of the fleet is launched from
PRODUCTION_SERVICES = (("checkout-api", 10), ("orders-worker", 6), ("payments-proxy", 6))
STAGING_SERVICES = (("checkout-api-staging", 2),)
RETIRED_AMIS = 2  # production instances whose AMI retention deregistered: snapshots remain
HISTORY_DAYS = 7
WORKDAY_HOURS = 10
FAILED_SIGN_INS = 9
# TerminateInstances calls of the attack: the seed's two instances, then all the rest at once
# (a console "select all, terminate"). The second call completes the threshold and names
# twenty production instances itself.
FIRST_CALL = 2

# What the developers' group may do: run the EC2 fleet and read logs and metrics.
DEVELOPERS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["ec2:*", "cloudwatch:Get*", "logs:Describe*",
                                       "s3:ListAllMyBuckets"], "Resource": "*"},
    ],
}

# The settings Riposte needs to read this account as the scenario made it: where the trail's
# history is (its bucket, and the CloudTrail events Riposte itself received) and what the
# account is for (the account registry).
SETTINGS: dict[str, Any] = {
    "cloudtrail_sources": ["s3", "ingested"],
    "cloudtrail_bucket": TRAIL_BUCKET,
    "cloudtrail_bucket_prefix": "",
    "cloudtrail_bucket_account": None,
    "accounts": {ACCOUNT: {"name": "acme-production", "environment": "production",
                           "owner": "platform-team@acme.example"}},
}

Say = Callable[[str], None]


class ScenarioFailed(Exception):
    """The scenario could not be played; the message says which delivery or call failed."""


@dataclass
class Fleet:
    """The account's instances and the backups each production one can be rebuilt from."""

    names: dict[str, str] = field(default_factory=dict)  # instance id -> Name tag
    production: list[str] = field(default_factory=list)
    staging: list[str] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)  # instance id -> its nightly AMI
    snapshots: dict[str, str] = field(default_factory=dict)  # instance id -> root snapshot

    @property
    def all(self) -> list[str]:
        return [*self.production, *self.staging]


@dataclass
class Account:
    """What :func:`seed_account` made, for the story and the checks afterwards."""

    endpoint: str
    region: str
    routine: bool
    user_arn: str
    access_keys: list[str]
    usual_hours: tuple[int, int]  # first hour (UTC) and length of the week's working day
    fleet: Fleet
    trail_files: int
    trail_events: int

    @property
    def caller(self) -> Caller:
        """Roboman1 as the incident's calls show it: the office or the attacker's address."""
        return Caller(
            account=ACCOUNT, user=USER, arn=self.user_arn, principal_id=ROBOMAN_ID,
            ip=HOME_IP if self.routine else ATTACKER_IP, mfa=self.routine,
            access_key=self.access_keys[0],
        )

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=self.region)


@dataclass
class Played:
    """What :func:`play` did: the runs its deliveries started, in order."""

    run_ids: list[str] = field(default_factory=list)


def seed_account(
    endpoint: str,
    *,
    routine: bool = False,
    fleet: bool = True,
    region: str = REGION,
    now: datetime | None = None,
) -> Account:
    """Make the account, the fleet (unless ``fleet`` is false), its backups and the history."""
    now = now or datetime.now(UTC)
    first_hour = (now.hour - 3) % 24 if routine else (now.hour + 5) % 24
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=region)
    user_arn, keys = _seed_people(iam, routine=routine)
    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name=region)
    account = Account(
        endpoint=endpoint, region=region, routine=routine, user_arn=user_arn, access_keys=keys,
        usual_hours=(first_hour, WORKDAY_HOURS), fleet=_seed_fleet(ec2, iam) if fleet else Fleet(),
        trail_files=0, trail_events=0,
    )
    roboman = Caller(account=ACCOUNT, user=USER, arn=user_arn, principal_id=ROBOMAN_ID,
                     ip=HOME_IP, mfa=routine, access_key=keys[0])
    colleague = Caller(account=ACCOUNT, user=COLLEAGUE, arn=user_arn.replace(USER, COLLEAGUE),
                       principal_id="AIDAJDOEEXAMPLE", ip=HOME_IP, mfa=True,
                       access_key="AKIAJDOEEXAMPLE00001")
    history = working_week(roboman, colleague, first_hour=first_hour, hours=WORKDAY_HOURS,
                           days=HISTORY_DAYS, region=region, now=now)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region)
    s3.create_bucket(Bucket=TRAIL_BUCKET)
    files = log_files(history)
    for key, body in files.items():
        s3.put_object(Bucket=TRAIL_BUCKET, Key=key, Body=body)
    account.trail_files, account.trail_events = len(files), len(history)
    return account


def play(
    account: Account, http: httpx.Client, ingest_token: str, *, say: Say | None = None,
    pause: float = 0.0,
) -> Played:
    """Sign in and terminate the fleet, delivering each CloudTrail event to Riposte.

    ``pause`` seconds pass between events (the demo's pace; tests use none). Event times are
    whole seconds, as CloudTrail writes them; each phase (the failed sign-ins, the sign-in,
    each call) starts after the one before.
    """
    say = say or (lambda line: None)
    played = Played()
    caller = account.caller
    clock = _Clock(pause)
    if not account.routine:
        for _ in range(FAILED_SIGN_INS):
            _deliver(http, ingest_token, console_sign_in(caller, clock.tick(), succeeded=False),
                     played)
        say(f"{_hms(clock.last)}  {FAILED_SIGN_INS} failed console sign-ins as {USER} "
            f"from {caller.ip}")
    record = console_sign_in(caller, clock.tick(new_phase=True), succeeded=True)
    _deliver(http, ingest_token, record, played)
    say(f"{_hms(clock.last)}  console sign-in as {USER} from {caller.ip}, "
        f"MFA {'used' if caller.mfa else 'not used'}")
    ec2 = account.client("ec2")
    fleet = account.fleet
    for batch in (fleet.all[:FIRST_CALL], fleet.all[FIRST_CALL:]):
        answer = ec2.terminate_instances(InstanceIds=batch)
        moment = clock.tick(new_phase=True)
        record = terminate_instances(caller, moment, answer, region=account.region, console=True)
        runs = _deliver(http, ingest_token, record, played)
        production = sum(1 for i in batch if i in fleet.production)
        started = f"; Riposte started run {', '.join(runs)}" if runs else ""
        say(f"{_hms(moment)}  TerminateInstances by {USER} from {caller.ip}: {len(batch)} "
            f"instances ({production} production){started}")
    return played


def _deliver(http: httpx.Client, token: str, record: Record, played: Played) -> list[str]:
    """POST the record as EventBridge does; return the runs it started."""
    response = http.post(
        "/v1/webhooks/eventbridge", json=eventbridge_event(record),
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code not in (200, 202):
        raise ScenarioFailed(
            f"POST /v1/webhooks/eventbridge ({record['eventName']}) answered "
            f"{response.status_code}: {response.text}"
        )
    started = [run for alert in response.json()["alerts"] for run in alert["run_ids"]]
    played.run_ids += started
    return started


class _Clock:
    """Event times in whole seconds, as CloudTrail writes them, never going back.

    Events within one phase of the incident may share a second; each phase starts at least a
    second after the one before, so "before the terminations" is never a tie — nor is "backups
    taken before the incident": moto dates what it creates to the second, at most the second
    the clock starts in, and the first termination comes at least two phases later.
    """

    def __init__(self, pause: float) -> None:
        self.pause = pause
        self.last = datetime.now(UTC).replace(microsecond=0)

    def tick(self, *, new_phase: bool = False) -> datetime:
        if self.pause:
            time.sleep(self.pause)
        now = datetime.now(UTC).replace(microsecond=0)
        self.last = max(now, self.last + timedelta(seconds=1 if new_phase else 0))
        return self.last


def _hms(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S")


# ---------------------------------------------------------------------------------------------
# The account


def _seed_people(iam: Any, *, routine: bool) -> tuple[str, list[str]]:
    """Roboman1 (keys, password, MFA in the routine variant) and a colleague; return his ARN."""
    iam.create_group(GroupName="developers")
    iam.put_group_policy(GroupName="developers", PolicyName="developers-ec2",
                         PolicyDocument=json.dumps(DEVELOPERS_POLICY))
    arn = ""
    keys: list[str] = []
    for name in (USER, COLLEAGUE):
        made = iam.create_user(UserName=name, Path=USER_PATH,
                               Tags=[{"Key": "team", "Value": "platform"}])["User"]
        iam.add_user_to_group(GroupName="developers", UserName=name)
        iam.create_login_profile(UserName=name, Password="Demo-Passw0rd-not-real!")
        if name == USER:
            arn = made["Arn"]
            keys = [iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
                    for _ in range(2)]
    if routine:
        device = iam.create_virtual_mfa_device(VirtualMFADeviceName=USER)["VirtualMFADevice"]
        iam.enable_mfa_device(UserName=USER, SerialNumber=device["SerialNumber"],
                              AuthenticationCode1="123456", AuthenticationCode2="654321")
    return arn, keys


def _seed_fleet(ec2: Any, iam: Any) -> Fleet:
    """The VPC, the instances and the nightly AMIs of the production ones."""
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    groups = [
        ec2.create_security_group(GroupName=name, Description=f"{name} tier", VpcId=vpc)["GroupId"]
        for name in ("web-tier", "app-tier")
    ]
    ec2.create_key_pair(KeyName="prod-deploy")
    iam.create_role(RoleName="app-server", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                       "Action": "sts:AssumeRole"}],
    }))
    profile = iam.create_instance_profile(InstanceProfileName="app-server")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName="app-server", RoleName="app-server")
    base_image = _golden_image(ec2)
    fleet = Fleet()
    for services, environment, ids in (
        (PRODUCTION_SERVICES, "production", fleet.production),
        (STAGING_SERVICES, "staging", fleet.staging),
    ):
        for service, count in services:
            for number in range(1, count + 1):
                name = f"{service}-{number:02d}"
                tags = {"Name": name, "Environment": environment, "App": service,
                        "Owner": "platform-team"}
                launched = ec2.run_instances(
                    ImageId=base_image, MinCount=1, MaxCount=1, InstanceType="t3.medium",
                    SubnetId=subnet, SecurityGroupIds=groups, KeyName="prod-deploy",
                    IamInstanceProfile={"Arn": profile["Arn"]},
                    TagSpecifications=[{"ResourceType": "instance",
                                        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
                )["Instances"][0]["InstanceId"]
                ids.append(launched)
                fleet.names[launched] = name
    today = datetime.now(UTC).strftime("%Y%m%d")
    retired = fleet.production[-RETIRED_AMIS:]  # among those the attack's big call names
    for instance_id in fleet.production:
        image = ec2.create_image(InstanceId=instance_id, NoReboot=True,
                                 Name=f"nightly-{fleet.names[instance_id]}-{today}")["ImageId"]
        if instance_id in retired:
            # Retention deregistered this AMI and kept its snapshot ("Created by CreateImage").
            snapshot = ec2.describe_images(ImageIds=[image])["Images"][0][
                "BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
            ec2.deregister_image(ImageId=image)
            fleet.snapshots[instance_id] = snapshot
        else:
            fleet.images[instance_id] = image
    return fleet


def _golden_image(ec2: Any) -> str:
    """The company's base image, registered from a snapshot as an image pipeline would."""
    volume = ec2.create_volume(AvailabilityZone=f"{ec2.meta.region_name}a", Size=8)["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume, Description=f"{GOLDEN_IMAGE} root")
    ec2.delete_volume(VolumeId=volume)
    image: str = ec2.register_image(
        Name=f"{GOLDEN_IMAGE}-2024.06", Architecture="x86_64", RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda",
                              "Ebs": {"SnapshotId": snapshot["SnapshotId"], "VolumeSize": 8}}],
    )["ImageId"]
    return image
