"""Many worker processes on one PostgreSQL: every run ends once, a killed worker's run resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import func, select

from engine.playbooks import parse_playbook
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import Run, StepRecord
from tests.integration.engine_helpers import journal, queue, run_row, wait_for

ROOT = Path(__file__).resolve().parents[2]

FIVE_STEPS = """
name: five
steps:
  - {id: s1, action: core.log, with: {message: one}}
  - {id: s2, action: core.set, with: {values: {n: 2}}}
  - {id: s3, action: core.sleep, with: {seconds: 0.005}}
  - id: s4
    action: core.fail
    with: {code: Throttling, times: 1}
    retry: {attempts: 2, backoff: 0.01}
  - {id: s5, action: core.log, with: {message: "{{ vars.n }}"}}
"""

INTERRUPTIBLE = """
name: long
steps:
  - {id: before, action: core.log, with: {message: before}}
  - {id: slow, action: core.sleep, with: {seconds: 4}}
  - {id: after, action: core.log, with: {message: after}}
"""


@contextmanager
def worker_processes(url: str, names: list[str], lease: float = 30.0) -> Iterator[
    dict[str, subprocess.Popen[bytes]]
]:
    env = {
        **os.environ,
        "RIPOSTE_DATABASE_URL": url,
        "RIPOSTE_LEASE_SECONDS": str(lease),
        "RIPOSTE_WORKER_POLL_SECONDS": "1",
        "RIPOSTE_LOG_LEVEL": "WARNING",
    }
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "riposte", "worker", "--id", name],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for name in names
    }
    try:
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()


def test_four_workers_finish_200_runs_each_step_once(pg_url: str) -> None:
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    playbook = parse_playbook(FIVE_STEPS)
    run_ids = [queue(sessions, playbook) for _ in range(200)]
    with worker_processes(pg_url, [f"w{i}" for i in range(4)]) as procs:
        def all_done() -> bool:
            with sessions() as session:
                pending = session.execute(
                    select(func.count()).where(Run.status.not_in(["succeeded", "failed"]))
                ).scalar_one()
            return pending == 0

        wait_for(all_done, timeout=240, what="200 runs to end")
        assert all(p.poll() is None for p in procs.values()), "a worker died"
    with sessions() as session:
        statuses = session.execute(select(Run.status, func.count()).group_by(Run.status)).all()
        records = list(session.execute(select(StepRecord)).scalars())
    assert dict(statuses) == {"succeeded": 200}
    succeeded: dict[tuple[str, str], int] = defaultdict(int)
    by_step: dict[tuple[str, str], list[StepRecord]] = defaultdict(list)
    for r in records:
        by_step[(r.run_id, r.step_id)].append(r)
        if r.status == "succeeded":
            succeeded[(r.run_id, r.step_id)] += 1
    assert set(succeeded.values()) == {1}
    assert len(succeeded) == 200 * 5
    assert {run for run, _ in succeeded} == set(run_ids)
    for executions in by_step.values():  # never two executions of one step at once
        executions.sort(key=lambda r: r.started_at)
        for earlier, later in zip(executions, executions[1:], strict=False):
            assert earlier.finished_at is not None and earlier.finished_at <= later.started_at
    assert len({r.worker for r in records}) > 1, "the work was not shared"
    engine.dispose()


def test_a_killed_workers_run_is_finished_by_another_running_the_step_again_once(
    pg_url: str,
) -> None:
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    run_id = queue(sessions, INTERRUPTIBLE)
    with worker_processes(pg_url, ["victim"], lease=2.0) as procs:
        wait_for(
            lambda: any(r.step_id == "slow" and r.status == "running"
                        for r in journal(sessions, run_id)),
            timeout=60, what="the slow step to start",
        )
        procs["victim"].send_signal(signal.SIGKILL)
        procs["victim"].wait()
    with worker_processes(pg_url, ["rescuer"], lease=2.0):
        wait_for(lambda: run_row(sessions, run_id).status == "succeeded", timeout=60,
                 what="the rescuer to finish the run")
    rows = [(r.step_id, r.status, r.worker) for r in journal(sessions, run_id)]
    assert rows == [
        ("before", "succeeded", "victim"),
        ("slow", "interrupted", "victim"),
        ("slow", "succeeded", "rescuer"),
        ("after", "succeeded", "rescuer"),
    ]
    engine.dispose()
