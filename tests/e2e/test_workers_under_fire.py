"""Black box: `riposte serve --workers 0` and two `riposte worker` processes on a PostgreSQL of
the test's own, 200 runs, a quarter of them cancelled at random moments (queued, running,
waiting for approval, just approved), and the database stopped for 10 s in the middle.

At the end every run is final (cancelled if its cancel was accepted, else succeeded), the same
two worker processes are still running and live, no step succeeded twice, the audit chain
verifies, and no run is left holding a lease. Everything is driven and read through the HTTP
API except that last check and the tokens, made in the database as `riposte token create` does.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from engine.store.db import make_engine, make_sessionmaker
from engine.store.migrate import upgrade
from engine.store.models import Run, StepRecord
from engine.store.tokens import create_token
from tests.integration.throwaway_postgres import ThrowawayPostgres, throwaway_postgres
from tests.live_server import free_port

ROOT = Path(__file__).resolve().parents[2]
RUNS = 200
OUTAGE_SECONDS = 10.0
FINAL = {"succeeded", "failed", "cancelled", "rejected"}

QUICK = """\
name: quick
trigger: {source: [generic], kind: [quick]}
steps:
  - {id: one, action: core.log, with: {message: one}}
  - {id: nap, action: core.sleep, with: {seconds: 0}}
  - {id: two, action: core.log, with: {message: two}}
"""
SLOW = QUICK.replace("quick", "slow").replace("seconds: 0}", "seconds: 0.5}")
GUARDED = """\
name: guarded
trigger: {source: [generic], kind: [guarded]}
steps:
  - {id: look, action: core.log, with: {message: looking}}
  - id: contain
    action: core.log
    with: {message: containing}
    approval: {reason: a rehearsal of containment}
  - {id: after, action: core.log, with: {message: done}}
"""
STEPS = {"quick": ["one", "nap", "two"], "slow": ["one", "nap", "two"],
         "guarded": ["look", "contain", "after"]}


@dataclass
class Plan:
    """What the test does to one run: nothing, or cancel it at a moment of its life."""

    kind: str  # quick | slow | guarded
    # queued (as soon as its alert is accepted), running (seen running: within its 0.5 s
    # step), waiting (for approval), approved (just approved, before or in its step)
    cancel: str | None = None
    run_id: str | None = None
    cancelled: bool | None = None  # the cancel's answer: 200 True, 409 False


@dataclass
class Tally:
    """What the clients met on the way."""

    answers: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str) -> None:
        with self.lock:
            self.answers[what] += 1


class Api:
    """An HTTP client that retries through the outage (503, refused connections) until the API
    answers something else."""

    def __init__(self, base: str, token: str, tally: Tally) -> None:
        self.http = httpx.Client(base_url=base, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})
        self.tally = tally

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + 120
        while True:
            try:
                answer = self.http.request(method, path, **kwargs)
            except httpx.TransportError:
                self.tally.count("transport error")
            else:
                if answer.status_code != 503:
                    return answer
                self.tally.count("503")
            assert time.monotonic() < deadline, f"{method} {path}: no answer for 2 minutes"
            time.sleep(0.1)


@contextmanager
def process(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "riposte", *command], cwd=ROOT, env=env,
                                stdout=sink, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def wait_until(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out after {seconds}s waiting for {what}"
        time.sleep(0.1)


def answers(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.TransportError:
        return 0


@pytest.fixture
def database() -> Iterator[ThrowawayPostgres]:
    with throwaway_postgres() as server:
        upgrade(server.url)
        yield server


def test_two_workers_outlast_cancels_and_a_database_outage(
    database: ThrowawayPostgres, tmp_path: Path
) -> None:
    started = time.monotonic()
    engine = make_engine(database.url)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        tokens = {role: create_token(session=session, name=f"{role}-token", role=role)
                  for role in ("ingest", "responder", "admin")}
    engine.dispose()
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "quick.yml").write_text(QUICK)
    (playbooks / "slow.yml").write_text(SLOW)
    (playbooks / "guarded.yml").write_text(GUARDED)

    # A quarter cancelled: 12 queued, 13 running, 12 waiting for approval, 13 just approved.
    chance = random.Random(12)
    plans = ([Plan("quick", cancel="queued") for _ in range(12)]
             + [Plan("quick") for _ in range(75)]
             + [Plan("slow", cancel="running") for _ in range(13)]
             + [Plan("guarded", cancel="waiting") for _ in range(12)]
             + [Plan("guarded", cancel="approved") for _ in range(13)]
             + [Plan("guarded") for _ in range(75)])
    chance.shuffle(plans)
    by_run: dict[str, Plan] = {}

    port, metrics_ports = free_port(), {"w1": free_port(), "w2": free_port()}
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "RIPOSTE_DATABASE_URL": database.url,
        "RIPOSTE_PLAYBOOK_DIR": str(playbooks),
        "RIPOSTE_LEASE_SECONDS": "5",
        "RIPOSTE_WORKER_POLL_SECONDS": "1",
        "RIPOSTE_WORKER_HEARTBEAT_SECONDS": "0.5",
        "RIPOSTE_WORKER_SILENT_AFTER": "3",
        "RIPOSTE_LOG_LEVEL": "INFO",
    }
    tally = Tally()
    done = threading.Event()
    lock = threading.Lock()
    posted = 0
    worker_health_during_outage: Counter[int] = Counter()
    marks: dict[str, float] = {}

    with (
        process(["serve", "--workers", "0", "--port", str(port)], env, tmp_path / "api.log"),
        process(["worker", "--id", "w1"], env | {"RIPOSTE_WORKER_METRICS_PORT":
                                                  str(metrics_ports["w1"])},
                tmp_path / "w1.log") as w1,
        process(["worker", "--id", "w2"], env | {"RIPOSTE_WORKER_METRICS_PORT":
                                                  str(metrics_ports["w2"])},
                tmp_path / "w2.log") as w2,
    ):
        pids = {"w1": w1.pid, "w2": w2.pid}
        wait_until(lambda: answers(f"{base}/readyz") == 200, 30, "the API")
        for name, metrics_port in metrics_ports.items():
            wait_until(lambda p=metrics_port: answers(f"http://127.0.0.1:{p}/healthz") == 200,
                       30, f"worker {name}")
        sender = Api(base, tokens["ingest"], tally)
        responder = Api(base, tokens["responder"], tally)
        admin = Api(base, tokens["admin"], tally)

        def cancel(run_id: str) -> None:
            answer = responder.call("POST", f"/v1/runs/{run_id}/cancel")
            assert answer.status_code in (200, 409), answer.text
            cancelled = answer.status_code == 200
            if not cancelled:
                # 409: the run had ended — or an earlier attempt of this call was cancelled on
                # the server while its answer was lost (a transport error, then a retry). Only
                # this test cancels runs: a cancelled run is this call's doing.
                run = responder.call("GET", f"/v1/runs/{run_id}").json()
                cancelled = run["status"] == "cancelled"
            by_run[run_id].cancelled = cancelled

        def send(share: int) -> None:  # two senders: every other alert each
            nonlocal posted
            for number, plan in list(enumerate(plans))[share::2]:
                answer = sender.call("POST", "/v1/alerts", json={
                    "title": f"alert {number}", "severity": 60, "kind": plan.kind,
                    "dedup_key": f"fire-{number}"})
                assert answer.status_code == 202, answer.text
                [plan.run_id] = answer.json()["run_ids"]
                with lock:
                    by_run[plan.run_id] = plan
                    posted += 1
                if plan.cancel == "queued":
                    cancel(plan.run_id)

        def cancel_running() -> None:
            while not done.is_set():
                answer = responder.call("GET", "/v1/runs", params={"status": "running"})
                for run in answer.json()["runs"]:
                    with lock:
                        plan = by_run.get(run["id"])
                    if plan is not None and plan.cancel == "running" and plan.cancelled is None:
                        time.sleep(chance.uniform(0, 0.2))
                        cancel(run["id"])
                time.sleep(0.03)

        def decide() -> None:
            seen: set[str] = set()
            while not done.is_set():
                pending = responder.call("GET", "/v1/approvals", params={"status": "pending"})
                assert pending.status_code == 200, pending.text
                for request in pending.json()["approvals"]:
                    if request["id"] in seen:
                        continue
                    seen.add(request["id"])
                    with lock:
                        plan = by_run.get(request["run_id"])
                    if plan is None:  # its alert's answer is still on its way
                        seen.discard(request["id"])
                        continue
                    if plan.cancel == "waiting":
                        cancel(request["run_id"])
                        continue
                    decision = responder.call(
                        "POST", f"/v1/approvals/{request['id']}/decision",
                        json={"decision": "approve", "reason": "rehearsal",
                              "plan_hash": request["plan_hash"]})
                    assert decision.status_code in (200, 409), decision.text
                    if plan.cancel == "approved":  # between the approval and its step
                        cancel(request["run_id"])
                time.sleep(0.05)

        senders = [threading.Thread(target=send, args=(share,), daemon=True) for share in (0, 1)]
        threads = [*senders, threading.Thread(target=cancel_running, daemon=True),
                   threading.Thread(target=decide, daemon=True)]
        for thread in threads:
            thread.start()
        try:
            marks["started"] = time.monotonic() - started
            wait_until(lambda: posted >= RUNS // 2, 60, "half the alerts")
            database.stop()
            outage_started = time.monotonic()
            marks["outage"] = outage_started - started
            while time.monotonic() - outage_started < OUTAGE_SECONDS:
                for metrics_port in metrics_ports.values():
                    worker_health_during_outage[
                        answers(f"http://127.0.0.1:{metrics_port}/healthz")] += 1
                time.sleep(0.5)
            database.start()
            for thread in senders:
                thread.join(timeout=120)
                assert not thread.is_alive(), "the alerts were not all accepted"
            marks["all posted"] = time.monotonic() - started

            def all_final() -> bool:
                listed = admin.call("GET", "/v1/runs", params={"limit": 500})
                return all(run["status"] in FINAL for run in listed.json()["runs"])

            wait_until(all_final, 90, "every run to end")
        finally:
            done.set()
            for thread in threads:
                thread.join(timeout=30)
        marks["all final"] = time.monotonic() - started

        listed = admin.call("GET", "/v1/runs", params={"limit": 500}).json()["runs"]
        shown = admin.call("GET", "/v1/workers").json()
        verified = admin.call("GET", "/v1/audit/verify").json()
        events: list[dict[str, Any]] = []
        next_page: str | None = "/v1/audit?limit=500"
        while next_page is not None:
            page = admin.call("GET", next_page).json()
            events += page["events"]
            next_page = page["next"]
        worker_errors = {
            name: [line for line in httpx.get(f"http://127.0.0.1:{p}/metrics").text.splitlines()
                   if line.startswith("riposte_worker_errors_total{")]
            for name, p in metrics_ports.items()
        }
        health_after = {name: answers(f"http://127.0.0.1:{p}/healthz")
                        for name, p in metrics_ports.items()}
        still_running = {name: proc.poll() is None for name, proc in (("w1", w1), ("w2", w2))}
        for client in (sender, responder, admin):
            client.close()
    elapsed = time.monotonic() - started

    # Every run is final: cancelled if (and only if) its cancel was accepted, else succeeded.
    assert len(listed) == RUNS and {run["id"] for run in listed} == set(by_run)
    statuses = {run["id"]: run["status"] for run in listed}
    expected = {run_id: "cancelled" if plan.cancelled else "succeeded"
                for run_id, plan in by_run.items()}
    assert statuses == expected
    # The same two worker processes, still running, live, and both did work.
    assert still_running == {"w1": True, "w2": True}
    live = {w["id"]: w for w in shown["workers"] if w["state"] == "live"}
    assert {name: live[name]["pid"] for name in ("w1", "w2")} == pids
    assert all(live[name]["runs_claimed"] > 0 for name in ("w1", "w2")), live
    assert health_after == {"w1": 200, "w2": 200}
    # No step succeeded twice; every succeeded run did each of its steps once.
    succeeded = Counter(
        (e["run_id"], e["step_id"]) for e in events if e["verb"] == "step.succeeded"
    )
    assert set(succeeded.values()) == {1}
    for run_id, status in statuses.items():
        if status == "succeeded":
            steps = STEPS[by_run[run_id].kind]
            assert all(succeeded[(run_id, step)] == 1 for step in steps), run_id
    # The audit chain verifies.
    assert verified["ok"] is True, verified
    # The outage was felt, and survived: errors counted, 503s answered, /healthz said so.
    assert all(worker_errors[name] for name in ("w1", "w2")), worker_errors
    assert tally.answers["503"] + tally.answers["transport error"] > 0
    assert worker_health_during_outage[503] > 0, worker_health_during_outage
    # Dropped cleanly: no run, cancelled or not, is left holding a lease.
    engine = make_engine(database.url)
    with make_sessionmaker(engine)() as session:
        leased = session.execute(
            select(func.count()).where(Run.lease_owner.is_not(None))).scalar_one()
        doubles = session.execute(
            select(StepRecord.run_id, StepRecord.step_id, func.count())
            .where(StepRecord.status == "succeeded")
            .group_by(StepRecord.run_id, StepRecord.step_id).having(func.count() > 1)).all()
        began = set(session.execute(select(StepRecord.run_id).distinct()).scalars())
        contained = set(session.execute(
            select(StepRecord.run_id).where(StepRecord.step_id == "contain")).scalars())
    engine.dispose()
    assert leased == 0 and doubles == []
    cancelled_by_moment = Counter(
        f"{p.cancel} ({'a step had begun' if run_id in began else 'no step begun'})"
        for run_id, p in by_run.items() if p.cancelled
    )
    before_step = sum(1 for run_id, p in by_run.items()
                      if p.cancel == "approved" and p.cancelled and run_id not in contained)
    print(f"\n{RUNS} runs in {elapsed:.1f}s (outage {OUTAGE_SECONDS:g}s; "
          f"{ {mark: round(at, 1) for mark, at in marks.items()} }): "
          f"cancelled {dict(cancelled_by_moment)}, "
          f"cancel too late {sum(1 for p in by_run.values() if p.cancelled is False)}, "
          f"cancelled just after approval before its step began {before_step}, "
          f"not cancelled (never seen running) "
          f"{sum(1 for p in by_run.values() if p.cancel and p.cancelled is None)}, "
          f"clients met {dict(tally.answers)}, worker /healthz during the outage "
          f"{dict(worker_health_during_outage)}, runs claimed "
          f"{ {name: live[name]['runs_claimed'] for name in ('w1', 'w2')} }, "
          f"worker errors {worker_errors}")
