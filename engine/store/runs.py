"""Runs and their journal: queueing, joining alerts, reading, cancelling, starting over.

A worker's side of a run (claiming it under a lease, journaling its steps, ending it) is
``engine.store.leases``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session

from engine import audit, conductor, containment, wakeup
from engine.modes import MODES
from engine.playbooks import LoadedPlaybook
from engine.store.errors import NotFound
from engine.store.models import Alert, ApprovalRequest, Run, RunAlert, StepRecord
from engine.store.types import utcnow


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


def interrupt_steps(
    session: Session, run_id: str, now: datetime, why: dict[str, str] | None = None
) -> list[str]:
    """Record a run's steps journaled as running as interrupted, ``why`` (default: its worker
    stopped renewing its lease); return their step ids."""
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
    interrupted = interrupt_steps(
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
