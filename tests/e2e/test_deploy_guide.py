"""README's "Deploy to AWS", steps 2, 5 and 6, done against the API: the tokens made as it says,
its test event delivered as EventBridge delivers it, and the run it starts and lists.

The commands and the event are read from README.md (tests/deploy_guide.py), so the guide and
what Riposte does cannot drift apart.
"""

from __future__ import annotations

import json
import re
import shlex
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from core.settings import Settings
from riposte.cli import app
from tests.deploy_guide import (
    compose_run_arguments,
    curl_body,
    sample_event_entries,
    section,
    shell_commands,
)
from tests.e2e.conftest import MakeClient, TestClient, WaitForRun

if TYPE_CHECKING:
    from tests.e2e.conftest import Tokens

REPO_ROOT = Path(__file__).resolve().parents[2]
HUB_ACCOUNT = "111111111111"


def as_eventbridge_delivers(entry: dict[str, Any]) -> dict[str, Any]:
    """The event an API destination posts for a PutEvents entry (EventBridge's envelope)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": HUB_ACCOUNT,
        "time": "2025-01-01T12:00:05Z",
        "region": "us-east-1",
        "resources": entry.get("Resources", []),
        "detail": json.loads(entry["Detail"]),
    }


@pytest.fixture
def shipped_settings(db_url: str) -> Settings:
    """The app as docker-compose.yml runs it: the shipped playbooks."""
    return Settings(database_url=db_url, playbook_dir=REPO_ROOT / "playbooks",
                    worker_poll_seconds=0.5)


def test_the_first_admin_token_and_the_ingest_token_are_made_as_step_2_says(
    sqlite_url: str, make_client: MakeClient
) -> None:
    # SQLite: the command leaves its engine to the end of the process, which a test outlives.
    [arguments] = [args for args in compose_run_arguments("token create")
                   if args[:2] == ["token", "create"]]

    made = CliRunner().invoke(app, arguments, env={"RIPOSTE_DATABASE_URL": sqlite_url})

    assert made.exit_code == 0, made.output
    admin_token = made.stdout.strip()  # alone on stdout: $(…) takes it whole
    assert re.fullmatch(r"rip_[\w-]+", admin_token)
    settings = Settings(database_url=sqlite_url, playbook_dir=REPO_ROOT / "playbooks")
    with make_client(settings) as client:
        admin = {"Authorization": f"Bearer {admin_token}"}
        ingest = client.post("/v1/tokens", json=curl_body("/v1/tokens"), headers=admin)
        assert ingest.status_code == 201, ingest.text
        assert ingest.json()["role"] == "ingest"  # jq -r .token takes the secret
        listed = client.get("/v1/tokens", headers=admin).json()["tokens"]
        assert [(t["name"], t["role"]) for t in listed] == [
            (arguments[arguments.index("--name") + 1], "admin"),
            (curl_body("/v1/tokens")["name"], "ingest")]


def test_the_test_event_is_not_from_aws_and_the_test_rule_matches_it() -> None:
    [entry] = sample_event_entries()
    [put_rule] = [c for c in shell_commands("put-events") if c.startswith("aws events put-rule")]

    pattern = json.loads(shlex.split(put_rule.split("--event-pattern", 1)[1])[0])

    # PutEvents refuses a source starting with "aws." (NotAuthorizedForSourceException).
    assert not entry["Source"].startswith("aws.")
    assert pattern == {"source": [entry["Source"]]}
    assert "EventBusName" not in entry  # the default bus, where the test rule is
    assert {"Source", "DetailType", "Detail"} <= set(entry)
    assert isinstance(entry["Detail"], str)  # PutEvents takes the detail as JSON text
    assert "file://test-event.json" in " ".join(shell_commands("put-events"))


def test_the_test_event_is_accepted_once_and_a_run_started_on_it_waits_for_approval(
    shipped_settings: Settings, tokens: Tokens, make_client: MakeClient,
    wait_for_run: WaitForRun,
) -> None:
    [entry] = sample_event_entries()
    event = as_eventbridge_delivers(entry)
    header = shipped_settings.eventbridge_api_key_header

    with make_client(shipped_settings, workers=1) as client:
        ingest_token = client.post("/v1/tokens", json=curl_body("/v1/tokens"),
                                   headers=tokens.as_admin).json()["token"]
        # Step 5: the API destination posts it, the ingest token in the connection's header.
        delivered = client.post("/v1/webhooks/eventbridge", json=event,
                                headers={header: ingest_token})
        assert delivered.status_code == 202, delivered.text
        [stored] = delivered.json()["alerts"]
        assert stored["run_ids"] == [] and stored["duplicate"] is False  # "it starts no run"
        [delivery] = get(client, tokens, "/v1/deliveries?limit=1")["deliveries"]
        assert (delivery["outcome"], delivery["endpoint"]) == (
            "accepted", "/v1/webhooks/eventbridge")
        [alert] = get(client, tokens, "/v1/alerts?limit=1")["alerts"]
        assert alert["id"] == stored["alert_id"]
        assert alert["title"].startswith("TerminateInstances by riposte-test")
        assert (alert["source"], alert["account"]) == ("cloudtrail", HUB_ACCOUNT)
        again = client.post("/v1/webhooks/eventbridge", json=as_eventbridge_delivers(entry),
                            headers={header: ingest_token})
        assert again.status_code == 200 and again.json()["alerts"][0]["duplicate"] is True

        # Step 6: a run started by hand on it, taken by the worker, listed, then cancelled.
        body = json.loads(json.dumps(curl_body("/v1/runs")).replace("$ALERT_ID", alert["id"]))
        started = client.post("/v1/runs", json=body, headers=tokens.as_admin)
        assert started.status_code == 201, started.text
        run = wait_for_run(client, started.json()["id"], tokens.as_admin, "waiting_approval")
        assert run["playbook"] == "example-triage"
        assert [s["step_id"] for s in run["steps"] if s["status"] == "succeeded"] == [
            "record-artifacts", "list-resources", "summary"]
        assert (run["vars"]["principal"], run["vars"]["instance_ids"]) == (
            "riposte-test", ["i-0123456789abcdef0"])
        [request] = run["approvals"]
        plan_hash = get(client, tokens, f"/v1/approvals/{request['id']}")["plan_hash"]
        decided = client.post(f"/v1/approvals/{request['id']}/decision", headers=tokens.as_admin,
                              json={"decision": "approve", "reason": "t", "plan_hash": plan_hash})
        assert decided.status_code == 403  # "which you (who started it) may not approve"
        listed = get(client, tokens, "/v1/runs")["runs"]
        assert [(r["id"], r["status"]) for r in listed] == [(run["id"], "waiting_approval")]
        [cancel] = [c for c in shell_commands("/cancel") if c.endswith("/cancel\"")]
        assert cancel.endswith('"https://riposte.example.com/v1/runs/$RUN_ID/cancel"')
        cancelled = client.post(f"/v1/runs/{run['id']}/cancel", headers=tokens.as_admin)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

def get(client: TestClient, tokens: Tokens, path: str) -> dict[str, Any]:
    response = client.get(path, headers=tokens.as_admin)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_every_riposte_command_of_the_guide_parses_with_riposte_s_cli() -> None:
    commands = [args for holding in ("token create", "runs list", "aws template hub")
                for args in compose_run_arguments(holding)]
    assert ["runs", "list"] in commands
    registered = CliRunner().invoke(app, ["aws", "--help"]).exit_code == 0

    for arguments in commands:
        if arguments[0] == "aws" and not registered:
            continue  # checked by the test below once `riposte aws` is registered
        result = CliRunner().invoke(app, [*arguments, "--help"])
        assert result.exit_code == 0, f"riposte {' '.join(arguments)}: {result.output}"
    assert "docker compose run --rm -T --no-deps api policy" in " ".join(section().split())


def test_the_guide_gives_the_stacks_the_parameters_their_templates_take() -> None:
    if CliRunner().invoke(app, ["aws", "--help"]).exit_code != 0:
        pytest.skip("`riposte aws` is not registered in riposte/cli.py yet")
    commands = " ".join(shell_commands("aws cloudformation deploy"))
    for stack in ("hub", "region", "member"):
        printed = CliRunner().invoke(app, ["aws", "template", stack, "--format", "json"],
                                     env={"RIPOSTE_PLAYBOOK_DIR": str(REPO_ROOT / "playbooks")})
        assert printed.exit_code == 0, printed.output
        template = json.loads(printed.stdout)
        given = (set(re.findall(r"\b(\w+)=\S", commands.split("--parameter-overrides")[1]
                                .split("HUB_BUS=")[0])) if stack == "hub"
                 else set(re.findall(rf"stack-set-name riposte-{stack} .*?--parameters (.*?)"
                                     r"(?: aws |$)", commands)[0].split("ParameterKey=")[1:]))
        names = {name.split(",")[0] for name in given}
        required = {name for name, p in template["Parameters"].items() if "Default" not in p}
        assert required <= names <= set(template["Parameters"]), stack
        named_roles = any(r["Type"] == "AWS::IAM::Role" and "RoleName" in r["Properties"]
                          for r in template["Resources"].values())
        deploy = next(c for c in shell_commands("aws cloudformation deploy")
                      if f"{stack}.yaml" in c and "template" in c and "compose" not in c)
        assert ("CAPABILITY_NAMED_IAM" in deploy) == named_roles, stack
    for output in re.findall(r"OutputKey=='(\w+)'", section()):
        assert output in {"EventBusArn", "AlarmTopicArn"}
