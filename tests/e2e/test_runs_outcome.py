"""A run whose step left work undone ends ``partial``: the API, the CLI and the audit say so.

The case of issue 11: a relaunch where every backup postdates the incident relaunches nothing.
The step succeeds (what it could do is done, and steps conditioned on it run), but its summary,
the run's outcome, the CLI and the final audit row name every instance it could not bring back;
a dry run of the same says the same, and so does ``riposte plan``. The app runs on a real socket
with one worker against the moto server; the CLI runs as a user runs it, knowing only the API's
URL and a token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from api.app import create_app
from core.settings import Settings
from tests.aws_sandbox import AwsSandbox
from tests.e2e.conftest import Tokens
from tests.integration.ec2_seed import PRODUCTION, launch, seed_network
from tests.live_server import serving

INCIDENT = "2020-11-06T03:21:39Z"
WAIT_SECONDS = 60.0
RECOVER = """\
name: recover
description: Relaunch the terminated instances from backups taken before the incident
steps:
  - id: relaunch
    action: aws.ec2.relaunch_instances
    with:
      instance_ids: {ids}
      before: "{incident}"
      skip_unrecoverable: true
  - id: after-relaunch
    action: core.log
    when: steps.relaunch.status == 'succeeded'
    with:
      message: "{{{{ steps.relaunch.output.get('summary', 'planned only') }}}}"
"""


def _terminated_with_backups_after_the_incident(aws: AwsSandbox) -> list[str]:
    net = seed_network(aws)
    ec2 = aws.client("ec2")
    ids = [launch(aws, net, name=f"api-{n}", tags=PRODUCTION) for n in range(2)]
    for instance_id in ids:  # nightly backups, all of them taken long after INCIDENT
        ec2.create_image(InstanceId=instance_id, Name=f"{instance_id}-nightly")
    ec2.terminate_instances(InstanceIds=ids)
    return ids


def _running(aws: AwsSandbox) -> list[str]:
    reservations = aws.client("ec2").describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}]
    )["Reservations"]
    return [i["InstanceId"] for r in reservations for i in r["Instances"]]


def _ended(http: httpx.Client, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        run: dict[str, Any] = http.get(f"/v1/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return run
        assert time.monotonic() < deadline, f"run {run_id} is still {run['status']}"
        time.sleep(0.1)


def _riposte(*args: str, **settings: str) -> str:
    """Run ``riposte ARGS`` with only these RIPOSTE_* settings; its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIPOSTE_")}
    env.update(settings)
    done = subprocess.run([sys.executable, "-m", "riposte", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_a_relaunch_that_recovered_nothing_ends_the_run_partial_naming_each_instance(
    aws: AwsSandbox,
    settings: Settings,
    tokens: Tokens,
    write_playbook: Callable[[str, str], Path],
) -> None:
    ids = _terminated_with_backups_after_the_incident(aws)
    write_playbook("recover.yml", RECOVER.format(ids=json.dumps(ids), incident=INCIDENT))
    with_aws = Settings.model_validate({
        **settings.model_dump(),
        **aws.settings.model_dump(
            include={"aws_endpoint_url", "aws_region", "aws_retry_seconds", "responder_role"}),
        "ec2_poll_seconds": 0.1,
    })
    with serving(create_app(with_aws, in_process_workers=1)) as url, httpx.Client(
        base_url=url, headers=Tokens.bearer(tokens.admin), timeout=10
    ) as http:
        alert = http.post("/v1/alerts", headers=tokens.as_ingest,
                          json={"title": "instances terminated", "severity": 70})
        assert alert.status_code == 202, alert.text
        started = {
            mode: http.post("/v1/runs", json={"alert_id": alert.json()["alert_id"],
                                              "playbook": "recover", "mode": mode}).json()["id"]
            for mode in ("live", "dry_run")
        }
        live, dry = _ended(http, started["live"]), _ended(http, started["dry_run"])
        cli = {"RIPOSTE_API_URL": url, "RIPOSTE_TOKEN": tokens.responder}
        shown = _riposte("runs", "show", live["id"], **cli)
        listed = _riposte("runs", "list", **cli)
        audit = http.get(f"/v1/audit?run_id={live['id']}").json()["events"]

    assert _running(aws) == []
    summary = (f"relaunched 0 of 2 terminated instances; 2 unrecoverable (no AMI or snapshot "
               f"taken before {INCIDENT}): {ids[0]}, {ids[1]}")
    reason = f"not relaunched: no available AMI or completed snapshot set taken before {INCIDENT}"
    # The API: succeeded as a lifecycle, partial as an outcome, every instance named with why.
    assert (live["status"], live["outcome"]) == ("succeeded", "partial"), live
    assert live["left_undone"] == [
        {"step": "relaunch", "target": ids[0], "reason": reason},
        {"step": "relaunch", "target": ids[1], "reason": reason},
    ]
    steps = {s["step_id"]: s for s in live["steps"]}
    assert steps["relaunch"]["status"] == "succeeded"
    assert steps["relaunch"]["output"]["summary"] == summary
    assert steps["after-relaunch"]["output"] == {"message": summary}  # its dependents ran
    # The dry run plans nothing and says the same.
    assert (dry["status"], dry["outcome"], dry["mode"]) == ("succeeded", "partial", "dry_run")
    assert dry["left_undone"] == live["left_undone"]
    assert [s["output"].get("planned") for s in dry["steps"] if s["step_id"] == "relaunch"] == [
        []]
    # riposte runs show and runs list.
    lines = shown.splitlines()
    assert lines[0] == f"run {live['id']}: partial (playbook recover, live)"
    assert "left undone (2):" in lines
    flat = " ".join(shown.split())
    assert f"relaunch: {ids[0]}: {reason}" in flat and f"relaunch: {ids[1]}: {reason}" in flat
    assert "  relaunch: aws.ec2.relaunch_instances succeeded, left 2 undone (attempts 1)" in lines
    [row] = [line.split() for line in listed.splitlines() if line.startswith(live["id"])]
    assert (row[1], row[2], row[-1]) == ("partial", "recover", "2")
    # The audit log's last word on the run.
    [ended] = [e for e in audit if e["verb"] == "run.succeeded"]
    assert ended["details"]["outcome"] == "partial"
    assert [u["target"] for u in ended["details"]["left_undone"]] == ids


def test_riposte_plan_says_the_run_would_end_partial_and_what_it_would_leave_undone(
    aws: AwsSandbox, tmp_path: Path
) -> None:
    ids = _terminated_with_backups_after_the_incident(aws)
    book = tmp_path / "recover.yml"
    book.write_text(RECOVER.format(ids=json.dumps(ids), incident=INCIDENT), encoding="utf-8")
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps({"title": "instances terminated", "severity": 70}))

    out = _riposte("plan", str(book), str(alert), RIPOSTE_AWS_ENDPOINT_URL=aws.url,
                   RIPOSTE_AWS_REGION=aws.settings.aws_region)

    reason = f"not relaunched: no available AMI or completed snapshot set taken before {INCIDENT}"
    assert "1. relaunch [aws.ec2.relaunch_instances]: would run" in out
    assert "   planned calls: none" in out
    for instance_id in ids:
        assert f"   would leave undone: {instance_id}: {reason}" in out
    assert out.splitlines()[-1] == "result: the run would end partial (succeeded, 2 left undone)"
    assert _running(aws) == []
