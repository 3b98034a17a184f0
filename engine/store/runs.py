"""Runs and their journal: queueing, claiming with a lease, recording steps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from engine import audit, conductor, containment, wakeup
from engine.modes import MODES
from engine.playbooks import LoadedPlaybook
from engine.runner import StepOutcome
from engine.store.errors import NotFound
from engine.store.models import Alert, ApprovalRequest, Run, RunAlert, StepRecord
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


def queue_run(
    *,
    session: Session,
    alert_id: str,
    playbook: LoadedPlaybook,
    mode: str,
    started_by: str,
    at: datetime | None = None,
    trigger: int | None = None,
) -> Run:
    """Queue a run of ``playbook`` on an alert, pinning the playbook's text and hash.

    The alert is the run's first in ``run_alerts``; others may join it later (``join_run``).
    ``at``: when it is queued (default: now; a trigger gives the settle clock's time).
    ``trigger``: the place in the playbook's list of the trigger that started it, kept in the
    audit event (None: started by hand, or a follow-up).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    state = conductor.initial_state(playbook.spec)
    run = Run(
        alert_id=alert_id,
        playbook=playbook.spec.name,
        playbook_hash=playbook.hash,
        playbook_text=playbook.text,
        mode=mode,
        status=state["status"],
        state=state,
        started_by=started_by,
    )
    if at is not None:
        run.created_at = run.queued_at = run.updated_at = at
    session.add(run)
    session.flush()
    session.add(RunAlert(run_id=run.id, alert_id=alert_id))
    audit.record(
        session,
        actor=started_by,
        verb="run.queued",
        alert_id=alert_id,
        run_id=run.id,
        details={"playbook": run.playbook, "playbook_hash": run.playbook_hash, "mode": mode,
                 **({"trigger": trigger} if trigger is not None else {})},
    )
    wakeup.mark_runnable(session)
    containment.queued(session, run)
    return run


def join_run(
    *, session: Session, run: Run, alert_id: str, actor: str, details: dict[str, Any]
) -> None:
    """Add an alert to a run's alerts (a correlated alert, an event of a fired burst)."""
    session.add(RunAlert(run_id=run.id, alert_id=alert_id))
    audit.record(session, actor=actor, verb="alert.correlated", alert_id=alert_id, run_id=run.id,
                 details={"playbook": run.playbook, **details})


def run_alerts(session: Session, run_id: str) -> Sequence[Alert]:
    """Return every alert a run sees, in event time (received time for those without)."""
    return session.execute(_alerts_of(run_id, Alert)).scalars().all()


def run_alert_ids(session: Session, run_id: str) -> list[str]:
    """Return the ids of every alert a run sees, in the order ``run_alerts`` gives them."""
    return list(session.execute(_alerts_of(run_id, Alert.id)).scalars())


def _alerts_of(run_id: str, *columns: Any) -> Select[Any]:
    return (
        select(*columns)
        .join(RunAlert, RunAlert.alert_id == Alert.id)
        .where(RunAlert.run_id == run_id)
        .order_by(func.coalesce(Alert.event_time, Alert.first_seen), Alert.id)
    )


def get_run(session: Session, run_id: str) -> Run:
    """Return one run or raise ``NotFound``."""
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}")
    return run


def list_runs(
    session: Session,
    *,
    status: str | None = None,
    alert_id: str | None = None,
    playbook: str | None = None,
    principal: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    before_id: str | None = None,
) -> Sequence[Run]:
    """Return runs, newest first, optionally filtered.

    ``alert_id``: runs that see that alert; ``principal``: runs that see an alert whose
    principal's name or ARN holds this text (any case); ``since``/``until``: created in
    [since, until); ``before_id``: only those older than that run (the keyset of a page).
    """
    query = select(Run).order_by(Run.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(Run.id < before_id)
    if status:
        query = query.where(Run.status == status)
    if alert_id:
        query = query.where(
            Run.id.in_(select(RunAlert.run_id).where(RunAlert.alert_id == alert_id))
        )
    if playbook:
        query = query.where(Run.playbook == playbook)
    if principal:
        wanted = f"%{_like_escaped(principal.lower())}%"
        named = or_(*(func.lower(Alert.principal[key].as_string()).like(wanted, escape="\\")
                      for key in ("name", "arn")))
        query = query.where(Run.id.in_(
            select(RunAlert.run_id).join(Alert, Alert.id == RunAlert.alert_id).where(named)
        ))
    if since is not None:
        query = query.where(Run.created_at >= since)
    if until is not None:
        query = query.where(Run.created_at < until)
    return session.execute(query).scalars().all()


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def count_by_status(session: Session) -> dict[str, int]:
    """Return how many runs are in each status (every status listed, zeros included)."""
    counts = dict.fromkeys(conductor.TRANSITIONS, 0)
    rows = session.execute(select(Run.status, func.count()).group_by(Run.status)).all()
    counts.update({status: int(count) for status, count in rows})
    return counts


def journal(session: Session, run_id: str) -> Sequence[StepRecord]:
    """Return a run's step journal in the order the steps started."""
    query = select(StepRecord).where(StepRecord.run_id == run_id).order_by(StepRecord.id)
    return session.execute(query).scalars().all()


def cancel_run(*, session: Session, run_id: str, actor: str) -> Run:
    """Cancel a run that has not ended; a step already executing finishes and is recorded."""
    run = _locked(session, run_id)
    new_state = conductor.apply(run.state, "cancel")
    run.state = new_state
    run.status = new_state["status"]
    now = utcnow()
    run.updated_at = run.finished_at = now
    if run.lease_owner is None:
        run.lease_expires_at = None
    # A cancelled run's open approval requests can no longer be decided.
    closed = session.execute(
        update(ApprovalRequest)
        .where(ApprovalRequest.run_id == run.id, ApprovalRequest.status == "pending")
        .values(status="cancelled", decided_at=now)
        .execution_options(synchronize_session="fetch")
    )
    audit.record(
        session, actor=actor, verb="run.cancelled", alert_id=run.alert_id, run_id=run.id,
        details={"approvals_closed": closed.rowcount},  # type: ignore[attr-defined]
    )
    return run


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
    interrupted = _interrupt_steps(session, run.id, now) if event == "reclaim" else []
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
    run = _locked(session, run_id)
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
    _interrupt_steps(session, run_id, now, {"code": "WorkerError", "message": error})
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
        cancelled = _locked(session, run_id)
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


def _interrupt_steps(
    session: Session, run_id: str, now: datetime, why: dict[str, str] | None = None
) -> list[str]:
    rows = session.execute(
        select(StepRecord).where(StepRecord.run_id == run_id, StepRecord.status == "running")
    ).scalars().all()
    for row in rows:
        row.status = "interrupted"
        row.finished_at = now
        row.error = why or {
            "code": "LeaseExpired", "message": f"worker {row.worker} stopped renewing"
        }
    return [row.step_id for row in rows]


def lock(session: Session, run_id: str) -> Run:
    """Return the run locked for this transaction (whoever else changes it waits)."""
    return _locked(session, run_id)


def start_over(
    *,
    session: Session,
    run: Run,
    new_state: dict[str, Any],
    not_before: datetime | None,
    actor: str,
    alert_id: str,
) -> None:
    """Queue a locked run anew in ``new_state`` (a new round): it loses its worker, its step
    in flight is recorded as interrupted, and its pending approval requests are superseded."""
    now = utcnow()
    previous = run.status
    interrupted = _interrupt_steps(
        session, run.id, now,
        {"code": "Rejudged", "message": "alerts joined the run: it starts over on all of them"},
    )
    superseded = session.execute(
        update(ApprovalRequest)
        .where(ApprovalRequest.run_id == run.id, ApprovalRequest.status == "pending")
        .values(status="superseded", decided_at=now)
        .returning(ApprovalRequest.id)
    ).scalars().all()
    run.state = new_state
    run.status = new_state["status"]
    run.lease_owner = None
    run.lease_expires_at = None
    run.queued_at = run.updated_at = now
    run.not_before = not_before
    audit.record(
        session, actor=actor, verb="run.rejudged", alert_id=alert_id, run_id=run.id,
        details={
            "round": conductor.round_of(new_state),
            "was": previous,
            "interrupted_steps": interrupted,
            "approvals_superseded": list(superseded),
            "not_before": not_before.isoformat() if not_before else None,
        },
    )
    wakeup.mark_runnable(session)


def _locked(session: Session, run_id: str) -> Run:
    run = session.execute(
        select(Run).where(Run.id == run_id).with_for_update()
        .execution_options(populate_existing=True)  # as it is once locked, not as first read
    ).scalars().first()
    if run is None:
        raise NotFound(f"no run {run_id!r}")
    return run
