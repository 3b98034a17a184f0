"""aws.ec2.relaunch_instances against the moto server: the seed article's recovery.

moto ignores RunInstances' ClientToken, so a second run launching nothing proves Riposte's own
look-up (the ``riposte:replaces`` and run tags) prevents it. moto's RegisterImage ignores the
block-device mapping and tags it is given: what an image registered from snapshots holds is
checked on the call Riposte sent. moto stamps creation times to the second, so the tests that
need "before" and "after" wait for the clock's next second.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import Stubber

from actions.aws.ec2_replacement import wait_running
from actions.base import ActionContext, ActionError
from engine.runner import execute_step
from engine.spec import Step
from tests.aws_sandbox import AwsSandbox, calls_of, mutations_of
from tests.integration.ec2_seed import (
    PRODUCTION,
    Network,
    instance,
    instance_alert,
    launch,
    next_second,
    now_iso,
    own_snapshots,
    replace_placeholders,
    seed_network,
    seed_profile,
    tags,
)

RELAUNCH = "aws.ec2.relaunch_instances"


def _live(aws: AwsSandbox) -> list[dict[str, Any]]:
    """Every instance not terminated, in the emulator."""
    reservations = aws.client("ec2").describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}]
    )["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def _seed_incident(aws: AwsSandbox) -> dict[str, Any]:
    """Three production servers with backups, then Roboman1 terminates them (the seed)."""
    net = seed_network(aws)
    ec2 = aws.client("ec2")
    ec2.create_key_pair(KeyName="ops")
    api = launch(aws, net, name="api-1", tags={**PRODUCTION, "App": "api"}, key_name="ops")
    files = launch(aws, net, name="files-1", tags=PRODUCTION, groups=[net.web], data_volume=True)
    db = launch(aws, net, name="db-1", tags=PRODUCTION, instance_type="r5.large")
    api_image = ec2.create_image(InstanceId=api, Name="api-1-nightly")["ImageId"]
    # files-1 was backed up by Riposte's own snapshot action (a run before the incident).
    backup = aws.act(
        "aws.ec2.snapshot_instance",
        {"instance_ids": [files]},
        env=aws.env(run_id="nightly"),
        step_id="backup",
    )
    db_image = ec2.create_image(InstanceId=db, Name="db-1-nightly")["ImageId"]
    broken = ec2.create_image(InstanceId=db, Name="db-1-half-made")["ImageId"]
    ec2.disable_image(ImageId=broken)
    originals = {i: instance(aws, i) for i in (api, files, db)}
    ec2.terminate_instances(InstanceIds=[api, files, db])
    next_second()
    return {
        "net": net,
        "ids": [api, files, db],
        "originals": originals,
        "images": {api: api_image, db: db_image},
        "broken": broken,
        "snapshots": {s["snapshot_id"]: s for s in backup.output["instances"][0]["snapshots"]},
        "alert": instance_alert(api, files, db, event_time=now_iso()),
    }


def test_relaunch_rebuilds_terminated_production_instances_like_the_originals(
    aws: AwsSandbox,
) -> None:
    seeded = _seed_incident(aws)
    api, files, db = seeded["ids"]
    done = aws.act(RELAUNCH, {}, env=aws.env(alert=seeded["alert"]), step_id="relaunch")
    replacements = done.output["replacements"]
    assert set(replacements) == {api, files, db}
    for old, new in replacements.items():
        original, replacement = seeded["originals"][old], instance(aws, new)
        assert replacement["State"]["Name"] == "running"
        assert replacement["InstanceType"] == original["InstanceType"]
        assert replacement["SubnetId"] == original["SubnetId"]
        assert {g["GroupId"] for g in replacement["SecurityGroups"]} == {
            g["GroupId"] for g in original["SecurityGroups"]
        }
        assert replacement.get("KeyName") == original.get("KeyName")
        assert tags(replacement) == {
            **tags(original),
            "riposte:run": "run-1",
            "riposte:step": "relaunch",
            "riposte:replaces": old,
        }
        assert replacement["MetadataOptions"]["HttpTokens"] == "required"
    assert instance(aws, replacements[api])["ImageId"] == seeded["images"][api]
    # The newer db image is disabled: the older, available one is used.
    assert instance(aws, replacements[db])["ImageId"] == seeded["images"][db]
    by_old = {r["old"]: r for r in done.output["relaunched"]}
    assert any(seeded["broken"] in p and "disabled" in p for p in by_old[db]["passed_over"])
    assert all(r["production"] for r in done.output["relaunched"])
    # files-1 had only snapshots: an image is registered from them, root device first.
    [register] = [p for op, p in mutations_of(done) if op == "RegisterImage"]
    assert register["Name"] == f"riposte-run-1-relaunch-{files}"
    assert register["RootDeviceName"] == "/dev/sda1"
    assert register["BlockDeviceMappings"] == [
        {"DeviceName": s["device"], "Ebs": {"SnapshotId": s_id, "DeleteOnTermination": True}}
        for s_id, s in sorted(seeded["snapshots"].items(), key=lambda kv: kv[1]["device"])
    ]
    registered = by_old[files]["from"]["registered_image"]["image_id"]
    assert instance(aws, replacements[files])["ImageId"] == registered
    assert done.output["before_from"] == "alert"
    json.dumps(done.output)

    again = aws.act(RELAUNCH, {}, env=aws.env(alert=seeded["alert"]), step_id="relaunch")
    assert again.mutations == []  # moto ignores ClientToken: Riposte's look-up did this
    assert again.output["replacements"] == replacements
    assert again.output["summary"].startswith("nothing to do")
    assert len(_live(aws)) == 3


def test_relaunch_dry_run_plans_exactly_what_the_live_run_does(aws: AwsSandbox) -> None:
    seeded = _seed_incident(aws)
    env = aws.env(mode="dry_run", alert=seeded["alert"])
    dry = aws.act(RELAUNCH, {}, env=env, step_id="relaunch")
    assert _live(aws) == [] and dry.mutations == [] and dry.ctx.aws.calls.refused == []
    assert [op for op, _ in calls_of(dry.output)] == [
        "RunInstances",
        "RegisterImage",
        "RunInstances",
        "RunInstances",
    ]
    live = aws.act(RELAUNCH, {}, env=aws.env(alert=seeded["alert"]), step_id="relaunch")
    files = seeded["ids"][1]
    image = next(r for r in live.output["relaunched"] if r["old"] == files)["from"]
    known = {f"<new riposte-run-1-relaunch-{files}>": image["registered_image"]["image_id"]}
    assert mutations_of(live) == replace_placeholders(calls_of(dry.output), known)


def test_relaunch_undo_terminates_only_what_it_launched(aws: AwsSandbox) -> None:
    seeded = _seed_incident(aws)
    bystander = launch(aws, seeded["net"], name="bystander")
    done = aws.act(RELAUNCH, {}, env=aws.env(alert=seeded["alert"]))
    undo = done.output["undo"]
    assert sorted(i["new"] for i in undo["instances"]) == sorted(
        done.output["replacements"].values()
    )
    planned = aws.act(RELAUNCH, {}, mode="dry_run", undo=undo).output
    undone = aws.act(RELAUNCH, {}, undo=undo)
    assert mutations_of(undone) == calls_of(planned)
    assert [i["InstanceId"] for i in _live(aws)] == [bystander]
    [image] = undo["images"]
    assert undone.output["images_deregistered"] == [image["image_id"]]
    assert (
        aws.client("ec2").describe_images(Owners=["self"], ImageIds=[image["image_id"]])["Images"]
        == []
    )
    assert set(seeded["snapshots"]) <= set(own_snapshots(aws))  # the backups stay
    again = aws.act(RELAUNCH, {}, undo=undo)
    assert again.mutations == []


def test_relaunch_uses_the_newest_backup_taken_before_the_incident(aws: AwsSandbox) -> None:
    net = seed_network(aws)
    web = launch(aws, net)
    ec2 = aws.client("ec2")
    older = ec2.create_image(InstanceId=web, Name="web-monday")["ImageId"]
    next_second()
    newer = ec2.create_image(InstanceId=web, Name="web-tuesday")["ImageId"]
    incident = ec2.describe_images(ImageIds=[newer])["Images"][0]["CreationDate"]
    ec2.terminate_instances(InstanceIds=[web])
    # The newer image was taken at the incident's very second: not before it.
    done = aws.act(RELAUNCH, {"instance_ids": [web], "before": incident})
    [relaunched] = done.output["relaunched"]
    assert relaunched["from"]["image_id"] == older
    assert instance(aws, relaunched["new"])["ImageId"] == older
    assert any(newer in p and "not before" in p for p in relaunched["passed_over"])
    assert done.output["before_from"] == "input"


def test_relaunch_without_a_backup_before_the_incident_launches_nothing(
    aws: AwsSandbox,
) -> None:
    net = seed_network(aws)
    backed_up, bare = launch(aws, net, name="a"), launch(aws, net, name="b")
    aws.client("ec2").create_image(InstanceId=backed_up, Name="a-nightly")
    aws.client("ec2").terminate_instances(InstanceIds=[backed_up, bare])
    next_second()
    with pytest.raises(ActionError) as error:
        aws.act(RELAUNCH, {"instance_ids": [backed_up, bare], "before": now_iso()})
    assert error.value.code == "NoRecoveryPoint"
    assert bare in error.value.message and backed_up not in error.value.message
    assert _live(aws) == []
    # The seed's incident time: every backup above was taken after it.
    with pytest.raises(ActionError) as error:
        aws.act(RELAUNCH, {"instance_ids": [backed_up], "before": "2020-11-06T03:21:39Z"})
    assert error.value.code == "NoRecoveryPoint" and "not before" in error.value.message
    partial = aws.act(
        RELAUNCH,
        {"instance_ids": [backed_up, bare], "before": now_iso(), "skip_unrecoverable": True},
    )
    assert list(partial.output["replacements"]) == [backed_up]
    assert [u["instance_id"] for u in partial.output["unrecoverable"]] == [bare]
    assert [u["code"] for u in partial.output["unrecoverable"]] == ["NoRecoveryPoint"]


def test_a_relaunch_with_every_backup_after_the_incident_says_it_relaunched_none(
    aws: AwsSandbox,
) -> None:
    """The seed's incident time, and backups taken only since: nothing can be relaunched, and
    the step says so (it does not claim "nothing to do"), live and in a dry run alike."""
    net = seed_network(aws)
    ec2 = aws.client("ec2")
    ids = [launch(aws, net, name=f"web-{n}", tags=PRODUCTION) for n in range(3)]
    images = {i: ec2.create_image(InstanceId=i, Name=f"{i}-nightly")["ImageId"] for i in ids}
    ec2.terminate_instances(InstanceIds=ids)
    incident = "2020-11-06T03:21:39Z"
    step = Step.model_validate(
        {
            "id": "relaunch",
            "action": RELAUNCH,
            "with": {"instance_ids": ids, "before": incident, "skip_unrecoverable": True},
        }
    )
    context = {"alert": {}, "steps": {}, "vars": {}, "run": {"id": "run-1"}}

    dry = execute_step(step, context, run_id="run-1", mode="dry_run", env=aws.env(mode="dry_run"))
    live = execute_step(step, context, run_id="run-1", mode="live", env=aws.env())

    assert live.status == "succeeded", live.error
    assert live.output["summary"] == (
        f"relaunched 0 of 3 terminated instances; 3 unrecoverable (no AMI or snapshot taken "
        f"before {incident}): {', '.join(ids)}"
    )
    assert live.output["replacements"] == {} and _live(aws) == []
    for item, instance_id in zip(live.output["unrecoverable"], ids, strict=True):
        assert item["instance_id"] == instance_id and item["code"] == "NoRecoveryPoint"
        [image, _snapshots] = item["passed_over"]  # the AMI, and the snapshots it was made of
        assert image.startswith(f"{images[instance_id]} ({instance_id}-nightly): created ")
        assert image.endswith(f", not before {incident}")
    reason = f"not relaunched: no available AMI or completed snapshot set taken before {incident}"
    assert live.left_undone == [{"target": i, "reason": reason} for i in ids]
    assert live.output["left_undone"] == live.left_undone
    # The dry run plans no call and says the same of every instance.
    assert dry.status == "succeeded", dry.error
    assert dry.output == {"planned": [], "left_undone": live.left_undone}
    assert dry.left_undone == live.left_undone


def test_relaunch_skips_instances_that_are_not_terminated(aws: AwsSandbox) -> None:
    net = seed_network(aws)
    running = launch(aws, net, tags=PRODUCTION)
    done = aws.act(RELAUNCH, {"instance_ids": [running], "before": now_iso()})
    assert done.mutations == []
    assert done.output["skipped"] == [
        {
            "instance_id": running,
            "production": True,
            "state": "running",
            "reason": "running, not terminated: nothing to relaunch",
        }
    ]


def test_relaunch_fails_clearly_when_the_original_cannot_be_described(
    aws: AwsSandbox,
) -> None:
    with pytest.raises(ActionError) as error:
        aws.act(RELAUNCH, {"instance_ids": ["i-0000000000000dead"], "before": now_iso()})
    assert error.value.code == "InstanceNotDescribable"
    assert "its type, subnet, security groups" in error.value.message
    with pytest.raises(ActionError) as error:
        aws.act(RELAUNCH, {}, env=aws.env(alert=instance_alert("i-0000000000000dead")))
    assert error.value.code == "NoIncidentTime"


def test_relaunch_overrides_supply_what_termination_dropped(aws: AwsSandbox) -> None:
    """AWS (and moto) drop the instance profile association when an instance terminates."""
    net: Network = seed_network(aws)
    profile = seed_profile(aws)
    web = launch(aws, net, profile_arn=profile)
    aws.client("ec2").create_image(InstanceId=web, Name="web-nightly")
    aws.client("ec2").terminate_instances(InstanceIds=[web])
    next_second()
    env = aws.env(alert=instance_alert(web, event_time=now_iso()))
    done = aws.act(
        RELAUNCH,
        {"overrides": {web: {"instance_profile_arn": profile, "instance_type": "t3.small"}}},
        env=env,
    )
    [relaunched] = done.output["relaunched"]
    replacement = instance(aws, relaunched["new"])
    assert replacement["IamInstanceProfile"]["Arn"] == profile
    assert replacement["InstanceType"] == "t3.small"
    assert relaunched["notes"] == []


def test_relaunch_waits_a_bounded_time_for_replacements_to_run(aws: AwsSandbox) -> None:
    """moto's instances run at once, so the Stubber plays one that stays pending."""
    env = aws.env()
    env.settings = aws.settings.model_copy(
        update={"ec2_launch_wait_seconds": 0.3, "ec2_poll_seconds": 0.05}
    )
    ctx = ActionContext(run_id="run-1", step_id="relaunch", mode="live", env=env)
    ec2 = env.aws.client("ec2")
    pending = {
        "Reservations": [
            {"Instances": [{"InstanceId": "i-0123456789abcdef0", "State": {"Name": "pending"}}]}
        ]
    }
    with Stubber(ec2._client) as stub:
        for _ in range(100):
            stub.add_response("describe_instances", pending)
        with pytest.raises(ActionError) as error:
            wait_running(ctx, ec2, ["i-0123456789abcdef0"])
    assert error.value.code == "ReplacementNotRunning" and error.value.retryable
    assert "i-0123456789abcdef0 (pending)" in error.value.message
    ctx.cancelled.set()
    with Stubber(ec2._client) as stub:
        stub.add_response("describe_instances", pending)
        with pytest.raises(ActionError) as error:
            wait_running(ctx, ec2, ["i-0123456789abcdef0"])
    assert error.value.code == "Cancelled"


def test_relaunch_after_a_crash_reuses_the_image_it_registered(aws: AwsSandbox) -> None:
    """As if an earlier execution registered the image, then died before RunInstances."""
    seeded = _seed_incident(aws)
    files = seeded["ids"][1]
    name = f"riposte-run-1-relaunch-{files}"
    earlier = aws.client("ec2").register_image(Name=name, RootDeviceName="/dev/sda1")["ImageId"]
    done = aws.act(
        RELAUNCH, {"instance_ids": [files]}, env=aws.env(alert=seeded["alert"]), step_id="relaunch"
    )
    assert [op for op, _ in mutations_of(done)] == ["RunInstances"]
    [relaunched] = done.output["relaunched"]
    assert instance(aws, relaunched["new"])["ImageId"] == earlier
    assert done.output["undo"]["images"] == [{"image_id": earlier, "name": name}]


def test_relaunch_of_an_isolated_instance_gets_its_groups_and_profile_back(
    aws: AwsSandbox,
) -> None:
    """Isolation swapped the groups and dropped the profile; its riposte:before tags remain."""
    net = seed_network(aws)
    profile = seed_profile(aws)
    web = launch(aws, net, on_interface=True, profile_arn=profile)
    aws.client("ec2").create_image(InstanceId=web, Name="web-nightly")
    aws.act("aws.ec2.isolate_instance", {"instance_ids": [web]}, env=aws.env(run_id="contain"))
    aws.client("ec2").modify_instance_attribute(
        InstanceId=web, DisableApiTermination={"Value": False}
    )
    aws.client("ec2").terminate_instances(InstanceIds=[web])
    next_second()
    done = aws.act(RELAUNCH, {"instance_ids": [web], "before": now_iso()})
    [relaunched] = done.output["relaunched"]
    replacement = instance(aws, relaunched["new"])
    [nic] = replacement["NetworkInterfaces"]
    assert sorted(g["GroupId"] for g in nic["Groups"]) == sorted([net.web, net.app])
    assert replacement["IamInstanceProfile"]["Arn"] == profile
    assert not any(k.startswith("riposte:before") for k in tags(replacement))
    assert relaunched["notes"] == [
        "security groups as they were before Riposte isolated the original"
    ]
