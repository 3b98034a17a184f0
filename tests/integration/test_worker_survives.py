"""A worker stops only when asked: every other error is logged, counted, and the loop goes on.

Each test runs a real worker loop (``Worker.serve`` in a thread) on a real database and makes
one thing go wrong at a chosen moment: a cancel racing the worker, a bug while driving a run,
the database refusing for a while, a failing notifier or housekeeping task. It then checks what
an operator would: the run's end, the worker still working (a later run is driven), the error
counted in ``riposte_worker_errors_total``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings
from engine import approval_notices, approved, plans, runner, wakeup
from engine.store import approvals, deciders, leases, runs, workers
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import ApprovalRequest, Run, WorkerHeartbeat
from engine.store.types import utcnow
from engine.worker import Worker
from tests.integration.engine_helpers import (
    audit_verbs,
    drain,
    journal,
    queue,
    run_row,
    wait_for,
    worker,
)

THREE_STEPS = """
name: three
steps:
  - {id: first, action: core.log, with: {message: one}}
  - {id: second, action: core.log, with: {message: two}}
  - {id: third, action: core.log, with: {message: three}}
"""

SLOW_FIRST = """
name: slow-first
steps:
  - {id: first, action: core.sleep, with: {seconds: 0.6}}
  - {id: second, action: core.log, with: {message: two}}
  - {id: third, action: core.log, with: {message: three}}
"""

ONE_STEP = """
name: one
steps:
  - {id: only, action: core.log, with: {message: still working}}
"""

APPROVAL = """
name: guarded
steps:
  - {id: look, action: core.log, with: {message: looking}}
  - id: contain
    action: core.log
    with: {message: containing}
    approval: {reason: destructive, expires_in: 3600}
  - {id: after, action: core.log, with: {message: done}}
"""

ROOT = Path(__file__).resolve().parents[2]

# A pinned text that no longer loads (an action this Riposte does not know).
UNLOADABLE = "name: three\nsteps:\n  - {id: first, action: core.no_such_action}\n"


def fast_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"worker_heartbeat_seconds": 0.1, "worker_silent_after": 1.0}
    return Settings(**(values | overrides))


def errors_counted(kind: str) -> float:
    return REGISTRY.get_sample_value("riposte_worker_errors_total", {"kind": kind}) or 0.0


@contextmanager
def serving(w: Worker) -> Iterator[threading.Thread]:
    """Run the worker's loop in a thread for the block; stop it (as SIGTERM does) after."""
    stop = threading.Event()
    thread = threading.Thread(target=w.serve, args=(stop,), daemon=True, name="test-worker")
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        wakeup.signal()
        thread.join(timeout=15)


def cancel(sessions: sessionmaker[Session], run_id: str) -> None:
    with sessions.begin() as session:
        runs.cancel_run(session=session, run_id=run_id, actor="alice")


def approve_pending(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        request_id = session.execute(
            select(ApprovalRequest.id).where(ApprovalRequest.status == "pending")
        ).scalar_one()
    with sessions.begin() as session:
        deciders.decide(session=session, request_id=request_id, actor="alice",
                         role="responder", decision="approve", reason="go")


def succeeded(sessions: sessionmaker[Session], run_id: str) -> Callable[[], bool]:
    return lambda: run_row(sessions, run_id).status == "succeeded"


# ---------------------------------------------------------------------------------------------
# A cancel racing the worker: the run is dropped cleanly, whatever step it was in


def test_a_run_cancelled_while_its_pinned_playbook_fails_to_load_ends_cancelled(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL only: there the cancel can commit between the worker reading the run and
    # failing it. (On SQLite the worker's read transaction holds the write lock.)
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    broken = queue(sessions, THREE_STEPS)
    later = queue(sessions, ONE_STEP)
    with sessions.begin() as session:
        session.execute(update(Run).where(Run.id == broken).values(playbook_text=UNLOADABLE))
    loads = Worker.playbook

    def cancelled_meanwhile(self: Worker, run: Run) -> Any:
        if run.id == broken:
            cancel(sessions, broken)
        return loads(self, run)

    monkeypatch.setattr(Worker, "playbook", cancelled_meanwhile)
    try:
        with serving(worker(sessions, settings=fast_settings())) as thread:
            wait_for(succeeded(sessions, later), timeout=20, what="the next run to be driven")
            assert thread.is_alive()
        run = run_row(sessions, broken)
        assert (run.status, run.error, run.lease_owner) == ("cancelled", None, None)
        assert audit_verbs(sessions, broken) == ["run.queued", "run.cancelled"]
    finally:
        engine.dispose()


def test_a_run_cancelled_while_its_approval_is_being_planned_is_dropped(
    sessionmaker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race the probe found: the cancel commits while the worker plans the approval.
    run_id = queue(sessionmaker, APPROVAL)
    later = queue(sessionmaker, ONE_STEP)
    plan = plans.step_plan

    def cancelled_meanwhile(**kwargs: Any) -> Any:
        cancel(sessionmaker, run_id)
        return plan(**kwargs)

    monkeypatch.setattr(plans, "step_plan", cancelled_meanwhile)
    with serving(worker(sessionmaker, settings=fast_settings())) as thread:
        wait_for(succeeded(sessionmaker, later), timeout=20, what="the next run to be driven")
        assert thread.is_alive()
    run = run_row(sessionmaker, run_id)
    assert (run.status, run.lease_owner) == ("cancelled", None)
    with sessionmaker() as session:
        assert session.execute(select(ApprovalRequest)).first() is None
    assert [r.step_id for r in journal(sessionmaker, run_id)] == ["look"]


def test_a_run_cancelled_between_its_approval_and_its_step_is_dropped_and_released(
    sessionmaker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = queue(sessionmaker, APPROVAL)
    w = worker(sessionmaker, settings=fast_settings())
    drain(w)
    approve_pending(sessionmaker)
    later = queue(sessionmaker, ONE_STEP)
    check = approved.plan_moved

    def cancelled_meanwhile(*args: Any, **kwargs: Any) -> Any:
        moved = check(*args, **kwargs)
        cancel(sessionmaker, run_id)  # approved, claimed, checked: about to begin the step
        return moved

    monkeypatch.setattr(approved, "plan_moved", cancelled_meanwhile)
    with serving(w) as thread:
        wait_for(succeeded(sessionmaker, later), timeout=20, what="the next run to be driven")
        assert thread.is_alive()
    run = run_row(sessionmaker, run_id)
    # Dropped cleanly: cancelled, the approved step never began, no lease left behind.
    assert (run.status, run.lease_owner, run.lease_expires_at) == ("cancelled", None, None)
    assert [(r.step_id, r.status) for r in journal(sessionmaker, run_id)] == [
        ("look", "succeeded")
    ]


# ---------------------------------------------------------------------------------------------
# Errors while driving, keeping house and notifying


def test_a_bug_while_driving_fails_that_run_is_counted_and_the_worker_goes_on(
    sessionmaker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = queue(sessionmaker, THREE_STEPS)
    later = queue(sessionmaker, ONE_STEP)
    execute = runner.execute_step

    def buggy(*args: Any, **kwargs: Any) -> Any:
        if kwargs["run_id"] == victim:
            raise RuntimeError("a bug in Riposte")
        return execute(*args, **kwargs)

    monkeypatch.setattr(runner, "execute_step", buggy)
    before = errors_counted("drive")
    with serving(worker(sessionmaker, "w1", settings=fast_settings())) as thread:
        wait_for(succeeded(sessionmaker, later), timeout=20, what="the next run to be driven")
        assert thread.is_alive()
    run = run_row(sessionmaker, victim)
    assert run.status == "failed" and run.lease_owner is None
    assert run.error is not None and "RuntimeError: a bug in Riposte" in run.error
    assert [(r.step_id, r.status, (r.error or {}).get("code")) for r in
            journal(sessionmaker, victim)] == [("first", "interrupted", "WorkerError")]
    assert audit_verbs(sessionmaker, victim)[-1] == "run.failed"
    assert errors_counted("drive") == before + 1


def test_a_run_left_mid_way_by_a_database_error_is_handed_over_and_finished(
    sessionmaker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = queue(sessionmaker, THREE_STEPS)
    execute = runner.execute_step
    cut = threading.Event()

    def connection_lost_once(*args: Any, **kwargs: Any) -> Any:
        if not cut.is_set():
            cut.set()
            raise OperationalError("UPDATE runs", {}, Exception("server closed the connection"))
        return execute(*args, **kwargs)

    monkeypatch.setattr(runner, "execute_step", connection_lost_once)
    before = errors_counted("drive")
    # A 30 s lease: only the hand-over, not an expiry, can explain a finish within seconds.
    with serving(worker(sessionmaker, "w1", settings=fast_settings())) as thread:
        wait_for(succeeded(sessionmaker, run_id), timeout=10, what="the run to be finished")
        assert thread.is_alive()
    assert [(r.step_id, r.status) for r in journal(sessionmaker, run_id)] == [
        ("first", "interrupted"), ("first", "succeeded"), ("second", "succeeded"),
        ("third", "succeeded"),
    ]
    verbs = audit_verbs(sessionmaker, run_id)
    assert verbs.index("run.released") < verbs.index("run.lease_expired")
    assert errors_counted("drive") == before + 1


def test_housekeeping_and_notice_errors_are_counted_and_the_worker_goes_on(
    sessionmaker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_expiry(**_kwargs: Any) -> list[str]:
        raise ValueError("an approval row the code cannot read")

    def broken_notifier(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the notifier fell over")

    monkeypatch.setattr(approvals, "expire_due", broken_expiry)
    monkeypatch.setattr(approval_notices, "send", broken_notifier)
    guarded = queue(sessionmaker, APPROVAL)
    later = queue(sessionmaker, ONE_STEP)
    housekeeping, notify = errors_counted("housekeeping"), errors_counted("notify")
    settings = fast_settings(approval_notify=["https://hooks.example.com/services/T0/B0/x"])
    with serving(worker(sessionmaker, settings=settings)) as thread:
        wait_for(succeeded(sessionmaker, later), timeout=20, what="the next run to be driven")
        assert thread.is_alive()
    assert run_row(sessionmaker, guarded).status == "waiting_approval"
    assert errors_counted("housekeeping") >= housekeeping + 1
    assert errors_counted("notify") == notify + 1


def test_while_the_database_refuses_the_worker_backs_off_and_resumes_by_itself(
    sessionmaker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = queue(sessionmaker, THREE_STEPS)
    claim = leases.claim_next_run
    refused: list[float] = []
    back_at = time.monotonic() + 2.0

    def database_away(**kwargs: Any) -> Any:
        if time.monotonic() < back_at:
            refused.append(time.monotonic())
            raise OperationalError("SELECT", {}, Exception("connection refused"))
        return claim(**kwargs)

    monkeypatch.setattr(leases, "claim_next_run", database_away)
    before = errors_counted("claim")
    w = worker(sessionmaker, settings=fast_settings(), retry_max_seconds=0.5)
    with serving(w) as thread:
        wait_for(succeeded(sessionmaker, run_id), timeout=10, what="the run after the outage")
        assert thread.is_alive()
    # Not a hot loop: pauses of 0.2 s, doubling, capped at 0.5 s (with jitter: x 0.75-1).
    gaps = [later - earlier for earlier, later in zip(refused, refused[1:], strict=False)]
    assert 3 <= len(refused) <= 12, refused
    assert all(0.1 <= gap <= 0.5 + 0.3 for gap in gaps), gaps
    assert max(gaps) > min(gaps)
    assert errors_counted("claim") == before + len(refused)


# ---------------------------------------------------------------------------------------------
# Stopping: SIGTERM finishes the step in flight and hands the run over


def test_a_stopping_worker_finishes_its_step_and_hands_the_run_over(
    sessionmaker: sessionmaker[Session],
) -> None:
    run_id = queue(sessionmaker, SLOW_FIRST)
    first = worker(sessionmaker, "first", settings=fast_settings())
    stop = threading.Event()
    thread = threading.Thread(target=first.serve, args=(stop,), daemon=True)
    thread.start()
    wait_for(lambda: [r.status for r in journal(sessionmaker, run_id)] == ["running"],
             timeout=10, what="the slow step to begin")
    stop.set()
    wakeup.signal()
    thread.join(timeout=10)
    assert not thread.is_alive()
    run = run_row(sessionmaker, run_id)
    assert run.status == "running" and run.lease_expires_at is not None
    assert run.lease_expires_at <= utcnow()  # taken over at once, not after the 30 s lease
    assert audit_verbs(sessionmaker, run_id)[-2:] == ["step.succeeded", "run.released"]
    assert drain(worker(sessionmaker, "second")) == 1
    assert [(r.step_id, r.status, r.worker) for r in journal(sessionmaker, run_id)] == [
        ("first", "succeeded", "first"),
        ("second", "interrupted", "first"),  # journaled as next, never begun
        ("second", "succeeded", "second"),
        ("third", "succeeded", "second"),
    ]
    assert run_row(sessionmaker, run_id).status == "succeeded"


# ---------------------------------------------------------------------------------------------
# Heartbeats


def test_a_worker_records_its_heartbeat_and_signs_off_when_stopped(
    sessionmaker: sessionmaker[Session],
) -> None:
    run_id = queue(sessionmaker, ONE_STEP)
    w = worker(sessionmaker, "beating", settings=fast_settings())

    def row() -> WorkerHeartbeat | None:
        with sessionmaker() as session:
            return session.get(WorkerHeartbeat, "beating")

    with serving(w):
        wait_for(succeeded(sessionmaker, run_id), timeout=10, what="the run")
        wait_for(lambda: (beat := row()) is not None and beat.runs_claimed == 1, timeout=5,
                 what="a heartbeat counting the run")
        beat = row()
        assert beat is not None
        assert (beat.host, beat.pid, beat.stopped_at) == (socket.gethostname(), os.getpid(), None)
        assert workers.state_of(beat, silent_after=1.0) == "live"
        assert w.problem() is None
    beat = row()
    assert beat is not None and beat.stopped_at is not None
    assert workers.state_of(beat, silent_after=1.0) == "stopped"


def test_a_worker_that_cannot_record_its_heartbeat_says_it_is_silent(
    sessionmaker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(_session: Session, _beat: workers.Beat) -> None:
        raise OperationalError("UPDATE worker_heartbeats", {}, Exception("connection refused"))

    monkeypatch.setattr(workers, "beat", unreachable)
    before = errors_counted("heartbeat")
    w = worker(sessionmaker, "mute", settings=fast_settings())
    with serving(w) as thread:
        wait_for(lambda: w.problem() is not None, timeout=5, what="the worker to say so")
        assert thread.is_alive()
    problem = w.problem()
    assert problem is not None and problem.startswith("worker mute has recorded no heartbeat")
    assert errors_counted("heartbeat") >= before + 2


# ---------------------------------------------------------------------------------------------
# What does stop a worker: a setting it cannot use, at start-up


def test_a_metrics_port_already_taken_stops_the_worker_at_start_up(sqlite_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "riposte", "worker", "--id", "late"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
            env={**os.environ, "RIPOSTE_DATABASE_URL": sqlite_url,
                 "RIPOSTE_WORKER_METRICS_PORT": str(port)},
        )
    assert result.returncode == 1
    assert f"error: RIPOSTE_WORKER_METRICS_PORT: cannot listen on port {port}: " in result.stderr
    assert "Traceback" not in result.stderr
