"""Helpers for engine tests: queue runs on a real database and drive them with a real worker."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.alerts import NormalizedAlert
from engine.playbooks import LoadedPlaybook, parse_playbook
from engine.store.alerts import ingest_alert
from engine.store.models import AuditEvent, Run, StepRecord
from engine.store.runs import queue_run
from engine.worker import Worker


def make_alert(**fields: Any) -> NormalizedAlert:
    base: dict[str, Any] = {
        "source": "generic",
        "kind": "test",
        "title": "test alert",
        "severity": 50,
        "severity_label": "MEDIUM",
    }
    return NormalizedAlert.model_validate({**base, **fields})


def queue(
    sessions: sessionmaker[Session],
    playbook: LoadedPlaybook | str,
    *,
    alert: NormalizedAlert | None = None,
    mode: str = "live",
    started_by: str = "tester",
) -> str:
    """Store an alert and queue one run of ``playbook`` on it; return the run id."""
    loaded = parse_playbook(playbook) if isinstance(playbook, str) else playbook
    with sessions.begin() as session:
        stored = ingest_alert(
            session=session, alert=alert or make_alert(), playbooks={}, endpoint="test",
            body_sha256="0" * 64, body_bytes=0, actor="tester",
        )
        run = queue_run(session=session, alert_id=stored.alert_id, playbook=loaded, mode=mode,
                        started_by=started_by)
        return run.id


def worker(sessions: sessionmaker[Session], name: str = "w1", **kw: Any) -> Worker:
    kw.setdefault("lease_seconds", 30.0)
    kw.setdefault("poll_seconds", 0.2)
    return Worker(sessions=sessions, worker_id=name, **kw)


def drain(w: Worker) -> int:
    """Let the worker take runs until there are none left; return how many it took."""
    taken = 0
    while w.work_once():
        taken += 1
    return taken


def run_row(sessions: sessionmaker[Session], run_id: str) -> Run:
    with sessions() as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run


def journal(sessions: sessionmaker[Session], run_id: str) -> list[StepRecord]:
    with sessions() as session:
        query = select(StepRecord).where(StepRecord.run_id == run_id).order_by(StepRecord.id)
        return list(session.execute(query).scalars())


def audit_verbs(sessions: sessionmaker[Session], run_id: str) -> list[str]:
    with sessions() as session:
        query = select(AuditEvent.verb).where(AuditEvent.run_id == run_id)
        return list(session.execute(query.order_by(AuditEvent.id)).scalars())


def wait_for(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
