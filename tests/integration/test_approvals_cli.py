"""``riposte approvals`` as a user runs it: a subprocess talking HTTP to a real server.

The server is the real app (uvicorn on a socket, one in-process worker) on a migrated SQLite
database; the CLI knows only RIPOSTE_API_URL and the token in RIPOSTE_TOKEN.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from core.settings import Settings
from engine.store.db import make_engine, make_sessionmaker
from engine.store.tokens import create_token
from tests.e2e.test_approvals import CONTAIN_USER
from tests.integration.test_cli import riposte
from tests.live_server import free_port, serving

WAIT_SECONDS = 20.0


@dataclass(frozen=True)
class Live:
    """A running server, its URL and one token per person."""

    url: str
    tokens: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, path: str, who: str = "carol") -> Any:
        response = httpx.get(self.url + path, headers=self.headers(who), timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any], who: str) -> Any:
        response = httpx.post(self.url + path, json=body, headers=self.headers(who), timeout=10)
        assert response.status_code < 300, response.text
        return response.json()

    def cli(self, *args: str, who: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``riposte approvals ARGS`` with RIPOSTE_TOKEN set to ``who``'s token."""
        if who is None:
            result = riposte("approvals", *args, RIPOSTE_API_URL=self.url)
        else:
            result = riposte("approvals", *args, RIPOSTE_API_URL=self.url,
                             RIPOSTE_TOKEN=self.tokens[who])
        printed = result.stdout + result.stderr
        assert "Traceback" not in printed, result.stderr
        assert not any(token in printed for token in self.tokens.values()), "a token was printed"
        return result

    def wait_for_run(self, run_id: str, *statuses: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            run: dict[str, Any] = self.get(f"/v1/runs/{run_id}")
            if run["status"] in statuses:
                return run
            assert time.monotonic() < deadline, f"run {run_id} is {run['status']}, not {statuses}"
            time.sleep(0.05)

    def waiting_run(
        self, *, started_by: str | None = None, user: str = "mallory"
    ) -> tuple[str, str]:
        """Post an alert (or start a run by hand as ``started_by``); return (run, request) ids
        once the run waits for approval."""
        alert = self.post("/v1/alerts", {
            "title": "keys used from Tor", "severity": 50, "kind": "iam" if not started_by
            else "other", "principal": {"type": "IAMUser", "name": user},
        }, who="sensor")
        if started_by is None:
            [run_id] = alert["run_ids"]
        else:
            run_id = self.post("/v1/runs", {"alert_id": alert["alert_id"],
                                            "playbook": "contain-user"}, who=started_by)["id"]
        run = self.wait_for_run(run_id, "waiting_approval")
        return run_id, run["approvals"][0]["id"]


@pytest.fixture
def live(sqlite_url: str, tmp_path: Path) -> Iterator[Live]:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "contain-user.yml").write_text(CONTAIN_USER, encoding="utf-8")
    engine = make_engine(sqlite_url)
    with make_sessionmaker(engine).begin() as session:
        tokens = {
            name: create_token(session=session, name=name, role=role)
            for name, role in [("sensor", "ingest"), ("alice", "responder"),
                               ("bob", "responder"), ("carol", "admin")]
        }
    engine.dispose()
    settings = Settings(database_url=sqlite_url, playbook_dir=playbooks,
                        worker_poll_seconds=0.5, lease_seconds=30.0)
    with serving(create_app(settings, in_process_workers=1)) as url:
        yield Live(url=url, tokens=tokens)


def test_approve_shows_the_plan_and_its_hash_and_the_run_continues(live: Live) -> None:
    run_id, request_id = live.waiting_run()
    plan_hash = live.get(f"/v1/approvals/{request_id}")["plan_hash"]

    listed = live.cli("list", who="bob")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["ID", "RUN", "MODE", "STEP", "REQUIRED", "EXPIRES"]
    assert row.split()[:5] == [request_id, run_id, "live", "disable", "1"]
    assert row.endswith(" UTC")

    shown = live.cli("show", request_id, who="bob")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[:3] == [f"approval request {request_id}: pending",
                         f"  run {run_id} (live), step disable",
                         "  1 approval(s) required, 1 still needed"]
    assert re.fullmatch(r"  created \S+ \S+ UTC, expires \S+ \S+ UTC "
                        r"\((\d+ (days?|hours?|minutes?|seconds?)(, | and )?)+ left\)",
                        lines[3]), lines[3]
    assert lines[4:] == [
        "  why: disabling a user locks them out",
        f"plan_hash: {plan_hash}",
        "plan: 1 step, 0 calls (every parameter: --json)",
        '  step disable (core.log): no call; parameters: {"message": "disabling mallory"}',
        "decisions: none yet",
        "who else may decide: any responder or admin token except system (started the run)",
        f"decide: riposte approvals approve {request_id} --plan-hash {plan_hash} --reason '…' "
        "(or reject)",
    ]
    as_json = live.cli("show", request_id, "--json", who="bob")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == live.get(f"/v1/approvals/{request_id}", who="bob")
    listed_json = json.loads(live.cli("list", "--json", who="bob").stdout)
    assert [(a["id"], a["run_id"], a["step_id"]) for a in listed_json["approvals"]] == [
        (request_id, run_id, "disable")]

    approved = live.cli("approve", request_id, "--reason", "confirmed with the manager",
                        "--plan-hash", plan_hash, who="bob")
    assert approved.returncode == 0, approved.stderr
    lines = approved.stdout.splitlines()
    assert lines[0] == f"plan_hash: {plan_hash}"
    assert lines[1].startswith("plan: step disable: core.log with ")
    assert "disabling mallory" in lines[1]
    assert lines[2] == f"approved approval request {request_id}: it is now approved"

    run = live.wait_for_run(run_id, "succeeded")
    assert [(s["step_id"], s["status"]) for s in run["steps"]] == [
        ("enrich", "succeeded"), ("disable", "succeeded"), ("notify", "succeeded")]
    request = live.get(f"/v1/approvals/{request_id}")
    assert [(d["actor"], d["decision"], d["reason"], d["plan_hash"])
            for d in request["decisions"]] == [
        ("bob", "approve", "confirmed with the manager", plan_hash)]
    events = live.get(f"/v1/audit?run_id={run_id}")["events"]
    approval_events = [(e["actor"], e["verb"]) for e in events
                       if e["verb"].startswith("approval.")]
    assert [verb for _, verb in approval_events] == [
        "approval.requested", "approval.approve", "approval.approved"]
    assert approval_events[1:] == [("bob", "approval.approve"), ("bob", "approval.approved")]

    after = live.cli("list", who="bob")
    assert (after.returncode, after.stdout.strip()) == (
        0, "no pending approval request you may decide")


def test_reject_ends_the_run_and_a_second_decision_is_409(live: Live) -> None:
    run_id, request_id = live.waiting_run()

    rejected = live.cli("reject", request_id, "--reason", "false positive: a pentest", who="alice")
    assert rejected.returncode == 0, rejected.stderr
    assert rejected.stdout.splitlines()[-1] == (
        f"rejected approval request {request_id}: it is now rejected")
    run = live.wait_for_run(run_id, "rejected")
    assert [s["step_id"] for s in run["steps"]] == ["enrich"]

    again = live.cli("approve", request_id, "--reason", "changed my mind", who="bob")
    assert again.returncode == 1
    [line] = again.stderr.splitlines()
    assert line == f"error: 409 approval request {request_id} is already rejected"
    assert live.get(f"/v1/approvals/{request_id}")["status"] == "rejected"

    shown = live.cli("show", request_id, who="bob")
    assert shown.returncode == 0, shown.stderr
    assert "alice reject: false positive: a pentest" in shown.stdout
    assert "who else may decide: nobody: the request is rejected" in shown.stdout


def test_the_runs_starter_is_refused_403_and_someone_else_may_approve(live: Live) -> None:
    run_id, request_id = live.waiting_run(started_by="alice")

    mine = live.cli("list", who="alice")
    assert (mine.returncode, mine.stdout.strip()) == (
        0, "no pending approval request you may decide")
    refused = live.cli("approve", request_id, "--reason", "looks fine to me", who="alice")
    assert refused.returncode == 1
    [line] = refused.stderr.splitlines()
    assert line.startswith("error: 403 ") and "'alice' started run" in line, line
    assert live.get(f"/v1/runs/{run_id}")["status"] == "waiting_approval"

    shown = live.cli("show", request_id, who="bob")
    assert "who else may decide: any responder or admin token except alice (started the run)" \
        in shown.stdout
    approved = live.cli("approve", request_id, "--reason", "second pair of eyes", who="bob")
    assert approved.returncode == 0, approved.stderr
    live.wait_for_run(run_id, "succeeded")


def test_a_pinned_plan_hash_that_differs_decides_nothing(live: Live) -> None:
    run_id, request_id = live.waiting_run()
    stale = "0" * 64

    refused = live.cli("approve", request_id, "--reason", "ok", "--plan-hash", stale, who="bob")
    assert refused.returncode == 1
    [line] = refused.stderr.splitlines()
    assert stale in line and "nothing was decided" in line
    assert refused.stdout == ""
    request = live.get(f"/v1/approvals/{request_id}")
    assert (request["status"], request["decisions"]) == ("pending", [])
    assert live.get(f"/v1/runs/{run_id}")["status"] == "waiting_approval"


def test_a_rehearsal_started_from_the_cli_is_marked_in_every_listing_and_show(
    live: Live,
) -> None:
    run_id, live_request = live.waiting_run()
    started = riposte("runs", "rehearse", run_id, RIPOSTE_API_URL=live.url,
                      RIPOSTE_TOKEN=live.tokens["alice"])
    assert started.returncode == 0, started.stderr
    said = re.fullmatch(
        rf"REHEARSAL \(dry run, nothing will change\): run (\S+) rehearses run {run_id} on 1 "
        r"alert\(s\) with playbook contain-user: queued\nFollow it: riposte runs show \1\n",
        started.stdout,
    )
    assert said, started.stdout
    rehearsal_id = said[1]
    rehearsal = live.wait_for_run(rehearsal_id, "waiting_approval")
    assert (rehearsal["mode"], rehearsal["rehearses"]) == ("dry_run", run_id)
    request_id = rehearsal["approvals"][0]["id"]

    listed = live.cli("list", who="bob")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split()[1:4] for line in listed.stdout.splitlines()[1:]}
    assert rows == {request_id: [rehearsal_id, "REHEARSAL", "disable"],
                    live_request: [run_id, "live", "disable"]}
    shown = live.cli("show", request_id, who="bob")
    assert shown.stdout.startswith(
        f"REHEARSAL (dry run, nothing will change): approval request {request_id}: pending\n"
        f"  run {rehearsal_id} (dry_run), step disable\n"), shown.stdout
    runs_listed = riposte("runs", "list", RIPOSTE_API_URL=live.url,
                          RIPOSTE_TOKEN=live.tokens["carol"])
    modes = {line.split()[0]: line for line in runs_listed.stdout.splitlines()[1:]}
    assert "REHEARSAL" in modes[rehearsal_id] and "REHEARSAL" not in modes[run_id]
    runs_shown = riposte("runs", "show", rehearsal_id, RIPOSTE_API_URL=live.url,
                         RIPOSTE_TOKEN=live.tokens["carol"])
    assert runs_shown.stdout.splitlines()[:2] == [
        f"REHEARSAL (dry run, nothing will change): run {rehearsal_id}: waiting_approval "
        "(playbook contain-user, dry_run)",
        f"  alert {rehearsal['alert_id']}, started by alice, rehearsing run {run_id}",
    ]

    # alice asked for the rehearsal: she may not approve it; bob may, and is told what it is.
    assert live.cli("approve", request_id, "--reason", "mine", who="alice").returncode == 1
    approved = live.cli("approve", request_id, "--reason", "rehearse it", who="bob")
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.splitlines()[1].startswith(
        "REHEARSAL (dry run, nothing will change): plan: step disable: core.log with ")
    assert live.wait_for_run(rehearsal_id, "succeeded")["mode"] == "dry_run"
    assert live.get(f"/v1/runs/{run_id}")["status"] == "waiting_approval"


def test_alert_data_in_a_plan_cannot_drive_the_terminal(live: Live) -> None:
    # An attacker names the user; the name reaches the plan the approver reads.
    _, request_id = live.waiting_run(user="mallory\u202e\x1b[2J\x07")
    shown = live.cli("show", request_id, who="bob")
    deciding = live.cli("reject", request_id, "--reason", "not this one", who="bob")
    for result in (shown, deciding):
        assert result.returncode == 0, result.stderr
        assert not {"\x1b", "\u202e", "\x07"} & set(result.stdout), result.stdout
    assert "mallory" in deciding.stdout.splitlines()[1]


def test_api_refusals_are_one_line_and_exit_1(live: Live) -> None:
    _, request_id = live.waiting_run()
    cases = [
        (live.cli("list"), r"^error: no API token: set RIPOSTE_TOKEN"),
        (live.cli("show", "no-such-id", who="bob"),
         r"^error: 404 no approval request 'no-such-id'$"),
        (live.cli("approve", request_id, "--reason", "", who="bob"),
         r"^error: 422 invalid request: body\.reason: "),
        (live.cli("list", who="sensor"), r"^error: 403 token 'sensor': role 'ingest' may not"),
    ]
    for result, expected in cases:
        assert result.returncode == 1, result.stdout
        [line] = result.stderr.splitlines()
        assert re.search(expected, line), line
    unknown = riposte("approvals", "list", RIPOSTE_API_URL=live.url,
                      RIPOSTE_TOKEN="rip_not-a-token")
    assert unknown.returncode == 1
    [line] = unknown.stderr.splitlines()
    assert line.startswith("error: 401 authentication required: token unknown"), line
    assert "rip_not-a-token" not in unknown.stdout + unknown.stderr
    assert live.get(f"/v1/approvals/{request_id}")["decisions"] == []


def test_an_unreachable_api_is_one_clear_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = riposte("approvals", "list", RIPOSTE_API_URL=url, RIPOSTE_TOKEN="rip_secret")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: cannot reach the Riposte API at {url} ("), line
    assert "rip_secret" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_help_never_shows_the_token() -> None:
    result = riposte("approvals", "approve", "--help", RIPOSTE_TOKEN="rip_do-not-print-me")
    assert result.returncode == 0, result.stderr
    assert "RIPOSTE_TOKEN" in result.stdout
    assert "rip_do-not-print-me" not in result.stdout + result.stderr


def test_a_run_that_has_not_ended_is_not_rolled_back(live: Live) -> None:
    run_id, _ = live.waiting_run()

    refused = riposte("runs", "rollback", run_id, "--yes", RIPOSTE_API_URL=live.url,
                      RIPOSTE_TOKEN=live.tokens["bob"])
    assert refused.returncode == 1
    assert (refused.stdout, refused.stderr) == ("", (
        f"error: run {run_id} is waiting_approval; cancel it (or let it end) before rolling it "
        "back; nothing was asked\n"))
    assert live.get(f"/v1/runs/{run_id}")["status"] == "waiting_approval"
    assert [r["id"] for r in live.get("/v1/runs")["runs"]] == [run_id]
