"""``riposte policy``: the scoped policy of the shipped playbooks, as JSON or explained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from riposte.cli import app

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
ACCOUNT = "123456789012"


def policy(*args: str, **env: str) -> Any:
    result = CliRunner().invoke(app, ["policy", str(PLAYBOOKS), *args],
                                env={"RIPOSTE_PLAYBOOK_DIR": str(PLAYBOOKS), **env})
    assert result.exit_code == 0, result.output
    return result


def test_the_policy_is_scoped_to_the_account_roles_and_bucket_given() -> None:
    printed = policy("--account", ACCOUNT, "--partition", "aws-us-gov", "--pass-role",
                     "app-server", RIPOSTE_CLOUDTRAIL_BUCKET="acme-cloudtrail-logs",
                     RIPOSTE_RESPONDER_ROLE="riposte-responder")
    statements = {s["Sid"]: s for s in json.loads(printed.stdout)["Statement"]}
    assert statements["IamUsersOfTheAccount"]["Resource"] == (
        f"arn:aws-us-gov:iam::{ACCOUNT}:user/*"
    )
    assert statements["PassInstanceRolesToEc2Only"]["Resource"] == (
        f"arn:aws-us-gov:iam::{ACCOUNT}:role/app-server"
    )
    assert statements["CloudTrailLogFilesOnly"]["Resource"] == [
        f"arn:aws-us-gov:s3:::acme-cloudtrail-logs/AWSLogs/{ACCOUNT}/CloudTrail/*",
        f"arn:aws-us-gov:s3:::acme-cloudtrail-logs/*/AWSLogs/{ACCOUNT}/CloudTrail/*",
    ]
    assert statements["AssumeResponderRole"]["Resource"] == (
        "arn:aws-us-gov:iam::*:role/riposte-responder"
    )
    # Every statement but the reads AWS authorises on "*" only names resources.
    assert [sid for sid, s in statements.items() if s["Resource"] == "*"] == [
        "ReadCallsWithoutResourceLevelPermissions"
    ]


def test_explain_says_for_each_statement_its_scope_who_needs_it_and_why() -> None:
    explained = policy("--explain").stdout
    document = json.loads(policy().stdout)
    for statement in document["Statement"]:
        assert f"\n{statement['Sid']} (" in f"\n{explained}"
    assert explained.count("  why:        ") == len(document["Statement"])
    assert "Ec2TerminateOnlyReplacements (scoped)" in explained
    assert "condition:  Null aws:ResourceTag/riposte:replaces false" in explained
    assert "needed by:  aws.ec2.relaunch_instances" in explained
    last = explained.strip().splitlines()[-1]
    assert last.startswith(f"{len(document['Statement'])} statements: ")
    assert last.endswith("1 on * (ReadCallsWithoutResourceLevelPermissions)")
