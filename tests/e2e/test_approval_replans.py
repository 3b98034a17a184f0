"""A decision on a plan that changed since it was shown: 409, and a new request shows the change.

Through the HTTP API with an in-process worker, AWS state on the moto server.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from tests.aws_sandbox import OWN_ACCOUNT, AwsSandbox

if TYPE_CHECKING:
    from tests.e2e.conftest import PostAlert, Tokens, WaitForRun

REVOKE = """\
name: revoke-keys
trigger:
  source: [generic]
steps:
  - id: revoke
    action: aws.iam.revoke_access_keys
    with:
      user: "{{ alert.principal.name }}"
    approval:
      reason: the user's keys leaked
"""


def _keys(aws: AwsSandbox) -> dict[str, str]:
    listed = aws.client("iam").list_access_keys(UserName="mallory")["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in listed}


def test_an_approval_of_a_plan_that_moved_is_409_and_the_new_plan_is_asked_for(
    settings: Settings,
    aws: AwsSandbox,
    tokens: Tokens,
    write_playbook: Callable[[str, str], Path],
    post_alert: PostAlert,
    wait_for_run: WaitForRun,
) -> None:
    write_playbook("revoke.yml", REVOKE)
    iam = aws.client("iam")
    iam.create_user(UserName="mallory")
    first = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    aws_settings = aws.settings.model_dump(include={"aws_endpoint_url", "aws_region",
                                                    "aws_retry_seconds", "responder_role"})
    app = create_app(settings.model_copy(update=aws_settings), in_process_workers=1)
    with TestClient(app) as client:
        alert = post_alert(client, tokens.as_ingest, title="leaked key", account=OWN_ACCOUNT,
                           principal={"type": "IAMUser", "name": "mallory"})
        [run_id] = alert["run_ids"]
        run = wait_for_run(client, run_id, tokens.as_responder, "waiting_approval")
        [summary] = run["approvals"]
        shown = client.get(f"/v1/approvals/{summary['id']}", headers=tokens.as_responder).json()
        # The attacker makes a second key before anyone decides.
        second = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]

        refused = client.post(
            f"/v1/approvals/{shown['id']}/decision", headers=tokens.as_responder,
            json={"decision": "approve", "plan_hash": shown["plan_hash"], "reason": "go"},
        )
        assert refused.status_code == 409
        message = refused.json()["detail"]
        assert "changed since it was shown" in message
        assert "now also: iam:UpdateAccessKey" in message
        old = client.get(f"/v1/approvals/{shown['id']}", headers=tokens.as_responder).json()
        assert old["status"] == "superseded"
        assert old["decisions"] == []
        [pending] = client.get("/v1/approvals?status=pending",
                               headers=tokens.as_responder).json()["approvals"]
        assert pending["id"] != shown["id"] and pending["id"] in message
        assert pending["plan_hash"] in message
        new = client.get(f"/v1/approvals/{pending['id']}", headers=tokens.as_responder).json()
        targets = sorted(c["params"]["AccessKeyId"] for c in new["plan"]["calls"][0])
        assert targets == sorted([first, second])
        assert _keys(aws) == {first: "Active", second: "Active"}

        approved = client.post(
            f"/v1/approvals/{pending['id']}/decision", headers=tokens.as_responder,
            json={"decision": "approve", "plan_hash": pending["plan_hash"], "reason": "go"},
        )
        assert approved.status_code == 200, approved.text
        wait_for_run(client, run_id, tokens.as_responder, "succeeded")
    assert _keys(aws) == {first: "Inactive", second: "Inactive"}
