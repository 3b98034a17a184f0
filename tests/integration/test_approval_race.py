"""Twenty approvers decide at the same moment, from twenty processes, through two API servers on
one PostgreSQL: exactly one outcome, every other decision answered 409, never a 5xx."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import ApprovalDecision, ApprovalRequest, AuditEvent, Run, StepRecord
from engine.store.tokens import create_token
from tests.integration.test_cli import ROOT, cli_env
from tests.live_server import free_port

DECIDERS = 20
WAIT_SECONDS = 60.0

RACE = """\
name: race
trigger:
  source: [generic]
  kind: [race]
steps:
  - id: act
    action: core.log
    with:
      message: "acting on {{{{ alert.title }}}}"
    approval:
      required: {required}
  - id: after
    action: core.log
    with:
      message: after
"""

# One decider: open its connection, say it is ready, wait for the start signal on stdin, post
# its decision, print the answer. The token comes in the environment, never on the command line.
DECIDER = """\
import json, os, sys
import httpx
url, request_id, decision, plan_hash = sys.argv[1:5]
headers = {"Authorization": "Bearer " + os.environ["DECIDER_TOKEN"]}
with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
    http.get("/healthz").raise_for_status()
    print("ready", flush=True)
    sys.stdin.readline()
    response = http.post(f"/v1/approvals/{request_id}/decision",
                         json={"decision": decision, "reason": "race: " + decision,
                               "plan_hash": plan_hash})
    try:
        body = response.json()
    except ValueError:
        body = response.text
    print(json.dumps({"status": response.status_code, "body": body}), flush=True)
"""


@contextmanager
def api_server(db_url: str, playbooks: Path, logs: Path) -> Iterator[str]:
    """Run `riposte serve` (with one in-process worker) as a subprocess; yield its URL."""
    port = free_port()
    env = cli_env(db_url, RIPOSTE_PLAYBOOK_DIR=str(playbooks), RIPOSTE_WORKER_POLL_SECONDS="0.5",
                  RIPOSTE_LOG_LEVEL="WARNING")
    with logs.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "riposte", "serve", "--port", str(port), "--workers", "1"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            while not _ready(url):
                assert server.poll() is None, f"server exited: {logs.read_text()}"
                assert time.monotonic() < deadline, f"server not ready: {logs.read_text()}"
                time.sleep(0.1)
            yield url
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def decide_all_at_once(
    servers: list[str], tokens: dict[str, str], request_id: str, plan_hash: str,
    decisions: dict[str, str],
) -> dict[str, dict[str, Any]]:
    """Start one process per decider, release them together, return each one's answer."""
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for index, (name, decision) in enumerate(decisions.items()):
            procs[name] = subprocess.Popen(
                [sys.executable, "-c", DECIDER, servers[index % len(servers)], request_id,
                 decision, plan_hash],
                cwd=ROOT, env={**cli_env(), "DECIDER_TOKEN": tokens[name]},
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
        for name, proc in procs.items():
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", f"{name}: {proc.stderr}"
        for proc in procs.values():  # the start signal: every decider is blocked on this line
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        answers = {}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, f"{name}: {err}"
            answers[name] = json.loads(out)
        return answers
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def wait_for_status(url: str, token: str, run_id: str, *statuses: str) -> str:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        run = httpx.get(f"{url}/v1/runs/{run_id}", headers={"Authorization": f"Bearer {token}"},
                        timeout=10).json()
        if run["status"] in statuses:
            return str(run["status"])
        assert time.monotonic() < deadline, f"run {run_id} is {run['status']}, not {statuses}"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("required", "mix"),
    [(1, "mixed"), (2, "mixed"), (2, "all approve")],
    ids=["required-1-mixed", "required-2-mixed", "required-2-all-approve"],
)
def test_twenty_concurrent_decisions_on_two_servers_settle_once(
    pg_url: str, tmp_path: Path, required: int, mix: str
) -> None:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "race.yml").write_text(RACE.format(required=required), encoding="utf-8")
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    names = [f"responder-{i:02d}" for i in range(DECIDERS)]
    with sessions.begin() as session:
        tokens = {name: create_token(session=session, name=name, role="responder")
                  for name in names}
        sensor = create_token(session=session, name="sensor", role="ingest")
    # Mixed: pairs alternate, so both servers get approvals and rejections. All approving is
    # the hardest case for the quorum count: nothing ends the request early.
    sent = {name: "approve" if mix == "all approve" or (index // 2) % 2 == 0 else "reject"
            for index, name in enumerate(names)}

    with ExitStack() as stack:
        servers = [stack.enter_context(api_server(pg_url, playbooks, tmp_path / f"api-{n}.log"))
                   for n in ("a", "b")]
        alert = httpx.post(f"{servers[0]}/v1/alerts",
                           json={"title": "race", "severity": 50, "kind": "race"},
                           headers={"Authorization": f"Bearer {sensor}"}, timeout=10)
        assert alert.status_code == 202, alert.text
        [run_id] = alert.json()["run_ids"]
        reader = tokens[names[0]]
        wait_for_status(servers[1], reader, run_id, "waiting_approval")
        [request_id] = [a["id"] for a in httpx.get(
            f"{servers[1]}/v1/runs/{run_id}", headers={"Authorization": f"Bearer {reader}"},
            timeout=10).json()["approvals"]]
        plan_hash = httpx.get(f"{servers[0]}/v1/approvals/{request_id}",
                              headers={"Authorization": f"Bearer {reader}"},
                              timeout=10).json()["plan_hash"]

        answers = decide_all_at_once(servers, tokens, request_id, plan_hash, sent)

        statuses = Counter(answer["status"] for answer in answers.values())
        assert set(statuses) <= {200, 409}, answers
        with sessions() as session:
            request = session.get(ApprovalRequest, request_id)
            assert request is not None
            outcome = request.status
        assert outcome in ("approved", "rejected")
        final = wait_for_status(servers[0], reader, run_id,
                                "succeeded" if outcome == "approved" else "rejected")
        time.sleep(1.0)  # long enough for a second, wrong resumption to show in the journal

    with sessions() as session:
        stored = list(session.execute(
            select(ApprovalDecision).where(ApprovalDecision.request_id == request_id)
            .order_by(ApprovalDecision.created_at)).scalars())
        audit = list(session.execute(
            select(AuditEvent).where(AuditEvent.run_id == run_id).order_by(AuditEvent.id)
        ).scalars())
        steps = list(session.execute(
            select(StepRecord).where(StepRecord.run_id == run_id).order_by(StepRecord.id)
        ).scalars())
        run = session.get(Run, run_id)
        assert run is not None
        run_status = run.status
    engine.dispose()

    # The answers: a 200 for each stored decision, a 409 for everyone else.
    accepted = {name: answer["body"] for name, answer in answers.items() if answer["status"] == 200}
    assert {d.actor: d.decision for d in stored} == {name: sent[name] for name in accepted}
    assert all(d.plan_hash == plan_hash for d in stored)
    assert statuses[409] == DECIDERS - len(accepted)
    for name, answer in answers.items():  # each refusal says what it refers to
        if answer["status"] == 409:
            message = answer["body"]["detail"]
            assert request_id in message or run_id in message, (name, answer)
    # Exactly one of the accepted answers settled the request, and it is the stored outcome.
    assert sorted(body["status"] for body in accepted.values()) == sorted(
        [outcome] + ["pending"] * (len(accepted) - 1))
    [settler] = [name for name, body in accepted.items() if body["status"] == outcome]

    # The decisions stored before settling are consistent with the outcome.
    approvals = [d for d in stored if d.decision == "approve"]
    rejections = [d for d in stored if d.decision == "reject"]
    if outcome == "approved":
        assert (len(approvals), rejections) == (required, [])
    else:
        assert len(rejections) == 1 and len(approvals) < required
        assert rejections[0].actor == settler
    if required == 1 or outcome == "approved":
        assert (len(accepted), statuses[409]) == (required, DECIDERS - required)
    if mix == "all approve":
        assert outcome == "approved"

    # The audit log says the same: one row per stored decision, one settling row.
    decided = Counter((e.actor, e.verb) for e in audit
                      if e.verb in ("approval.approve", "approval.reject"))
    assert decided == Counter((d.actor, f"approval.{d.decision}") for d in stored)
    settling = [(e.actor, e.verb) for e in audit
                if e.verb in ("approval.approved", "approval.rejected", "approval.expired")]
    assert settling == [(settler, f"approval.{outcome}")]

    # The run moved on exactly once.
    assert run_status == final
    if outcome == "approved":
        assert [(s.step_id, s.status) for s in steps] == [("act", "succeeded"),
                                                          ("after", "succeeded")]
        assert [e.verb for e in audit if e.verb.startswith("run.")] == [
            "run.queued", "run.succeeded"]
    else:
        assert steps == []
        assert [e.verb for e in audit if e.verb.startswith("run.")] == ["run.queued"]
