"""EC2 state for the EC2 action tests: seeded and read back with plain boto3, never Riposte.

moto ignores ``OwnerIds`` in DescribeSnapshots (it lists the snapshots of its own Amazon
AMIs too), so the tests read snapshots back filtered by ``owner-id``.

moto reports an interface's security groups as the union of the interface's own and those the
instance was launched with (``SecurityGroupIds``), so a swap made with
ModifyNetworkInterfaceAttribute would look like an addition. Instances that the isolation tests
change are therefore launched the way launch templates do it, with ``NetworkInterfaces``: the
groups then live on the interface only, as in AWS.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.aws_sandbox import OWN_ACCOUNT, REGION, AwsSandbox

PRODUCTION = {"Environment": "production"}
# An Amazon AMI moto always loads; listing them to find one costs seconds per test.
BASE_IMAGE = "ami-03cf127a"


@dataclass
class Network:
    vpc_id: str
    subnet_id: str
    web: str  # security group ids
    app: str


def seed_network(aws: AwsSandbox, account: str | None = None) -> Network:
    """A VPC with one subnet and two security groups."""
    ec2 = aws.client("ec2", account=account)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    groups = [
        ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
        for name in ("web", "app")
    ]
    return Network(vpc_id=vpc, subnet_id=subnet, web=groups[0], app=groups[1])


def seed_profile(aws: AwsSandbox, name: str = "web-profile") -> str:
    """An instance profile with a role in it; return its ARN."""
    iam = aws.client("iam")
    iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")
    arn = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=f"{name}-role")
    return str(arn)


def launch(
    aws: AwsSandbox,
    net: Network,
    *,
    name: str = "web-1",
    tags: dict[str, str] | None = None,
    groups: list[str] | None = None,
    on_interface: bool = False,
    profile_arn: str | None = None,
    key_name: str | None = None,
    data_volume: bool = False,
    instance_type: str = "t3.micro",
    account: str | None = None,
) -> str:
    """Launch one instance in the network's subnet; return its id."""
    ec2 = aws.client("ec2", account=account)
    groups = groups or [net.web, net.app]
    request: dict[str, Any] = {
        "ImageId": BASE_IMAGE,
        "MinCount": 1,
        "MaxCount": 1,
        "InstanceType": instance_type,
        "TagSpecifications": [
            {
                "ResourceType": "instance",
                "Tags": [{"Key": k, "Value": v} for k, v in {"Name": name, **(tags or {})}.items()],
            }
        ],
    }
    if on_interface:
        request["NetworkInterfaces"] = [
            {"DeviceIndex": 0, "SubnetId": net.subnet_id, "Groups": groups}
        ]
    else:
        request.update(SubnetId=net.subnet_id, SecurityGroupIds=groups)
    if profile_arn:
        request["IamInstanceProfile"] = {"Arn": profile_arn}
    if key_name:
        request["KeyName"] = key_name
    if data_volume:
        request["BlockDeviceMappings"] = [
            {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}},
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 10}},
        ]
    return str(ec2.run_instances(**request)["Instances"][0]["InstanceId"])


def instance(aws: AwsSandbox, instance_id: str, account: str | None = None) -> dict[str, Any]:
    answer = aws.client("ec2", account=account).describe_instances(InstanceIds=[instance_id])
    return dict(answer["Reservations"][0]["Instances"][0])


def own_snapshots(aws: AwsSandbox, account: str | None = None) -> dict[str, dict[str, Any]]:
    """The account's own snapshots by id."""
    listed = aws.client("ec2", account=account).describe_snapshots(
        Filters=[{"Name": "owner-id", "Values": [account or OWN_ACCOUNT]}]
    )
    return {s["SnapshotId"]: s for s in listed["Snapshots"]}


def tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def instance_alert(*ids: str, event_time: str | None = None) -> dict[str, Any]:
    """An alert naming instances, as templates see it (the seed's TerminateInstances)."""
    return {
        "account": OWN_ACCOUNT,
        "region": REGION,
        "event_name": "TerminateInstances",
        "event_time": event_time,
        "principal": {"type": "IAMUser", "name": "Roboman1", "account": OWN_ACCOUNT},
        "resources": [{"type": "AwsEc2Instance", "id": i, "region": REGION} for i in ids],
    }


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_second() -> None:
    """Wait for the clock's next second: moto stamps creation times to the second."""
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.02)


def replace_placeholders(
    calls: list[tuple[str, dict[str, Any]]], known: dict[str, str]
) -> list[tuple[str, dict[str, Any]]]:
    """A plan's calls with the ``<new …>`` placeholders replaced by the ids AWS gave."""
    replaced = []
    for operation, params in calls:
        text = json.dumps(params)
        for placeholder, real in known.items():
            text = text.replace(json.dumps(placeholder), json.dumps(real))
        replaced.append((operation, json.loads(text)))
    return replaced
