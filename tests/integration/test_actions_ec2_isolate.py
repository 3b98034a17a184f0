"""aws.ec2.isolate_instance against the moto server.

The instances are launched with their groups on the interface (see ``ec2_seed``), plus a
second interface, so the swap must go through ModifyNetworkInterfaceAttribute on each one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from actions.base import ActionError
from tests.aws_sandbox import OWN_ACCOUNT, AwsSandbox, calls_of, mutations_of
from tests.integration.ec2_seed import (
    PRODUCTION,
    Network,
    instance,
    instance_alert,
    launch,
    replace_placeholders,
    seed_network,
    seed_profile,
    tags,
)

ISOLATE = "aws.ec2.isolate_instance"


def _seed(aws: AwsSandbox, **launched: Any) -> tuple[Network, str, str]:
    """A production web server with a profile, a second interface and shutdown=terminate."""
    net = seed_network(aws)
    profile = seed_profile(aws)
    web = launch(aws, net, tags=PRODUCTION, on_interface=True, profile_arn=profile, **launched)
    ec2 = aws.client("ec2")
    second = ec2.create_network_interface(SubnetId=net.subnet_id, Groups=[net.app])
    eni = second["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=web, DeviceIndex=1)
    # The Attribute/Value form: moto ignores InstanceInitiatedShutdownBehavior={"Value": …}.
    ec2.modify_instance_attribute(
        InstanceId=web, Attribute="instanceInitiatedShutdownBehavior", Value="terminate"
    )
    return net, web, profile


def _state(aws: AwsSandbox, instance_id: str) -> dict[str, Any]:
    """What isolation changes on an instance, read back from the emulator."""
    ec2 = aws.client("ec2")
    described = instance(aws, instance_id)
    associations = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]

    def attribute(name: str) -> Any:
        key = name[0].lower() + name[1:]
        return ec2.describe_instance_attribute(InstanceId=instance_id, Attribute=key)[name]["Value"]

    return {
        "groups": {
            n["NetworkInterfaceId"]: sorted(g["GroupId"] for g in n["Groups"])
            for n in described["NetworkInterfaces"]
        },
        "profiles": [a["IamInstanceProfile"]["Arn"] for a in associations],
        "protected": attribute("DisableApiTermination"),
        "shutdown": attribute("InstanceInitiatedShutdownBehavior"),
        "tags": {k: v for k, v in tags(described).items() if k.startswith("riposte:")},
    }


def _isolation_groups(aws: AwsSandbox, net: Network) -> list[dict[str, Any]]:
    return list(
        aws.client("ec2").describe_security_groups(
            Filters=[{"Name": "group-name", "Values": [f"riposte-isolation-{net.vpc_id}"]}]
        )["SecurityGroups"]
    )


def test_isolate_cuts_network_and_credentials_on_every_interface(aws: AwsSandbox) -> None:
    net, web, profile = _seed(aws)
    before = _state(aws, web)
    done = aws.act(ISOLATE, {}, env=aws.env(alert=instance_alert(web)))
    [group] = _isolation_groups(aws, net)
    assert group["IpPermissions"] == [] and group["IpPermissionsEgress"] == []
    assert tags(group) == {
        "riposte:run": "run-1",
        "riposte:step": "step",
        "Name": f"riposte-isolation-{net.vpc_id}",
    }
    after = _state(aws, web)
    assert after["groups"] == {eni: [group["GroupId"]] for eni in before["groups"]}
    assert len(after["groups"]) == 2
    assert after["profiles"] == []
    assert after["protected"] is True and after["shutdown"] == "stop"
    eni_tags = {f"riposte:before:{eni}": sorted(g) for eni, g in before["groups"].items()}
    after["tags"].update({k: sorted(v.split()) for k, v in after["tags"].items() if "eni-" in k})
    assert after["tags"] == {
        "riposte:isolated": "run-1/step",
        "riposte:before:DisableApiTermination": "false",
        "riposte:before:InstanceInitiatedShutdownBehavior": "terminate",
        "riposte:before:IamInstanceProfile": profile,
        **eni_tags,
    }
    assert [c.operation for c in done.mutations] == [
        "CreateSecurityGroup",
        "RevokeSecurityGroupEgress",
        "CreateTags",  # the previous values are written before anything changes
        "ModifyInstanceAttribute",
        "ModifyInstanceAttribute",
        "ModifyNetworkInterfaceAttribute",
        "ModifyNetworkInterfaceAttribute",
        "DisassociateIamInstanceProfile",
    ]
    output = done.output
    [report] = output["instances"]
    assert report["production"] is True
    assert "connections already open stay open" in output["warning"]
    assert output["isolation_groups"][0]["group_id"] == group["GroupId"]
    assert output["undo"]["groups_created"][0]["group_id"] == group["GroupId"]
    json.dumps(output)


def test_isolate_a_second_time_changes_nothing_and_still_knows_how_to_undo(
    aws: AwsSandbox,
) -> None:
    _, web, _ = _seed(aws)
    first = aws.act(ISOLATE, {"instance_ids": [web]})
    isolated = _state(aws, web)
    # As after a crash that lost the first execution's output: only AWS remembers.
    again = aws.act(ISOLATE, {"instance_ids": [web]})
    assert again.mutations == []
    assert again.output["summary"] == "nothing to do: every instance is already isolated"
    assert _state(aws, web) == isolated
    assert again.output["undo"] == first.output["undo"]


def test_isolate_dry_run_plans_exactly_what_the_live_run_does(aws: AwsSandbox) -> None:
    net, web, _ = _seed(aws)
    before = _state(aws, web)
    dry = aws.act(ISOLATE, {"instance_ids": [web]}, mode="dry_run")
    assert _state(aws, web) == before and _isolation_groups(aws, net) == []
    assert dry.mutations == [] and dry.ctx.aws.calls.refused == []
    swaps = [c for c in dry.output if c.operation == "ModifyNetworkInterfaceAttribute"]
    assert len(swaps) == 2
    assert all("connections already open stay open" in c.target for c in swaps)
    live = aws.act(ISOLATE, {"instance_ids": [web]})
    [group] = _isolation_groups(aws, net)
    placeholder = f"<new riposte-isolation-{net.vpc_id}>"
    assert mutations_of(live) == replace_placeholders(
        calls_of(dry.output), {placeholder: group["GroupId"]}
    )


def test_isolate_undo_restores_every_interface_profile_and_attribute(aws: AwsSandbox) -> None:
    net, web, _ = _seed(aws)
    before = _state(aws, web)
    done = aws.act(ISOLATE, {"instance_ids": [web]})
    undo = done.output["undo"]
    planned = aws.act(ISOLATE, {}, mode="dry_run", undo=undo).output
    undone = aws.act(ISOLATE, {}, undo=undo)
    assert _state(aws, web) == before
    assert _isolation_groups(aws, net) == []  # this step created it and nothing uses it now
    assert mutations_of(undone) == calls_of(planned)
    assert undone.output["groups_deleted"] == [undo["groups_created"][0]["group_id"]]
    again = aws.act(ISOLATE, {}, undo=undo)
    assert again.mutations == []


def test_isolate_reuses_the_vpc_isolation_group_and_leaves_what_was_already_so(
    aws: AwsSandbox,
) -> None:
    net, web, _ = _seed(aws)
    other = launch(aws, net, name="web-2", on_interface=True)
    aws.client("ec2").modify_instance_attribute(
        InstanceId=web, DisableApiTermination={"Value": True}
    )
    earlier = aws.act(ISOLATE, {"instance_ids": [other]}, env=aws.env(run_id="run-0"))
    done = aws.act(ISOLATE, {"instance_ids": [web]})
    [group] = _isolation_groups(aws, net)
    assert group["GroupId"] == earlier.output["isolation_groups"][0]["group_id"]
    assert "CreateSecurityGroup" not in [c.operation for c in done.mutations]
    assert done.output["undo"]["groups_created"] == []
    assert "termination protection on" in done.output["instances"][0]["already"]
    aws.act(ISOLATE, {}, undo=done.output["undo"])
    state = _state(aws, web)
    assert state["protected"] is True  # it was on before: undo leaves it on
    assert state["shutdown"] == "terminate"
    assert _isolation_groups(aws, net) != []  # shared: the other instance still uses it
    assert _state(aws, other)["groups"] == {
        eni: [group["GroupId"]] for eni in _state(aws, other)["groups"]
    }


def test_isolate_refuses_break_glass_instances_and_the_one_riposte_runs_on(
    aws: AwsSandbox,
) -> None:
    _, web, _ = _seed(aws)
    before = _state(aws, web)
    env = aws.env()
    env.settings = aws.settings.model_copy(update={"break_glass": [web]})
    with pytest.raises(ActionError) as refused:
        aws.act(ISOLATE, {"instance_ids": [web]}, env=env)
    assert refused.value.code == "ProtectedPrincipal"
    assert "break-glass" in refused.value.message
    own = aws.env()
    # Riposte's credentials as an instance profile hands them out: the session is the instance.
    own.aws._identity = {
        "Account": OWN_ACCOUNT,
        "Arn": f"arn:aws:sts::{OWN_ACCOUNT}:assumed-role/riposte/{web}",
        "UserId": "AROAEXAMPLE:" + web,
    }
    with pytest.raises(ActionError) as refused:
        aws.act(ISOLATE, {"instance_ids": [web]}, env=own)
    assert "the instance Riposte runs on" in refused.value.message
    assert _state(aws, web) == before


def test_isolate_skips_terminated_instances_and_refuses_unknown_ones(aws: AwsSandbox) -> None:
    net = seed_network(aws)
    gone = launch(aws, net, on_interface=True)
    aws.client("ec2").terminate_instances(InstanceIds=[gone])
    done = aws.act(ISOLATE, {"instance_ids": [gone]})
    assert done.mutations == []
    assert done.output["instances"][0]["skipped"] == "terminated: nothing left to isolate"
    with pytest.raises(ActionError) as error:
        aws.act(ISOLATE, {"instance_ids": ["i-0000000000000dead"]})
    assert error.value.code == "InstanceNotFound"
