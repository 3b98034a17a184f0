"""``riposte runs show`` as a user runs it: a subprocess talking HTTP to a real server.

The server is the real app (uvicorn on a socket, one in-process worker) on a migrated SQLite
database, running the investigation playbook of tests/e2e/test_runs_investigation.py; the CLI
knows only RIPOSTE_API_URL and the token in RIPOSTE_TOKEN.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
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
from tests.aws_sandbox import OWN_ACCOUNT, AwsSandbox
from tests.e2e.test_runs_investigation import ACCOUNTS, ALERT, INVESTIGATE, OWNER
from tests.integration.test_rollback import CONTAIN
from tests.live_server import serving, webhook_receiver

WAIT_SECONDS = 20.0


@dataclass(frozen=True)
class Live:
    """A running server, its URL and its tokens."""

    url: str
    tokens: dict[str, str]

    def finished_run(self, **alert: Any) -> str:
        """Post an alert that starts the investigation; return the run id once it succeeded."""
        headers = {"Authorization": f"Bearer {self.tokens['sensor']}"}
        answer = httpx.post(f"{self.url}/v1/alerts", json={**ALERT, **alert}, headers=headers,
                            timeout=10)
        assert answer.status_code == 202, answer.text
        [run_id] = answer.json()["run_ids"]
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            run = httpx.get(f"{self.url}/v1/runs/{run_id}", timeout=10, headers={
                "Authorization": f"Bearer {self.tokens['alice']}"}).json()
            if run["status"] == "succeeded":
                return str(run_id)
            assert run["status"] in ("queued", "running"), run
            assert time.monotonic() < deadline, f"run {run_id} is still {run['status']}"
            time.sleep(0.05)

    def show(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``riposte runs show ARGS`` with only the API's URL and a responder's token."""
        return self.runs("show", *args)

    def runs(
        self, *args: str, who: str = "alice", answer: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``riposte runs ARGS`` as ``who``, typing ``answer`` if it asks."""
        return self.cli("runs", *args, who=who, answer=answer)

    def cli(
        self, *args: str, who: str = "alice", answer: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``riposte ARGS`` with only the API's URL and ``who``'s token."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RIPOSTE_")}
        env.update(RIPOSTE_API_URL=self.url, RIPOSTE_TOKEN=self.tokens[who])
        result = subprocess.run([sys.executable, "-m", "riposte", *args], input=answer,
                                capture_output=True, text=True, env=env, timeout=120,
                                check=False)
        printed = result.stdout + result.stderr
        assert "Traceback" not in printed, result.stderr
        assert not any(token in printed for token in self.tokens.values()), "a token was printed"
        return result


@pytest.fixture
def live(sqlite_url: str, tmp_path: Path) -> Iterator[Live]:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "investigate.yml").write_text(INVESTIGATE, encoding="utf-8")
    engine = make_engine(sqlite_url)
    with make_sessionmaker(engine).begin() as session:
        tokens = {name: create_token(session=session, name=name, role=role)
                  for name, role in [("sensor", "ingest"), ("alice", "responder"),
                                     ("bob", "responder")]}
    engine.dispose()
    settings = Settings(database_url=sqlite_url, playbook_dir=playbooks, accounts=ACCOUNTS,
                        worker_poll_seconds=0.5, lease_seconds=30.0)
    with serving(create_app(settings, in_process_workers=1)) as url:
        yield Live(url=url, tokens=tokens)


def test_show_prints_the_verdict_findings_open_questions_narrative_and_recommendation(
    live: Live,
) -> None:
    run_id = live.finished_run()

    shown = live.show(run_id)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert out.splitlines()[0] == f"run {run_id}: succeeded (playbook investigate, live)"
    assert "verdict: unusual, severity CRITICAL, principal user Roboman1" in out
    assert "  reasons: event_time.off_hours, principal.mfa" in out
    flat = " ".join(out.split())  # long answers are wrapped at 100 columns
    assert "[event_time.off_hours] Is the activity occurring off-hours for this principal? " \
           "→ Yes: 2020-11-06 03:21:39 UTC is outside the usual working hours" in flat
    assert "(confidence high, unusual)" in flat
    assert "evidence: event_time=2020-11-06T03:21:39Z, hour=3" in flat
    assert "usual_window=09:00-17:00 UTC" in flat
    assert "[source_ip.reputation] What does threat intelligence (OSINT) say about this IP? " \
           "why not answered: Riposte has no threat-intelligence feed" in flat
    narrative = out.split("narrative:\n", 1)[1].split("\nrecommendation:", 1)[0]
    assert " ".join(narrative.split()).startswith(
        "On 6 November 2020 at 03:21:39 UTC, AWS CloudTrail alerted to the user Roboman1")
    recommendation = out.split("recommendation:\n", 1)[1].split("\nsteps:", 1)[0]
    assert recommendation.startswith("  - We recommend temporarily disabling the user Roboman1")
    assert OWNER in recommendation
    assert "  assess: investigation.assess succeeded (attempts 1)" in out
    assert "  narrate: investigation.narrate succeeded (attempts 1)" in out
    for line in out.splitlines():
        assert len(line) <= 100 or " " not in line.strip(), line


def test_show_json_prints_the_run_as_the_api_answers_it(live: Live) -> None:
    run_id = live.finished_run()

    shown = live.show(run_id, "--json")
    assert shown.returncode == 0, shown.stderr
    run = json.loads(shown.stdout)
    assert run["id"] == run_id
    assert run["findings"] == run["vars"]["findings"] and run["findings"]
    assert run["narrative"] == run["vars"]["narrative"]


def test_alert_data_in_findings_cannot_drive_the_terminal(live: Live) -> None:
    evil = "Robo\x1b[2J\x1b]0;pwned\x07man\u202e1"
    run_id = live.finished_run(principal={**ALERT["principal"], "name": evil})

    shown = live.show(run_id)
    assert shown.returncode == 0, shown.stderr
    for char in ("\x1b", "\x07", "\u202e"):
        assert char not in shown.stdout
    assert "Robo[2J]0;pwnedman1" in shown.stdout  # the findings were cleaned by the assessment


def test_an_unknown_run_is_one_line_and_exit_1(live: Live) -> None:
    shown = live.show("no-such-run")

    assert shown.returncode == 1
    assert shown.stdout == ""
    assert shown.stderr.startswith("error: 404 ") and shown.stderr.count("\n") == 1


RUN_ROW = r"{id}\s+{outcome}\s+investigate\s+live\s+\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\s+.+\s+0"


def test_list_prints_a_table_newest_first_and_filters_like_the_api(live: Live) -> None:
    first = live.finished_run()
    second = live.finished_run(title="TerminateInstances by Roboman1, again")
    first_alert = httpx.get(f"{live.url}/v1/runs/{first}", timeout=10, headers={
        "Authorization": f"Bearer {live.tokens['alice']}"}).json()["alert_id"]

    listed = live.runs("list")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "OUTCOME", "PLAYBOOK", "MODE", "CREATED", "(UTC)", "TOOK",
                              "LEFT", "UNDONE"]
    assert [row.split()[0] for row in rows] == [second, first]
    assert re.fullmatch(RUN_ROW.format(id=second, outcome="succeeded"), rows[0]), rows[0]
    assert listed.stderr == ""

    only = {
        ("--status", "succeeded", "--playbook", "investigate", "--since", "1h"): [second, first],
        ("--alert", first_alert): [first],
        ("--principal", "roboman1", "--until", "2000-01-01"): [],
        ("--status", "failed"): [],
    }
    for filters, expected in only.items():
        filtered = live.runs("list", *filters)
        assert filtered.returncode == 0, filtered.stderr
        if expected:
            assert [row.split()[0] for row in filtered.stdout.splitlines()[1:]] == expected
        else:
            assert filtered.stdout == "no run matches\n", filters

    one = live.runs("list", "--limit", "1")
    assert [row.split()[0] for row in one.stdout.splitlines()[1:]] == [second]
    assert one.stderr.startswith("1 run shown, more exist: --limit 2, or --until 20"), one.stderr


def test_list_json_is_the_apis_runs_and_a_link_to_the_rest(live: Live) -> None:
    first = live.finished_run()
    second = live.finished_run()

    listed = live.runs("list", "--json")
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert set(document) == {"runs", "next"} and document["next"] is None
    assert [run["id"] for run in document["runs"]] == [second, first]
    assert {(run["status"], run["playbook"], run["mode"]) for run in document["runs"]} == {
        ("succeeded", "investigate", "live")}

    one = json.loads(live.runs("list", "--json", "--limit", "1").stdout)
    assert [run["id"] for run in one["runs"]] == [second]


def test_list_pages_through_the_api_up_to_the_limit(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pages of one run, the list follows the API's pages and stops at --limit."""
    from typer.testing import CliRunner

    from core.settings import get_settings
    from riposte import api_client
    from riposte.cli import app

    ids = [live.finished_run() for _ in range(3)][::-1]
    monkeypatch.setattr(api_client, "PAGE_SIZE", 1)
    for name in [name for name in os.environ if name.startswith("RIPOSTE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RIPOSTE_API_URL", live.url)
    monkeypatch.setenv("RIPOSTE_TOKEN", live.tokens["alice"])
    get_settings.cache_clear()
    try:
        every = CliRunner().invoke(app, ["runs", "list", "--limit", "5"])
        two = CliRunner().invoke(app, ["runs", "list", "--json", "--limit", "2"])
    finally:
        get_settings.cache_clear()
    assert every.exit_code == 0, every.output
    assert [row.split()[0] for row in every.stdout.splitlines()[1:]] == ids
    assert [run["id"] for run in json.loads(two.stdout)["runs"]] == ids[:2]


def test_list_refuses_a_time_it_cannot_read_and_a_status_that_does_not_exist(
    live: Live,
) -> None:
    for args, said in [
        (("--since", "yesterday"), "'yesterday' is neither a time ago (30m, 2h, 7d) nor an ISO "
                                   "8601 time"),
        (("--status", "done"), "'done' is not one of"),
    ]:
        refused = live.runs("list", *args)
        assert refused.returncode == 2, refused.stdout
        assert refused.stdout == ""
        assert said in " ".join(refused.stderr.replace("│", " ").split()), refused.stderr


def test_a_run_that_changed_nothing_is_not_rolled_back(live: Live) -> None:
    run_id = live.finished_run()

    refused = live.runs("rollback", run_id, "--yes")
    assert refused.returncode == 1
    assert refused.stdout == f"run {run_id} changed nothing\n"
    assert refused.stderr == (
        f"error: run {run_id} has nothing that can be undone; nothing was asked\n")
    assert [run["id"] for run in json.loads(live.runs("list", "--json").stdout)["runs"]] == [
        run_id]



@pytest.fixture
def acting(sqlite_url: str, tmp_path: Path, aws: AwsSandbox) -> Iterator[Live]:
    """A server whose worker acts on the moto server, with a playbook that revokes keys."""
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    engine = make_engine(sqlite_url)
    with make_sessionmaker(engine).begin() as session:
        tokens = {name: create_token(session=session, name=name, role=role)
                  for name, role in [("sensor", "ingest"), ("alice", "responder"),
                                     ("bob", "responder")]}
    engine.dispose()
    settings = aws.settings.model_copy(update={
        "database_url": sqlite_url, "playbook_dir": playbooks, "worker_poll_seconds": 0.5,
        "lease_seconds": 30.0})
    with webhook_receiver() as (hook, _received):
        (playbooks / "contain.yml").write_text(CONTAIN.replace("{url}", hook), encoding="utf-8")
        with serving(create_app(settings, in_process_workers=1)) as url:
            yield Live(url=url, tokens=tokens)


def _keys(aws: AwsSandbox) -> dict[str, str]:
    listed = aws.client("iam").list_access_keys(UserName="mallory")["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in listed}


def _wait(live: Live, run_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        run: dict[str, Any] = httpx.get(f"{live.url}/v1/runs/{run_id}", timeout=10, headers={
            "Authorization": f"Bearer {live.tokens['alice']}"}).json()
        if run["status"] == status:
            return run
        assert time.monotonic() < deadline, f"run {run_id} is {run['status']}, not {status}"
        time.sleep(0.05)


def test_rollback_shows_what_it_undoes_asks_and_once_approved_undoes_it_in_aws(
    acting: Live, aws: AwsSandbox
) -> None:
    iam = aws.client("iam")
    iam.create_user(UserName="mallory")
    key = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    alice = {"Authorization": f"Bearer {acting.tokens['alice']}"}
    alert = httpx.post(f"{acting.url}/v1/alerts", timeout=10, json={
        "title": "keys used from Tor", "severity": 50, "account": OWN_ACCOUNT,
        "principal": {"type": "IAMUser", "name": "mallory"}},
        headers={"Authorization": f"Bearer {acting.tokens['sensor']}"}).json()
    run_id = httpx.post(f"{acting.url}/v1/runs", timeout=10, headers=alice, json={
        "alert_id": alert["alert_id"], "playbook": "contain"}).json()["id"]
    _wait(acting, run_id, "succeeded")
    assert _keys(aws) == {key: "Inactive"}

    declined = acting.runs("rollback", run_id, answer="n\n")
    assert declined.returncode == 1
    preview = declined.stdout.splitlines()
    assert preview[0] == (f"run {run_id} (contain, succeeded) made 2 changes; a rollback "
                          "would, newest first:")
    assert preview[1] == "  keep   tell (notify.webhook): notify.webhook cannot be undone"
    assert preview[2].startswith("  undo   revoke (aws.iam.revoke_access_keys): {")
    assert key in preview[2]
    assert preview[3].startswith(f"Ask for the rollback of run {run_id} (1 change to undo)?")
    assert declined.stderr == "error: nothing was asked\n"
    assert [r["id"] for r in httpx.get(f"{acting.url}/v1/runs", headers=alice,
                                       timeout=10).json()["runs"]] == [run_id]

    asked = acting.runs("rollback", run_id, "--yes")
    assert asked.returncode == 0, asked.stderr
    said = re.search(rf"^rollback run (\S+) asked: it undoes run {run_id} once another "
                     r"responder or admin approves its plan; it is queued$", asked.stdout, re.M)
    assert said, asked.stdout
    rollback = _wait(acting, said[1], "waiting_approval")
    assert _keys(aws) == {key: "Inactive"}, "nothing is undone before the approval"

    [request] = rollback["approvals"]
    shown = acting.cli("approvals", "show", request["id"], who="bob")
    assert shown.returncode == 0, shown.stderr
    plan = shown.stdout.split("plan: ", 1)[1].split("\ndecisions", 1)[0].splitlines()
    assert plan[0] == "1 step, 2 calls (every parameter: --json)"
    assert plan[1] == "  step undo (core.rollback): 2 calls"
    assert plan[2:4] == ["    riposte:CannotUndo × 1", "      tell"]
    assert plan[4] == "    iam:UpdateAccessKey × 1"
    assert plan[5:] == ["      user/mallory"]
    mine = acting.cli("approvals", "approve", request["id"], "--reason", "mine")
    assert mine.returncode == 1 and "started run" in mine.stderr
    approved = acting.cli("approvals", "approve", request["id"], "--reason", "false positive",
                          who="bob")
    assert approved.returncode == 0, approved.stderr

    _wait(acting, said[1], "succeeded")
    assert _keys(aws) == {key: "Active"}
    events = httpx.get(f"{acting.url}/v1/audit", params={"run_id": said[1]}, headers=alice,
                       timeout=10).json()["events"]
    approval = [(e["verb"], e["actor"]) for e in events if e["verb"].startswith("approval.")]
    assert [verb for verb, _ in approval] == [
        "approval.requested", "approval.refused", "approval.approve", "approval.approved"]
    assert approval[1:] == [("approval.refused", "alice"), ("approval.approve", "bob"),
                            ("approval.approved", "bob")]
