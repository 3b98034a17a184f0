"""``riposte runs show`` as a user runs it: a subprocess talking HTTP to a real server.

The server is the real app (uvicorn on a socket, one in-process worker) on a migrated SQLite
database, running the investigation playbook of tests/e2e/test_runs_investigation.py; the CLI
knows only RIPOSTE_API_URL and the token in RIPOSTE_TOKEN.
"""

from __future__ import annotations

import json
import os
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
from tests.e2e.test_runs_investigation import ACCOUNTS, ALERT, INVESTIGATE, OWNER
from tests.live_server import serving

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
        env = {k: v for k, v in os.environ.items() if not k.startswith("RIPOSTE_")}
        env.update(RIPOSTE_API_URL=self.url, RIPOSTE_TOKEN=self.tokens["alice"])
        result = subprocess.run([sys.executable, "-m", "riposte", "runs", "show", *args],
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
                  for name, role in [("sensor", "ingest"), ("alice", "responder")]}
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
