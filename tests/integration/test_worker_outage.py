"""Workers outlast a PostgreSQL outage and go back to work by themselves: a standalone
`riposte worker` (same process; its /healthz says 503 while it cannot record its heartbeat) and
the worker thread of `riposte serve` (same thread; /readyz 503 during the outage, 200 after)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from api.app import create_app
from core.settings import Settings
from engine.store.db import make_engine, make_sessionmaker
from engine.store.migrate import upgrade
from engine.store.models import Run
from tests.integration.engine_helpers import queue, wait_for
from tests.integration.throwaway_postgres import ThrowawayPostgres, throwaway_postgres
from tests.live_server import free_port, serving

ROOT = Path(__file__).resolve().parents[2]

ONE_STEP = """
name: one
steps:
  - {id: only, action: core.log, with: {message: done}}
"""


@pytest.fixture
def database() -> Iterator[ThrowawayPostgres]:
    with throwaway_postgres() as server:
        upgrade(server.url)
        yield server


def health(port: int) -> tuple[int, str]:
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except httpx.TransportError as exc:
        return 0, str(exc)
    return answer.status_code, answer.text


def test_a_standalone_worker_outlasts_a_database_outage(
    database: ThrowawayPostgres, tmp_path: Path
) -> None:
    engine = make_engine(database.url)
    sessions = make_sessionmaker(engine)
    port = free_port()
    log_file = (tmp_path / "worker.log").open("w+")
    worker = subprocess.Popen(
        [sys.executable, "-m", "riposte", "worker", "--id", "outlasting"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log_file,
        env={**os.environ, "RIPOSTE_DATABASE_URL": database.url,
             "RIPOSTE_WORKER_METRICS_PORT": str(port), "RIPOSTE_WORKER_POLL_SECONDS": "1",
             "RIPOSTE_WORKER_HEARTBEAT_SECONDS": "0.5", "RIPOSTE_WORKER_SILENT_AFTER": "2",
             "RIPOSTE_LEASE_SECONDS": "5"},
    )

    def finished(expected: int) -> bool:
        with sessions() as session:
            done = session.execute(select(func.count()).where(Run.status == "succeeded"))
            return done.scalar_one() == expected

    try:
        wait_for(lambda: health(port)[0] == 200, timeout=30, what="the worker's /healthz")
        for _ in range(5):
            queue(sessions, ONE_STEP)
        wait_for(lambda: finished(5), timeout=30, what="the runs before the outage")

        database.stop()
        engine.dispose()  # the test's own connections died with the server
        wait_for(lambda: health(port)[0] == 503, timeout=15, what="/healthz to say 503")
        said_during = health(port)
        time.sleep(2)
        assert worker.poll() is None, "the worker exited during the outage"
        database.start()

        for _ in range(5):
            queue(sessions, ONE_STEP)
        wait_for(lambda: finished(10), timeout=30, what="the runs after the outage")
        wait_for(lambda: health(port)[0] == 200, timeout=15, what="/healthz to say 200 again")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert worker.poll() is None
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        engine.dispose()
        log_file.seek(0)
        log = log_file.read()
        log_file.close()
    assert said_during[0] == 503
    assert "outlasting has recorded no heartbeat" in said_during[1], said_during
    errors = [line for line in metrics.splitlines()
              if line.startswith('riposte_worker_errors_total{kind="claim"}')]
    assert errors and float(errors[0].split()[-1]) >= 1, metrics
    assert "worker outlasting stopped" in log
    assert '"level": "critical"' not in log


def test_the_worker_thread_of_serve_outlasts_a_database_outage(
    database: ThrowawayPostgres, tmp_path: Path
) -> None:
    engine = make_engine(database.url)
    sessions = make_sessionmaker(engine)
    settings = Settings(database_url=database.url, playbook_dir=tmp_path,
                        worker_poll_seconds=0.5, worker_heartbeat_seconds=0.2,
                        worker_silent_after=2.0)

    def finished(expected: int) -> bool:
        with sessions() as session:
            done = session.execute(select(func.count()).where(Run.status == "succeeded"))
            return done.scalar_one() == expected

    app = create_app(settings, in_process_workers=1)

    def ready() -> int:
        return httpx.get(f"{base}/readyz", timeout=5).status_code

    try:
        with serving(app) as base:
            [in_process] = app.state.workers
            for _ in range(3):
                queue(sessions, ONE_STEP)
            wait_for(lambda: finished(3), timeout=20, what="the runs before the outage")
            assert ready() == 200

            database.stop()
            engine.dispose()
            wait_for(lambda: ready() == 503, timeout=15,
                     what="/readyz to say 503")
            time.sleep(3)  # housekeeping, claims and heartbeats all fail meanwhile
            database.start()

            for _ in range(3):
                queue(sessions, ONE_STEP)
            wait_for(lambda: finished(6), timeout=30, what="the runs after the outage")
            wait_for(lambda: ready() == 200, timeout=15,
                     what="/readyz to say 200 again")
            assert in_process.thread.is_alive() and in_process.died_of is None
    finally:
        engine.dispose()
