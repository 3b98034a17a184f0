"""aws.ec2.describe_instances against the moto server: the figures on seeded instances."""

from __future__ import annotations

import json

import pytest

from actions.base import ActionError
from tests.aws_sandbox import AwsSandbox
from tests.integration.ec2_seed import (
    BASE_IMAGE,
    PRODUCTION,
    instance,
    instance_alert,
    launch,
    next_second,
    seed_network,
    seed_profile,
)

DESCRIBE = "aws.ec2.describe_instances"


def test_describe_reports_what_a_responder_asks_about_each_instance(aws: AwsSandbox) -> None:
    net = seed_network(aws)
    profile = seed_profile(aws)
    ec2 = aws.client("ec2")
    ec2.create_key_pair(KeyName="ops")
    web = launch(aws, net, tags=PRODUCTION, profile_arn=profile, key_name="ops", data_volume=True)
    dev = launch(aws, net, name="dev-1", tags={"Environment": "dev"})
    volumes = {
        m["DeviceName"]: m["Ebs"]["VolumeId"] for m in instance(aws, web)["BlockDeviceMappings"]
    }
    nightly = ec2.create_image(InstanceId=web, Name="web-nightly")["ImageId"]
    ec2.create_image(InstanceId=dev, Name="dev-nightly")  # another instance's: not listed
    next_second()
    manual = ec2.create_snapshot(VolumeId=volumes["/dev/sda1"], Description="before patching")
    taken = aws.act(
        "aws.ec2.snapshot_instance",
        {"instance_ids": [web]},
        env=aws.env(run_id="earlier"),
        step_id="preserve",
    ).output["created"]
    env = aws.env()
    done = aws.act(DESCRIBE, {"instance_ids": [web, dev, "i-0000000000000dead"]}, env=env)
    output = done.output
    assert output["not_found"] == ["i-0000000000000dead"]
    assert output["production"] == [web]
    described_web, described_dev = output["instances"]
    assert described_dev["production"] is False and described_dev["images"] != []
    assert described_web["state"] == "running"
    assert described_web["tags"] == {"Name": "web-1", **PRODUCTION}
    assert described_web["key_name"] == "ops"
    assert described_web["instance_profile"] == profile
    assert described_web["subnet_id"] == net.subnet_id
    [nic] = described_web["network_interfaces"]
    assert sorted(g["group_id"] for g in nic["security_groups"]) == sorted([net.web, net.app])
    assert {(v["device"], v["volume_id"], v["root"]) for v in described_web["volumes"]} == {
        ("/dev/sda1", volumes["/dev/sda1"], True),
        ("/dev/sdf", volumes["/dev/sdf"], False),
    }
    assert described_web["launched_from"]["image_id"] == BASE_IMAGE
    assert described_web["launched_from"]["found"] is True
    [image] = described_web["images"]
    assert image["image_id"] == nightly
    assert "source instance" in image["matched_by"]
    snapshots = described_web["snapshots"]
    by_id = {s["snapshot_id"]: s for s in snapshots}
    assert set(by_id) == {*taken, manual["SnapshotId"], *image["snapshot_ids"]}
    assert by_id[manual["SnapshotId"]]["matched_by"] == ["volume of the instance"]
    assert by_id[manual["SnapshotId"]]["device"] == "/dev/sda1"
    for snapshot_id in taken:
        assert by_id[snapshot_id]["matched_by"][0] == "riposte tag"
        assert by_id[snapshot_id]["riposte_run"] == "earlier"
    [from_image] = image["snapshot_ids"]
    assert by_id[from_image]["matched_by"] == ["CreateImage description"]
    assert by_id[from_image]["image_id"] == nightly
    assert snapshots[-1]["snapshot_id"] == from_image  # newest first: the AMI's is the oldest
    json.dumps(output)

    sent = len(env.aws.calls.sent)  # the run's clients: one log for every step
    again = aws.act(DESCRIBE, {"instance_ids": [web]}, env=env)
    assert again.output["instances"] == [described_web]
    assert env.aws.calls.sent[sent:] == []  # cached for the run


def test_describe_shows_terminated_instances_while_aws_does(aws: AwsSandbox) -> None:
    net = seed_network(aws)
    web = launch(aws, net, tags=PRODUCTION)
    aws.client("ec2").terminate_instances(InstanceIds=[web])
    done = aws.act(DESCRIBE, {}, env=aws.env(alert=instance_alert(web)))
    [described] = done.output["instances"]
    assert described["state"] == "terminated"
    assert described["state_reason"].startswith("User initiated")
    assert described["production"] is True
    assert done.output["terminated"] == [web]


def test_describe_fails_when_no_instance_is_found(aws: AwsSandbox) -> None:
    with pytest.raises(ActionError) as error:
        aws.act(DESCRIBE, {"instance_ids": ["i-0000000000000dead"]})
    assert error.value.code == "InstanceNotFound"
    assert "i-0000000000000dead" in error.value.message
    with pytest.raises(ActionError) as error:
        aws.act(DESCRIBE, {"instance_ids": ["not-an-instance"]})
    assert error.value.code == "InvalidInstanceId"
