"""Leases on runs: claiming one, recording its steps under the lease, ending it, letting it go.

The worker's side of a run: it claims the run with a lease and renews it; each step it
records is fenced by the lease, so a worker that lost it (expired, given up, the run cancelled
or started over) writes nothing. The runs themselves, and what changes them from outside their
worker under the run's lock (a cancel, a start over), are ``engine.store.runs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from engine import audit, conductor, wakeup
from engine.runner import StepOutcome
from engine.store.models import Run, StepRecord
from engine.store.runs import interrupt_steps, lock
from engine.store.types import JSONType, UTCDateTime, new_id, settle_clock, utcnow

# The per-step statements, built once: Core on the tables, so each step pays for neither the
# ORM's bookkeeping nor statement construction (the engine's statement cache does the rest).
_runs = Run.__table__
_journal_rows = StepRecord.__table__
assert isinstance(_runs, Table) and isinstance(_journal_rows, Table)
_HOLDS_LEASE = and_(
    _runs.c.id == bindparam("run_id"),
    _runs.c.lease_owner == bindparam("worker"),
    _runs.c.status == conductor.RUNNING,
)
_TOUCH_RUN = update(_runs).where(_HOLDS_LEASE).values(updated_at=bindparam("now"))
# A step that changes AWS is about to begin: from now on the run is never started over.
_ACT_RUN = _TOUCH_RUN.values(acted_at=func.coalesce(_runs.c.acted_at, bindparam("now")))
_MOVE_RUN = (
    update(_runs)
    .where(_HOLDS_LEASE)
    .values(
        state=bindparam("new_state", type_=JSONType),
        status=bindparam("new_status"),
        updated_at=bindparam("now"),
    )
    .returning(_runs.c.alert_id)
)
_FINISH_RECORD = (
    update(_journal_rows)
    .where(_journal_rows.c.id == bindparam("record_id"))
    .values(
        status=bindparam("outcome_status"),
        params=bindparam("outcome_params", type_=JSONType),
        output=bindparam("outcome_output", type_=JSONType),
        error=bindparam("outcome_error", type_=JSONType),
        attempts=bindparam("outcome_attempts"),
        finished_at=bindparam("now", type_=UTCDateTime),
    )
    .returning(_journal_rows.c.step_id, _journal_rows.c.action)
)
_START_RECORD = insert(_journal_rows)


@dataclass(frozen=True)
class Claim:
    """A run this worker now holds, and whether it took it over from an expired lease."""

    run: Run
    reclaimed: bool


def claim_next_run(*, session: Session, worker: str, lease_seconds: float) -> Claim | None:
    """Claim the oldest runnable run (queued, or running under an expired lease), or None.

    A queued run is runnable from its ``not_before`` on, by the settle clock.
    """
    now = utcnow()
    settled = settle_clock.now()
    runnable = or_(
        and_(
            Run.status == conductor.QUEUED,
            or_(Run.not_before.is_(None), Run.not_before <= settled),
        ),
        and_(Run.status == conductor.RUNNING, Run.lease_expires_at < now),
    )
    query = select(Run).where(runnable).order_by(Run.queued_at).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    run = session.execute(query).scalars().first()
    if run is None:
        return None
    previous_owner = run.lease_owner
    event = "claim" if run.status == conductor.QUEUED else "reclaim"
    new_state = conductor.apply(run.state, event)
    run.state = new_state
    run.status = new_state["status"]
    run.lease_owner = worker
    run.lease_expires_at = now + timedelta(seconds=lease_seconds)
    run.updated_at = now
    interrupted = interrupt_steps(session, run.id, now) if event == "reclaim" else []
    if event == "reclaim":
        audit.record(
            session,
            actor=worker,
            verb="run.lease_expired",
            alert_id=run.alert_id,
            run_id=run.id,
            details={"previous_owner": previous_owner, "interrupted_steps": interrupted},
        )
    return Claim(run=run, reclaimed=event == "reclaim")


def renew_lease(*, session: Session, run_id: str, worker: str, lease_seconds: float) -> bool:
    """Extend the worker's lease on a run; False means the lease is no longer ours."""
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.lease_owner == worker)
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def begin_step(
    *,
    session: Session,
    run_id: str,
    step_id: str,
    action: str,
    worker: str,
    round: int = 1,
    acting: bool = False,
) -> str | None:
    """Journal a step about to execute; None, writing nothing, if the lease is not ours.

    ``acting``: the step changes AWS (or plans to, in a dry run); the run is marked as having
    acted, in the same fenced statement, so an alert joining later never starts it over.
    """
    held = session.connection().execute(
        _ACT_RUN if acting else _TOUCH_RUN, {"run_id": run_id, "worker": worker, "now": utcnow()}
    )
    if not held.rowcount:
        return None
    return _journal(session, run_id, step_id, action, worker, round)


def hold(session: Session, run_id: str, worker: str) -> Run | None:
    """Lock the run and return it while ``worker`` drives it (its lease, running), else None.

    Whoever changes a run's state from outside its worker (an alert starting it over, a
    cancel) takes the same lock first.
    """
    run = lock(session, run_id)
    if run.lease_owner != worker or run.status != conductor.RUNNING:
        return None
    return run


def fail_held(*, session: Session, run_id: str, worker: str, error: str) -> bool:
    """Fail a run ``worker`` drives (see ``hold``) with ``error``; False, changing nothing, if
    it no longer does (a cancel, a run started over, a lease lost). A step of it journaled as
    running is recorded as interrupted with the same error."""
    run = hold(session, run_id, worker)
    if run is None:
        return False
    now = utcnow()
    interrupt_steps(session, run_id, now, {"code": "WorkerError", "message": error})
    new_state = conductor.apply(run.state, "fail")
    run.state = new_state
    run.status = new_state["status"]
    run.error = error
    _finish(session, run, worker, now)
    return True


@dataclass(frozen=True)
class StepFinish:
    """A recorded step: the run's status and state after it, and the next step's journal row."""

    status: str
    state: dict[str, Any]
    next_record_id: str | None = None


def finish_step(
    *,
    session: Session,
    run_id: str,
    record_id: str,
    worker: str,
    outcome: StepOutcome,
    new_state: dict[str, Any],
    next_step: tuple[str, str, bool] | None = None,
) -> StepFinish | None:
    """Record a step's outcome, the run's new state and the audit event together.

    ``next_step`` (id, action, whether it changes AWS: see ``begin_step``) is journaled as
    started in the same transaction when the run goes on. Returns None, writing nothing, when
    the worker no longer holds the run's lease.
    """
    now = utcnow()
    # The hot path: one fenced UPDATE, no row loaded.
    connection = session.connection()
    moved = connection.execute(
        _MOVE_RUN,
        {"run_id": run_id, "worker": worker, "new_state": new_state,
         "new_status": new_state["status"], "now": now},
    ).first()
    cancelled: Run | None = None
    if moved is None:
        cancelled = lock(session, run_id)
        if cancelled.lease_owner != worker:
            return None
        alert_id = cancelled.alert_id
    else:
        alert_id = moved.alert_id
    record = connection.execute(
        _FINISH_RECORD,
        {"record_id": record_id, "outcome_status": outcome.status,
         "outcome_params": outcome.params, "outcome_output": outcome.output,
         "outcome_error": outcome.error, "outcome_attempts": outcome.attempts, "now": now},
    ).one()
    audit.record(
        session,
        actor=worker,
        verb=f"step.{outcome.status}",
        alert_id=alert_id,
        run_id=run_id,
        step_id=record.step_id,
        details={"action": record.action, "attempts": outcome.attempts, "error": outcome.error},
    )
    if cancelled is not None:  # cancelled while the step executed: the result is kept, no more
        release(session=session, run=cancelled)
        return StepFinish(status=cancelled.status, state=cancelled.state)
    status = new_state["status"]
    if status in conductor.TERMINAL:
        run = session.get(Run, run_id)
        assert run is not None
        _finish(session, run, worker, now)
    next_record_id = None
    if status == conductor.RUNNING and next_step is not None:
        step_id, action, acting = next_step
        if acting:
            connection.execute(_ACT_RUN, {"run_id": run_id, "worker": worker, "now": now})
        next_record_id = _journal(
            session, run_id, step_id, action, worker, conductor.round_of(new_state)
        )
    return StepFinish(status=status, state=new_state, next_record_id=next_record_id)


def _journal(
    session: Session, run_id: str, step_id: str, action: str, worker: str, round: int = 1
) -> str:
    record_id = new_id()
    session.connection().execute(
        _START_RECORD,
        {"id": record_id, "run_id": run_id, "step_id": step_id, "action": action,
         "status": "running", "worker": worker, "attempts": 0, "started_at": utcnow(),
         "round": round},
    )
    return record_id


def release(*, session: Session, run: Run) -> None:
    """Give up the lease on a run that is parked (waiting for approval)."""
    run.lease_owner = None
    run.lease_expires_at = None
    run.updated_at = utcnow()


def give_up_leases(
    *, session: Session, worker: str, reason: str, run_id: str | None = None
) -> list[str]:
    """Expire ``worker``'s leases on running runs (or on ``run_id``) now; return their ids.

    Any worker, this one included, takes them over at once instead of after the lease: a
    worker stopping between two steps hands its run over so, and one that lost the database
    in the middle of a run does once it is back. The worker that takes a run over records its
    step journaled as running as interrupted (``claim_next_run``).
    """
    query = select(Run).where(Run.lease_owner == worker, Run.status == conductor.RUNNING)
    ended = update(Run).where(Run.lease_owner == worker, Run.status.in_(conductor.TERMINAL))
    if run_id is not None:
        query = query.where(Run.id == run_id)
        ended = ended.where(Run.id == run_id)
    # Runs cancelled while this worker held them (and could not say so) are let go too.
    session.execute(ended.values(lease_owner=None, lease_expires_at=None))
    held = session.execute(query.with_for_update()).scalars().all()
    now = utcnow()
    for run in held:
        run.lease_expires_at = run.updated_at = now
        audit.record(session, actor=worker, verb="run.released", alert_id=run.alert_id,
                     run_id=run.id, details={"reason": reason})
    if held:
        wakeup.mark_runnable(session)
    return [run.id for run in held]


def let_go(*, session: Session, run_id: str, worker: str) -> None:
    """Clear ``worker``'s lease on a run that ended without it (cancelled while it held it)."""
    session.execute(
        update(Run)
        .where(Run.id == run_id, Run.lease_owner == worker, Run.status.in_(conductor.TERMINAL))
        .values(lease_owner=None, lease_expires_at=None)
    )


def _finish(session: Session, run: Run, worker: str, now: datetime) -> None:
    run.lease_owner = None
    run.lease_expires_at = None
    if run.finished_at is None:
        run.finished_at = now
    if run.status == conductor.FAILED and run.error is None:
        run.error = ending_failure(run.state)
    details: dict[str, Any] = {"error": run.error} if run.error else {}
    left_undone = conductor.left_undone(run.state)
    if left_undone:  # run.succeeded with outcome partial, say, and what was not done
        details.update(outcome=conductor.outcome(run.state), left_undone=left_undone)
    audit.record(
        session,
        actor=worker,
        verb=f"run.{run.status}",
        alert_id=run.alert_id,
        run_id=run.id,
        details=details,
    )


def ending_failure(state: dict[str, Any]) -> str | None:
    """Say which step's failure ended a failed run, and how: ``step: code: message``.

    The conductor names that step (``ended_by``); a failed ``on_error: continue`` step before
    it is not to blame. A state stored as JSONB keeps no key order, so "the last failed step"
    means nothing; a run failed before ``ended_by`` existed is named only if one step failed.
    """
    steps = state["steps"]
    step_id = conductor.ended_by(state)
    if step_id is None:
        failed = [sid for sid, s in steps.items()
                  if s.get("status") == conductor.FAILED and s.get("error")]
        step_id = failed[0] if len(failed) == 1 else None
    error = (steps.get(step_id) or {}).get("error") if step_id is not None else None
    if not error:
        return None
    return f"{step_id}: {error['code']}: {error['message']}"
