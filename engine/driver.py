"""Driving one claimed run step by step: approvals asked, approved plans checked, each step
recorded with the run's new state, until the run ends, parks or leaves this worker.

The worker (engine.worker) claims runs and keeps their leases; a ``RunDriver`` takes one of them
from its claim to where it stops. It leaves a run that is no longer its own (cancelled, started
over, taken over) at once, and hands it over between two steps when its worker is stopping.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from actions import registry
from actions.base import ActionError, RunEnv
from core.logs import bound, fields
from core.settings import Settings
from engine import approval_notices as notices
from engine import approved, conductor, containment, plans, runner
from engine.alerts import template_view
from engine.metrics import STEP_DURATION
from engine.playbooks import LoadedPlaybook, PlaybookInvalid
from engine.spec import Step
from engine.store import approvals, leases, runs
from engine.store.alert_reads import as_normalized, get_alert
from engine.store.models import Run
from engine.store.types import utcnow
from engine.templates import TemplateFailure

log = logging.getLogger("riposte.worker")


class Driving(Protocol):
    """What a driver needs of its worker."""

    worker_id: str
    settings: Settings
    approval_expiry: float

    @property
    def stopping(self) -> bool: ...

    def playbook(self, run: Run) -> LoadedPlaybook: ...

    def tell(
        self, notice: notices.Notice, verb: str, targets: list[str], subject: str, text: str
    ) -> None: ...


class RunDriver:
    """Drives one claimed run step by step until it ends, parks, or the lease is lost."""

    def __init__(self, worker: Driving, sessions: sessionmaker[Session], run_id: str) -> None:
        self.worker_id = worker.worker_id
        self.worker = worker
        self.sessions = sessions
        self.run_id = run_id

    def drive(self) -> None:
        with self.sessions() as session:
            run = runs.get_run(session, self.run_id)
            if run.lease_owner != self.worker_id or run.status != conductor.RUNNING:
                session.close()  # its transaction ends before let_go's begins (one connection)
                self._let_go()  # cancelled right after the claim
                return
            self.alert = template_view(
                run.alert_id, as_normalized(get_alert(session, run.alert_id))
            )
            self.alerts = alert_views(session, run.id)
            self.view = {"id": run.id, "mode": run.mode, "playbook": run.playbook}
            # Time to contain (engine.containment): whether this run counts, since when queued.
            self.measured, self.queued_at = containment.counts(run), run.created_at
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
        # Alerts join runs of correlating and threshold triggers while they run: read them anew
        # before each step. Other runs see only the alert that started them.
        self.gains_alerts = any(
            trigger.correlate is not None or trigger.threshold is not None
            for trigger in self.playbook.spec.triggers
        )
        record_id: str | None = None  # the journal row of the step about to run, if written
        while state is not None:
            step_id = conductor.next_step(self.playbook.spec, state)
            if step_id is None:
                return
            if self.worker.stopping:  # between two steps: another worker goes on at once
                self._hand_over(step_id)
                return
            with bound(step_id=step_id):
                state, record_id = self._step(state, step_id, record_id)

    def _step(
        self, state: dict[str, Any], step_id: str, record_id: str | None
    ) -> tuple[dict[str, Any] | None, str | None]:
        """Execute one step and record it; return the state if the run goes on here."""
        step = self.playbook.spec.step(step_id)
        if self.measured and not state["steps"] and conductor.round_of(state) == 1:
            containment.observe(self.view["playbook"], containment.STARTED, self.queued_at,
                                utcnow())
        if self.gains_alerts:
            with self.sessions() as session:
                self.alerts = alert_views(session, self.run_id)
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
                record_id = leases.begin_step(
                    session=session, run_id=self.run_id, step_id=step_id, action=step.action,
                    worker=self.worker_id, round=conductor.round_of(state),
                    acting=acts(step.action),
                )
                if record_id is None:  # not ours any more: cancelled, started over, taken over
                    leases.let_go(session=session, run_id=self.run_id, worker=self.worker_id)
            if record_id is None:
                return None, None
        log.info("step %s started: %s", step_id, step.action,
                 extra=fields(event="step.started", action=step.action, mode=self.view["mode"]))
        started = time.perf_counter()
        outcome = runner.execute_step(
            step, context, run_id=self.run_id, mode=self.view["mode"], env=self.env
        )
        duration = time.perf_counter() - started
        STEP_DURATION.labels(step.action, outcome.status).observe(duration)
        return self._record(state, step_id, outcome, record_id, duration=duration)

    def _record(
        self,
        state: dict[str, Any],
        step_id: str,
        outcome: runner.StepOutcome,
        record_id: str | None = None,
        *,
        duration: float | None = None,
    ) -> tuple[dict[str, Any] | None, str | None]:
        """Write the outcome, the new state and the audit row in one transaction."""
        spec = self.playbook.spec
        new_state = runner.record_outcome(spec, state, step_id, outcome)
        log_outcome(spec.step(step_id), outcome, duration=duration,
                    ends_run=conductor.ended_by(new_state) == step_id)
        following = conductor.next_step(spec, new_state)
        next_step = None
        if following is not None and not self._needs_approval(new_state, following):
            action = spec.step(following).action
            next_step = (following, action, acts(action))
        with self.sessions.begin() as session:
            if record_id is None:
                record_id = leases.begin_step(
                    session=session, run_id=self.run_id, step_id=step_id,
                    action=spec.step(step_id).action, worker=self.worker_id,
                    round=conductor.round_of(state), acting=acts(spec.step(step_id).action),
                )
                if record_id is None:
                    leases.let_go(session=session, run_id=self.run_id, worker=self.worker_id)
                    return None, None
            finished = leases.finish_step(
                session=session, run_id=self.run_id, record_id=record_id,
                worker=self.worker_id, outcome=outcome, new_state=new_state, next_step=next_step,
            )
            if finished is not None and finished.status in conductor.TERMINAL:
                ended = session.get(Run, self.run_id)
                if ended is not None:
                    containment.ended(session, ended, conductor.round_of(new_state))
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
            run = leases.hold(session, self.run_id, self.worker_id)
            if run is None:  # cancelled (or started over) while the plan was made
                leases.let_go(session=session, run_id=self.run_id, worker=self.worker_id)
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
            containment.approval_requested(session, run, request)
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
            # Locked and checked: a cancel may have come since the run was read.
            failed = leases.fail_held(
                session=session, run_id=self.run_id, worker=self.worker_id,
                error=f"pinned playbook no longer loads: {message}",
            )
            if not failed:
                leases.let_go(session=session, run_id=self.run_id, worker=self.worker_id)

    def _let_go(self) -> None:
        with self.sessions.begin() as session:
            leases.let_go(session=session, run_id=self.run_id, worker=self.worker_id)

    def _hand_over(self, step_id: str) -> None:
        with self.sessions.begin() as session:
            handed = leases.give_up_leases(
                session=session, worker=self.worker_id, run_id=self.run_id,
                reason=f"the worker is stopping; step {step_id} is next",
            )
        if handed:
            log.info("worker %s stopping: run %s handed over before step %s", self.worker_id,
                     self.run_id, step_id)


def log_outcome(
    step: Step, outcome: runner.StepOutcome, *, duration: float | None, ends_run: bool
) -> None:
    """Log a step's outcome: a failure at ``error`` if it ends the run, else at ``warning``."""
    error = outcome.error or {}
    level = logging.INFO
    if outcome.status == conductor.FAILED:
        level = logging.ERROR if ends_run else logging.WARNING
    then = ""
    if outcome.status == conductor.FAILED:
        then = (" (the run fails)" if ends_run else " (the run goes on)"
                if step.on_error == "continue" else f" (the run goes on at {step.on_error})")
    said = f": {error.get('code')}: {error.get('message')}" if error else ""
    log.log(level, "step %s %s%s%s", step.id, outcome.status, said, then, extra=fields(
        event=f"step.{outcome.status}", action=step.action, status=outcome.status,
        attempts=outcome.attempts,
        duration_seconds=round(duration, 3) if duration is not None else None,
        error_code=error.get("code"), on_error=step.on_error))


def acts(action: str) -> bool:
    """Whether a step of ``action`` changes AWS (plans to, in a dry run)."""
    return registry.get(action).mutating


def alert_views(session: Session, run_id: str) -> list[dict[str, Any]]:
    """Return every alert of a run as templates see them (``alerts``)."""
    return [template_view(row.id, as_normalized(row)) for row in runs.run_alerts(session, run_id)]
