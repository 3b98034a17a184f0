"""The worker: claim a run under a lease, drive it step by step, record every step durably."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from actions import registry
from actions.base import ActionError, RunEnv
from engine import approval_notices as notices
from engine import approved, conductor, plans, runner, wakeup
from engine.alerts import template_view
from engine.metrics import LEASE_EXPIRIES, LEASE_RENEWALS, STEP_DURATION
from engine.playbooks import LoadedPlaybook, PlaybookInvalid, parse_playbook
from engine.spec import Step
from engine.store import approvals, runs, triggers
from engine.store.alerts import as_normalized, get_alert
from engine.store.models import Run
from engine.templates import TemplateFailure
from riposte.logs import bound
from riposte.settings import Settings, get_settings

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
        settings: Settings | None = None,
        prune_every: float = 60.0,
        prune_batch: int = triggers.PRUNE_BATCH,
    ) -> None:
        self.sessions = sessions
        self.settings = settings or get_settings()
        self.worker_id = worker_id or default_worker_id()
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.approval_expiry = approval_expiry
        self._playbooks: dict[str, LoadedPlaybook] = {}
        self._last_housekeeping = 0.0
        self.prune_every = prune_every
        self.prune_batch = prune_batch
        self._next_pruning = 0.0  # time.monotonic() of the next pruning pass

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
        """Expire and escalate approvals (at most once a second), prune threshold events.

        Pruning runs every ``prune_every`` seconds, or at every pass while the last one left
        events to prune. Every part is safe to run from every worker at once.
        """
        now = time.monotonic()
        if now - self._last_housekeeping < 1.0:
            return
        self._last_housekeeping = now
        with self.sessions.begin() as session:
            expired = approvals.expire_due(session=session, actor=self.worker_id)
        for request_id in expired:
            log.info("approval request %s expired", request_id)
        with self.sessions.begin() as session:
            due = [notices.Notice.of(session, r) for r in approvals.claim_escalations(session)]
        for notice in due:
            subject, text = notices.escalated(notice, settings=self.settings)
            self.tell(notice, "approval.escalated", notice.escalate_to, subject, text)
        if now < self._next_pruning:
            return
        pruned = 0
        for _ in range(triggers.PRUNE_BATCHES_PER_PASS):
            # One transaction per batch: no lock is held for the whole pass.
            with self.sessions.begin() as session:
                deleted = triggers.prune_threshold_events(session=session, batch=self.prune_batch)
            pruned += deleted
            if deleted < self.prune_batch:
                self._next_pruning = now + self.prune_every
                break
        else:  # a backlog is left: go on at the next pass rather than after prune_every
            self._next_pruning = now
        if pruned:
            log.debug("pruned %d threshold events", pruned)

    def tell(
        self, notice: notices.Notice, verb: str, targets: list[str], subject: str, text: str
    ) -> None:
        """Send a notice outside any transaction, then audit who got it."""
        sent, failed = notices.send(
            targets, subject=subject, text=text, settings=self.settings, run_id=notice.run_id
        )
        with self.sessions.begin() as session:
            approvals.record_notice(
                session=session, request_id=notice.request_id, verb=verb,
                actor=self.worker_id, sent=sent, failed=failed,
            )
        log.info("%s %s: told %s, failed %s", verb, notice.request_id, sent, failed)

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
                # One connection for the whole run: no pool checkout and ping per transaction.
                with self.sessions.kw["bind"].connect() as connection:
                    sessions = sessionmaker(bind=connection, expire_on_commit=False)
                    _RunDriver(self, sessions, run_id).drive()
            finally:
                lease.stop()
        return True

    def playbook(self, run: Run) -> LoadedPlaybook:
        """Return the run's pinned playbook, parsed once per text."""
        cached = self._playbooks.get(run.playbook_hash)
        if cached is None:
            cached = parse_playbook(run.playbook_text, f"{run.playbook} (pinned in run {run.id})")
            self._playbooks[run.playbook_hash] = cached
        return cached


class _RunDriver:
    """Drives one claimed run step by step until it ends, parks, or the lease is lost."""

    def __init__(self, worker: Worker, sessions: sessionmaker[Session], run_id: str) -> None:
        self.worker_id = worker.worker_id
        self.worker = worker
        self.sessions = sessions
        self.run_id = run_id

    def drive(self) -> None:
        with self.sessions() as session:
            run = runs.get_run(session, self.run_id)
            if run.lease_owner != self.worker_id or run.status != conductor.RUNNING:
                return
            self.alert = template_view(
                run.alert_id, as_normalized(get_alert(session, run.alert_id))
            )
            self.alerts = _alert_views(session, run.id)
            self.view = {"id": run.id, "mode": run.mode, "playbook": run.playbook}
            self.env = RunEnv(
                run_id=run.id, mode=run.mode, settings=self.worker.settings, alert=self.alert,
                sessions=self.sessions,
            )
            state: dict[str, Any] | None = run.state
            try:
                self.playbook = self.worker.playbook(run)
                unloadable = None
            except PlaybookInvalid as exc:
                unloadable = str(exc)
        if unloadable is not None:
            self._fail_unloadable(unloadable)
            return
        trigger = self.playbook.spec.trigger
        # Alerts join runs of correlating and threshold triggers while they run: read them anew
        # before each step. Other runs see only the alert that started them.
        self.gains_alerts = trigger is not None and (
            trigger.correlate is not None or trigger.threshold is not None
        )
        record_id: str | None = None  # the journal row of the step about to run, if written
        while state is not None:
            step_id = conductor.next_step(self.playbook.spec, state)
            if step_id is None:
                return
            with bound(step_id=step_id):
                state, record_id = self._step(state, step_id, record_id)

    def _step(
        self, state: dict[str, Any], step_id: str, record_id: str | None
    ) -> tuple[dict[str, Any] | None, str | None]:
        """Execute one step and record it; return the state if the run goes on here."""
        step = self.playbook.spec.step(step_id)
        if self.gains_alerts:
            with self.sessions() as session:
                self.alerts = _alert_views(session, self.run_id)
        context = {
            **runner.template_context(alert=self.alert, state=state, run=self.view),
            "alerts": self.alerts,
        }
        if self._needs_approval(state, step_id):
            return self._ask_approval(state, step, context)
        if step.approval is not None:
            moved = approved.plan_moved(
                self.sessions, state, step, context, env=self._planning_env()
            )
            if moved is not None:
                return self._record(state, step_id, moved, record_id)
        elif covering := self.playbook.spec.covering(step_id):
            refused = approved.beyond_approval(
                self.sessions, state, step, context, covering, env=self._planning_env()
            )
            if refused is not None:
                return self._record(state, step_id, refused, record_id)
        if record_id is None:
            with self.sessions.begin() as session:
                record_id = runs.begin_step(
                    session=session, run_id=self.run_id, step_id=step_id, action=step.action,
                    worker=self.worker_id, round=conductor.round_of(state),
                    acting=_acts(step.action),
                )
            if record_id is None:
                return None, None
        started = time.perf_counter()
        outcome = runner.execute_step(
            step, context, run_id=self.run_id, mode=self.view["mode"], env=self.env
        )
        STEP_DURATION.labels(step.action, outcome.status).observe(time.perf_counter() - started)
        if outcome.error:
            log.info("step %s %s: %s", step_id, outcome.status, outcome.error["message"])
        return self._record(state, step_id, outcome, record_id)

    def _record(
        self,
        state: dict[str, Any],
        step_id: str,
        outcome: runner.StepOutcome,
        record_id: str | None = None,
    ) -> tuple[dict[str, Any] | None, str | None]:
        """Write the outcome, the new state and the audit row in one transaction."""
        spec = self.playbook.spec
        new_state = runner.record_outcome(spec, state, step_id, outcome)
        following = conductor.next_step(spec, new_state)
        next_step = None
        if following is not None and not self._needs_approval(new_state, following):
            action = spec.step(following).action
            next_step = (following, action, _acts(action))
        with self.sessions.begin() as session:
            if record_id is None:
                record_id = runs.begin_step(
                    session=session, run_id=self.run_id, step_id=step_id,
                    action=spec.step(step_id).action, worker=self.worker_id,
                    round=conductor.round_of(state), acting=_acts(spec.step(step_id).action),
                )
                if record_id is None:
                    return None, None
            finished = runs.finish_step(
                session=session, run_id=self.run_id, record_id=record_id,
                worker=self.worker_id, outcome=outcome, new_state=new_state, next_step=next_step,
            )
        if finished is None:
            log.warning("run %s left this worker during step %s (its lease expired, or alerts "
                        "joined and it starts over); result not recorded", self.run_id, step_id)
            return None, None
        if finished.status != conductor.RUNNING:
            return None, None
        return finished.state, finished.next_record_id

    def _needs_approval(self, state: dict[str, Any], step_id: str) -> bool:
        step = self.playbook.spec.step(step_id)
        return step.approval is not None and not conductor.is_approved(state, step_id)

    def _ask_approval(
        self, state: dict[str, Any], step: Step, context: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, str | None]:
        """Park the run on an approval request showing the step's resolved parameters.

        A step skipped or failed before any request is recorded like any other, and the run
        goes on with the next step's journal row (as ``_record`` returns it).
        """
        assert step.approval is not None
        try:
            if not runner.should_run(step, context):
                return self._record(state, step.id, runner.StepOutcome(status="skipped"))
            params = runner.resolve_params(step, context)
            covers = approved.covered_params(self.playbook.spec, step.approval.covers, context)
        except TemplateFailure as exc:
            outcome = runner.StepOutcome(
                status="failed", error={"code": "TemplateError", "message": str(exc)}
            )
            return self._record(state, step.id, outcome)
        try:
            plan = plans.step_plan(
                step_id=step.id, action=step.action, params=params,
                reason=step.approval.reason, env=self._planning_env(),
                briefing=plans.briefing(state["vars"]), covers=covers,
            )
        except ActionError as exc:
            # Nothing to approve: the step could not run as it stands (a target gone,
            # a protected principal). It fails now rather than after a human said yes.
            outcome = runner.StepOutcome(
                status="failed", params=params, error={"code": exc.code, "message": exc.message}
            )
            return self._record(state, step.id, outcome)
        settings = self.worker.settings
        with self.sessions.begin() as session:
            # Locked: an alert joining now starts the run over instead of meeting a stale plan.
            run = runs.hold(session, self.run_id, self.worker_id)
            if run is None:
                return None, None
            follows = run.state.get("follows")
            earlier = approvals.earlier_request(
                session, run_ids=[run.id, *([follows] if follows else [])], step_id=step.id
            )
            if earlier is not None:
                plan["widened"] = {"replaces": earlier.id, **plans.widening(earlier.plan, plan)}
            request = approvals.open_request(
                session=session, run=run, step_id=step.id, approval=step.approval, plan=plan,
                default_expiry=self.worker.approval_expiry, worker=self.worker_id,
                escalate_to=step.approval.escalate_to or settings.approval_escalate_to,
            )
            log.info("run %s waits for approval %s of step %s", self.run_id, request.id, step.id)
            notice = notices.Notice.of(session, request)
        targets = step.approval.notify or settings.approval_notify
        if targets:
            subject, text = notices.opened(notice, alert=self.alert, settings=settings)
            self.worker.tell(notice, "approval.notified", targets, subject, text)
        return None, None

    def _planning_env(self) -> RunEnv:
        # Plans only read; a dry-run environment makes the guard enforce it.
        return RunEnv(
            run_id=self.run_id, mode="dry_run", settings=self.worker.settings, alert=self.alert
        )

    def _fail_unloadable(self, message: str) -> None:
        with self.sessions.begin() as session:
            run = runs.get_run(session, self.run_id)
            new_state = conductor.apply(run.state, "fail")
            run.state = new_state
            run.status = new_state["status"]
            run.error = f"pinned playbook no longer loads: {message}"
            runs.finish_run(session=session, run=run, worker=self.worker_id)


def _acts(action: str) -> bool:
    """Whether a step of ``action`` changes AWS (plans to, in a dry run)."""
    return registry.get(action).mutating


def _alert_views(session: Session, run_id: str) -> list[dict[str, Any]]:
    """Return every alert of a run as templates see them (``alerts``)."""
    return [template_view(row.id, as_normalized(row)) for row in runs.run_alerts(session, run_id)]


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
