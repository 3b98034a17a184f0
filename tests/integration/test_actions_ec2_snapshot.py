"""aws.ec2.snapshot_instance against the moto server."""

from __future__ import annotations

import json

import pytest

from actions.base import ActionError
from tests.aws_sandbox import OTHER_ACCOUNT, OWN_ACCOUNT, REGION, AwsSandbox, calls_of, mutations_of
from tests.integration.ec2_seed import (
    PRODUCTION,
    instance,
    instance_alert,
    launch,
    own_snapshots,
    seed_network,
    tags,
)

SNAPSHOT = "aws.ec2.snapshot_instance"


def _volumes(aws: AwsSandbox, instance_id: str) -> dict[str, str]:
    mappings = instance(aws, instance_id)["BlockDeviceMappings"]
    return {m["Ebs"]["VolumeId"]: m["DeviceName"] for m in mappings}


def test_snapshot_takes_one_tagged_snapshot_of_every_volume(aws: AwsSandbox) -> None:
    net = seed_network(aws)
    web = launch(aws, net, tags=PRODUCTION, data_volume=True)
    volumes = _volumes(aws, web)
    assert len(volumes) == 2
    done = aws.act(SNAPSHOT, {}, env=aws.env(alert=instance_alert(web)), step_id="preserve")
    snapshots = own_snapshots(aws)
    assert sorted(done.output["created"]) == sorted(snapshots)
    for snapshot in snapshots.values():
        volume = snapshot["VolumeId"]
        assert tags(snapshot) == {
            "riposte:run": "run-1",
            "riposte:step": "preserve",
            "riposte:instance": web,
            "riposte:volume": volume,
            "riposte:device": volumes[volume],
        }
        assert snapshot["Description"] == (
            f"Riposte run run-1 step preserve: {volume} ({volumes[volume]}) of {web}"
        )
    assert {s["VolumeId"] for s in snapshots.values()} == set(volumes)
    [report] = done.output["instances"]
    assert report["production"] is True
    assert done.output["summary"] == "took 2 snapshot(s)"
    assert sorted(done.output["undo"]["snapshots"]) == sorted(snapshots)
    json.dumps(done.output)


def test_snapshot_a_second_time_finds_the_first_snapshots(aws: AwsSandbox) -> None:
    net = seed_network(aws)
    web = launch(aws, net, data_volume=True)
    env = aws.env()
    first = aws.act(SNAPSHOT, {"instance_ids": [web]}, env=env)
    again = aws.act(SNAPSHOT, {"instance_ids": [web]}, env=aws.env())
    assert again.mutations == []
    assert again.output["created"] == []
    assert sorted(again.output["already_taken"]) == sorted(first.output["created"])
    assert again.output["summary"].startswith("nothing to do")
    assert len(own_snapshots(aws)) == 2
    # Another step of the same run takes its own.
    other = aws.act(SNAPSHOT, {"instance_ids": [web]}, env=env, step_id="later")
    assert len(other.output["created"]) == 2


def test_snapshot_dry_run_plans_exactly_what_the_live_run_does(aws: AwsSandbox) -> None:
    net = seed_network(aws)
    web = launch(aws, net, data_volume=True)
    dry = aws.act(SNAPSHOT, {"instance_ids": [web]}, mode="dry_run")
    assert own_snapshots(aws) == {}
    assert dry.mutations == [] and dry.ctx.aws.calls.refused == []
    assert [op for op, _ in calls_of(dry.output)] == ["CreateSnapshot", "CreateSnapshot"]
    live = aws.act(SNAPSHOT, {"instance_ids": [web]})
    assert mutations_of(live) == calls_of(dry.output)


def test_snapshot_undo_deletes_only_the_snapshots_it_took(aws: AwsSandbox) -> None:
    net = seed_network(aws)
    web = launch(aws, net)
    [volume] = _volumes(aws, web)
    backup = aws.client("ec2").create_snapshot(VolumeId=volume, Description="nightly")
    done = aws.act(SNAPSHOT, {"instance_ids": [web]})
    undo = done.output["undo"]
    assert calls_of(aws.act(SNAPSHOT, {}, mode="dry_run", undo=undo).output) == [
        ("DeleteSnapshot", {"SnapshotId": done.output["created"][0]})
    ]
    undone = aws.act(SNAPSHOT, {}, undo=undo)
    assert undone.output["deleted"] == done.output["created"]
    assert list(own_snapshots(aws)) == [backup["SnapshotId"]]
    again = aws.act(SNAPSHOT, {}, undo=undo)
    assert again.mutations == [] and again.output["already_gone"] == done.output["created"]


def test_snapshot_skips_a_terminated_instance_and_refuses_unknown_ones(aws: AwsSandbox) -> None:
    net = seed_network(aws)
    web = launch(aws, net)
    aws.client("ec2").terminate_instances(InstanceIds=[web])
    done = aws.act(SNAPSHOT, {"instance_ids": [web]})
    assert done.mutations == []
    assert "no EBS volume attached" in done.output["instances"][0]["skipped"]
    with pytest.raises(ActionError) as error:
        aws.act(SNAPSHOT, {"instance_ids": [web, "i-0000000000000dead"]})
    assert error.value.code == "InstanceNotFound"
    assert "i-0000000000000dead" in error.value.message
    with pytest.raises(ActionError) as error:
        aws.act(SNAPSHOT, {}, env=aws.env(alert={"region": REGION}))
    assert error.value.code == "NoInstances"


def test_snapshot_acts_in_the_account_the_alert_names(aws: AwsSandbox) -> None:
    net = seed_network(aws, account=OTHER_ACCOUNT)
    web = launch(aws, net, account=OTHER_ACCOUNT)
    alert = {**instance_alert(web), "account": OTHER_ACCOUNT}
    done = aws.act(SNAPSHOT, {}, env=aws.env(alert=alert))
    assert list(own_snapshots(aws, OTHER_ACCOUNT)) == done.output["created"]
    assert own_snapshots(aws) == {}
    assert done.output["undo"]["account"] == OTHER_ACCOUNT != OWN_ACCOUNT
