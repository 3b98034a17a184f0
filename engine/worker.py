"""The worker: claim a run under a lease, drive it step by step, record every step durably."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from engine import conductor, runner, wakeup
from engine.alerts import template_view
from engine.metrics import LEASE_EXPIRIES, LEASE_RENEWALS, STEP_DURATION
from engine.playbooks import LoadedPlaybook, PlaybookInvalid, parse_playbook
from engine.store import approvals, runs
from engine.store.alerts import as_normalized, get_alert
from engine.store.models import Run
from engine.templates import TemplateFailure
from riposte.logs import bound

log = logging.getLogger("riposte.worker")


def default_worker_id() -> str:
    """Name a worker after its host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """Claims runnable runs and drives each until it ends or waits for a human."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        worker_id: str | None = None,
        lease_seconds: float = 30.0,
        poll_seconds: float = 5.0,
        approval_expiry: float = 3600.0,
    ) -> None:
        self.sessions = sessions
        self.worker_id = worker_id or default_worker_id()
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.approval_expiry = approval_expiry
        self._playbooks: dict[str, LoadedPlaybook] = {}
        self._last_housekeeping = 0.0

    def serve(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set, sleeping between runs until woken or polled."""
        url = self.sessions.kw["bind"].url
        listener: threading.Thread | None = None
        if url.get_backend_name() == "postgresql":
            listener = threading.Thread(
                target=wakeup.listen_postgres,
                args=(url.render_as_string(hide_password=False), stop),
                daemon=True,
                name="riposte-listen",
            )
            listener.start()
        log.info("worker %s started", self.worker_id)
        while not stop.is_set():
            seen = wakeup.generation()
            self.housekeeping()
            if self.work_once():
                continue
            wakeup.wait(seen, self.poll_seconds)
        if listener is not None:
            listener.join(timeout=2)
        log.info("worker %s stopped", self.worker_id)

    def housekeeping(self) -> None:
        """Expire overdue approvals (at most once a second); safe to run from every worker."""
        now = time.monotonic()
        if now - self._last_housekeeping < 1.0:
            return
        self._last_housekeeping = now
        with self.sessions.begin() as session:
            expired = approvals.expire_due(session=session, actor=self.worker_id)
        for request_id in expired:
            log.info("approval request %s expired", request_id)

    def work_once(self) -> bool:
        """Claim one run and drive it; tell whether there was one."""
        with self.sessions.begin() as session:
            claim = runs.claim_next_run(
                session=session, worker=self.worker_id, lease_seconds=self.lease_seconds
            )
            if claim is None:
                return False
            run_id, alert_id = claim.run.id, claim.run.alert_id
        if claim.reclaimed:
            LEASE_EXPIRIES.inc()
        with bound(run_id=run_id, alert_id=alert_id):
            lease = _LeaseKeeper(self, run_id)
            lease.start()
            try:
                self._drive(run_id)
            finally:
                lease.stop()
        return True

    def _drive(self, run_id: str) -> None:
        with self.sessions() as session:
            run = runs.get_run(session, run_id)
            alert = template_view(run.alert_id, as_normalized(get_alert(session, run.alert_id)))
            try:
                playbook = self._playbook(run)
            except PlaybookInvalid as exc:
                self._fail_unloadable(run_id, str(exc))
                return
            run_view = {"id": run.id, "mode": run.mode, "playbook": run.playbook}
            state: dict[str, Any] | None = run.state
            if run.lease_owner != self.worker_id or run.status != conductor.RUNNING:
                return
        while state is not None:
            step_id = conductor.next_step(playbook.spec, state)
            if step_id is None:
                return
            with bound(step_id=step_id):
                state = self._step(run_id, playbook, state, step_id, alert, run_view)

    def _step(
        self,
        run_id: str,
        playbook: LoadedPlaybook,
        state: dict[str, Any],
        step_id: str,
        alert: dict[str, Any],
        run_view: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Execute one step and record it; return the run's state if it goes on here."""
        step = playbook.spec.step(step_id)
        context = runner.template_context(alert=alert, state=state, run=run_view)
        if step.approval and not conductor.is_approved(state, step_id):
            return self._ask_approval(run_id, step, context)
        with self.sessions.begin() as session:
            run = runs.get_run(session, run_id)
            if run.lease_owner != self.worker_id:
                return None
            record = runs.begin_step(
                session=session, run=run, step_id=step_id, action=step.action,
                worker=self.worker_id,
            )
            record_id = record.id
        started = time.perf_counter()
        outcome = runner.execute_step(step, context, run_id=run_id, mode=run_view["mode"])
        STEP_DURATION.labels(step.action, outcome.status).observe(time.perf_counter() - started)
        new_state = runner.record_outcome(playbook.spec, state, step_id, outcome)
        with self.sessions.begin() as session:
            finished = runs.finish_step(
                session=session, run_id=run_id, record_id=record_id, worker=self.worker_id,
                outcome=outcome, new_state=new_state,
            )
        if finished is None:
            log.warning("lease on run %s lost during step %s; result not recorded", run_id,
                        step_id)
            return None
        if outcome.error:
            log.info("step %s %s: %s", step_id, outcome.status, outcome.error["message"])
        return finished.state if finished.status == conductor.RUNNING else None

    def _ask_approval(
        self, run_id: str, step: Any, context: dict[str, Any]
    ) -> dict[str, Any] | None:
        try:
            if not runner.should_run(step, context):
                return self._skip(run_id, step.id, context)
            params = runner.resolve_params(step, context)
        except TemplateFailure as exc:
            return self._record_failure(run_id, step, "TemplateError", str(exc))
        plan = {"step": step.id, "action": step.action, "params": params,
                "reason": step.approval.reason}
        with self.sessions.begin() as session:
            run = runs.get_run(session, run_id)
            if run.lease_owner != self.worker_id:
                return None
            request = approvals.open_request(
                session=session, run=run, step_id=step.id, approval=step.approval, plan=plan,
                default_expiry=self.approval_expiry, worker=self.worker_id,
            )
            log.info("run %s waits for approval %s of step %s", run_id, request.id, step.id)
        return None

    def _skip(self, run_id: str, step_id: str, context: dict[str, Any]) -> dict[str, Any] | None:
        outcome = runner.StepOutcome(status="skipped")
        return self._record(run_id, step_id, outcome)

    def _record_failure(
        self, run_id: str, step: Any, code: str, message: str
    ) -> dict[str, Any] | None:
        outcome = runner.StepOutcome(status="failed", error={"code": code, "message": message})
        return self._record(run_id, step.id, outcome)

    def _record(
        self, run_id: str, step_id: str, outcome: runner.StepOutcome
    ) -> dict[str, Any] | None:
        with self.sessions.begin() as session:
            run = runs.get_run(session, run_id)
            playbook = self._playbook(run)
            record = runs.begin_step(
                session=session, run=run, step_id=step_id,
                action=playbook.spec.step(step_id).action, worker=self.worker_id,
            )
            new_state = runner.record_outcome(playbook.spec, run.state, step_id, outcome)
            finished = runs.finish_step(
                session=session, run_id=run_id, record_id=record.id, worker=self.worker_id,
                outcome=outcome, new_state=new_state,
            )
        if finished is None or finished.status != conductor.RUNNING:
            return None
        return finished.state

    def _fail_unloadable(self, run_id: str, message: str) -> None:
        with self.sessions.begin() as session:
            run = runs.get_run(session, run_id)
            new_state = conductor.apply(run.state, "fail")
            run.state = new_state
            run.status = new_state["status"]
            run.error = f"pinned playbook no longer loads: {message}"
            runs.finish_run(session=session, run=run, worker=self.worker_id)

    def _playbook(self, run: Run) -> LoadedPlaybook:
        cached = self._playbooks.get(run.playbook_hash)
        if cached is None:
            cached = parse_playbook(run.playbook_text, f"{run.playbook} (pinned in run {run.id})")
            self._playbooks[run.playbook_hash] = cached
        return cached


class _LeaseKeeper:
    """Renews a run's lease in the background while the worker drives it."""

    def __init__(self, worker: Worker, run_id: str) -> None:
        self.worker = worker
        self.run_id = run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="riposte-lease")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        interval = self.worker.lease_seconds / 3
        while not self._stop.wait(interval):
            try:
                with self.worker.sessions.begin() as session:
                    held = runs.renew_lease(
                        session=session, run_id=self.run_id, worker=self.worker.worker_id,
                        lease_seconds=self.worker.lease_seconds,
                    )
            except Exception:  # a database blip: try again at the next interval
                log.exception("could not renew the lease on run %s", self.run_id)
                continue
            if not held:
                return
            LEASE_RENEWALS.inc()
