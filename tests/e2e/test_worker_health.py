"""Health that tells the truth: /readyz follows the in-process workers, GET /v1/workers shows
every worker's heartbeat, and a run that no live worker is there to take is reported."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as SessionMaker

from core.settings import Settings
from engine import wakeup
from engine.store import workers
from engine.store.types import utcnow
from engine.worker import Worker

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import MakeClient, PostAlert, Tokens, WaitForRun

QUICK = """\
name: quick
trigger:
  source: [generic]
  kind: [quick]
steps:
  - {id: hello, action: core.log, with: {message: hello}}
"""


class Killed(BaseException):
    """Ends a worker's loop the way nothing it catches can (a bug, a thread torn down)."""


@pytest.fixture(autouse=True)
def _playbooks(write_playbook: Callable[[str, str], Path]) -> None:
    write_playbook("quick.yml", QUICK)


def quick(settings: Settings, **overrides: Any) -> Settings:
    """The settings with heartbeats every 0.1 s and silence after 0.5 s."""
    values = {"worker_heartbeat_seconds": 0.1, "worker_silent_after": 0.5} | overrides
    return settings.model_copy(update=values)


def eventually(
    client: TestClient, status: int, saying: str = "", seconds: float = 10.0
) -> dict[str, Any]:
    """Poll /readyz until it answers ``status`` (with a message ``saying``); return its body."""
    deadline = time.monotonic() + seconds
    while True:
        answer = client.get("/readyz")
        if answer.status_code == status and saying in answer.json().get("detail", ""):
            body: dict[str, Any] = answer.json()
            return body
        assert time.monotonic() < deadline, f"/readyz still {answer.status_code}: {answer.text}"
        time.sleep(0.05)


def unattended_counted() -> float:
    return REGISTRY.get_sample_value("riposte_runs_unattended_total") or 0.0


def test_readyz_turns_503_when_the_in_process_worker_dies(
    make_client: MakeClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with make_client(quick(settings), workers=1) as client:
        assert eventually(client, 200) == {"status": "ok"}

        def killed(_self: Worker) -> None:
            raise Killed("injected by the test")

        monkeypatch.setattr(Worker, "housekeeping", killed)
        wakeup.signal()  # the idle worker wakes, keeps house, and dies
        # (Silent for a moment, perhaps, while its thread ends: then dead.)
        body = eventually(client, 503, saying="is dead")
        assert client.get("/healthz").status_code == 200  # the process itself is up
    assert body["code"] == "unavailable"
    assert body["detail"].startswith("in-process worker ")
    assert body["detail"].endswith(":api-1 is dead: Killed: injected by the test; restart "
                                    "riposte serve")


def test_readyz_turns_503_when_the_in_process_worker_falls_silent(
    make_client: MakeClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with make_client(quick(settings), workers=1) as client:
        assert eventually(client, 200) == {"status": "ok"}

        def unreachable(_session: Session, _beat: workers.Beat) -> None:
            raise OperationalError("UPDATE worker_heartbeats", {}, Exception("connection reset"))

        monkeypatch.setattr(workers, "beat", unreachable)
        body = eventually(client, 503)
        monkeypatch.undo()
        assert eventually(client, 200) == {"status": "ok"}  # heard from again: ready again
    assert "has recorded no heartbeat for" in body["detail"]
    assert "RIPOSTE_WORKER_SILENT_AFTER is 0.5s" in body["detail"]


def test_workers_are_listed_to_admins_with_their_heartbeat(
    make_client: MakeClient, settings: Settings, tokens: Tokens, post_alert: PostAlert,
    wait_for_run: WaitForRun,
) -> None:
    with make_client(quick(settings), workers=1) as client:
        [run_id] = post_alert(client, tokens.as_ingest, kind="quick")["run_ids"]
        wait_for_run(client, run_id, tokens.as_responder, "succeeded")
        deadline = time.monotonic() + 10
        while True:
            answer = client.get("/v1/workers", headers=tokens.as_admin)
            assert answer.status_code == 200, answer.text
            listed = answer.json()
            if listed["workers"] and listed["workers"][0]["runs_claimed"] == 1:
                break
            assert time.monotonic() < deadline, listed
            time.sleep(0.05)
        assert client.get("/v1/workers", headers=tokens.as_responder).status_code == 403
        assert client.get("/v1/workers").status_code == 401
    assert listed["live"] == 1 and listed["silent_after"] == 0.5
    [worker] = listed["workers"]
    assert worker["id"].endswith(":api-1")
    assert (worker["state"], worker["pid"], worker["errors"]) == ("live", os.getpid(), 0)
    assert worker["stopped_at"] is None and worker["seconds_since_seen"] < 0.5


def test_a_run_nobody_takes_is_logged_and_counted_once_when_no_worker_is_live(
    make_client: MakeClient, settings: Settings, tokens: Tokens, post_alert: PostAlert,
    sessionmaker: SessionMaker[Session], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="riposte.worker")
    before = unattended_counted()
    with make_client(quick(settings, run_unattended_after=0.3), workers=0) as client:
        [stranded] = post_alert(client, tokens.as_ingest, kind="quick")["run_ids"]
        deadline = time.monotonic() + 10
        while unattended_counted() < before + 1:
            assert time.monotonic() < deadline, "the run was not reported"
            time.sleep(0.05)
        # A worker is live elsewhere (it beats every 0.1 s, as a live one does, however slow
        # the machine): a run it has yet to take is not news, through several checks.
        started = utcnow()

        def beat_elsewhere() -> None:
            with sessionmaker.begin() as session:
                workers.beat(session, workers.Beat(
                    worker_id="elsewhere:1", host="elsewhere", pid=1, started_at=started,
                    runs_claimed=0, errors=0, run_id=None))

        beat_elsewhere()
        post_alert(client, tokens.as_ingest, kind="quick")
        for _ in range(5):  # at least four checks of the watch (every 0.1 s)
            time.sleep(0.1)
            beat_elsewhere()
    assert unattended_counted() == before + 1  # reported once, and only the first run
    said = [r for r in caplog.records if "no worker is live" in r.getMessage()]
    assert len(said) == 1 and stranded in said[0].getMessage()
    assert said[0].getMessage().startswith(f"run {stranded} has been queued and runnable for ")
