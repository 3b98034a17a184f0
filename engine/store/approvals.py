"""Approval requests: opened, superseded, settled with exactly one outcome whoever races.

Who may decide a request, and recording their decisions, is ``engine.store.deciders``; an
expired request is settled here as its ``on_timeout`` says.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine import audit, conductor, plans, wakeup
from engine.plans import plan_hash
from engine.spec import Approval
from engine.store.errors import Conflict, NotFound
from engine.store.leases import release
from engine.store.models import ApprovalRequest, Run
from engine.store.runs import lock as lock_run
from engine.store.types import utcnow

PENDING = "pending"
SUPERSEDED = "superseded"


def open_request(
    *,
    session: Session,
    run: Run,
    step_id: str,
    approval: Approval,
    plan: dict[str, Any],
    default_expiry: float,
    worker: str,
    escalate_to: list[str] | None = None,
) -> ApprovalRequest:
    """Park the run and open an approval request showing what the step will do."""
    now = utcnow()
    expires_in = approval.expires_in if approval.expires_in is not None else default_expiry
    escalate_at = None
    if approval.escalate_after is not None and approval.escalate_after < expires_in:
        escalate_at = now + timedelta(seconds=approval.escalate_after)
    request = ApprovalRequest(
        run_id=run.id,
        step_id=step_id,
        status=PENDING,
        plan=plan,
        plan_hash=plan_hash(plan),
        required=approval.required,
        approvers=approval.approvers,
        created_at=now,
        expires_at=now + timedelta(seconds=expires_in),
        on_timeout=approval.on_timeout,
        escalate_at=escalate_at,
        escalate_to=(escalate_to or []) if escalate_at is not None else None,
    )
    session.add(request)
    session.flush()
    new_state = conductor.approval_requested(run.state, step_id, request.id)
    run.state = new_state
    run.status = new_state["status"]
    release(session=session, run=run)
    audit.record(
        session,
        actor=worker,
        verb="approval.requested",
        alert_id=run.alert_id,
        run_id=run.id,
        step_id=step_id,
        details={
            "request": request.id,
            "plan_hash": request.plan_hash,
            "required": request.required,
            "approvers": request.approvers,
            "expires_at": request.expires_at.isoformat(),
            "on_timeout": request.on_timeout,
            "escalate_at": request.escalate_at.isoformat() if request.escalate_at else None,
        },
    )
    return request


def supersede(
    *, session: Session, request_id: str, plan: dict[str, Any], actor: str
) -> ApprovalRequest:
    """Replace a pending request whose plan changed by a new one showing the new plan.

    Decisions already made on the old plan do not carry over: they approved something else.
    """
    run = lock_run_of(session, request_id)
    old = session.execute(
        select(ApprovalRequest).where(ApprovalRequest.id == request_id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalars().one()
    if old.status != PENDING:
        raise Conflict(f"approval request {request_id} is already {old.status}")
    old.status = SUPERSEDED
    old.decided_at = utcnow()
    session.flush()  # the old one stops being pending before the new one starts
    new = ApprovalRequest(
        run_id=old.run_id,
        step_id=old.step_id,
        status=PENDING,
        plan=plan,
        plan_hash=plan_hash(plan),
        required=old.required,
        approvers=old.approvers,
        created_at=utcnow(),
        expires_at=old.expires_at,
        on_timeout=old.on_timeout,
        escalate_at=old.escalate_at,
        escalated_at=old.escalated_at,
        escalate_to=old.escalate_to,
    )
    session.add(new)
    session.flush()
    run.state = conductor.approval_replaced(run.state, old.step_id, new.id)
    audit.record(
        session,
        actor=actor,
        verb="approval.superseded",
        alert_id=run.alert_id,
        run_id=run.id,
        step_id=old.step_id,
        details={
            "request": old.id,
            "replaced_by": new.id,
            "old_plan_hash": old.plan_hash,
            "plan_hash": new.plan_hash,
            "changes": plans.changes(old.plan, plan),
        },
    )
    return new


def get_request(session: Session, request_id: str) -> ApprovalRequest:
    """Return one approval request or raise ``NotFound``."""
    request = session.get(ApprovalRequest, request_id)
    if request is None:
        raise NotFound(f"no approval request {request_id!r}")
    return request


def earlier_request(
    session: Session, *, run_ids: Sequence[str], step_id: str
) -> ApprovalRequest | None:
    """The newest request of ``step_id`` in these runs (a run and the run it follows up)."""
    query = (
        select(ApprovalRequest)
        .where(ApprovalRequest.run_id.in_(run_ids), ApprovalRequest.step_id == step_id)
        .order_by(ApprovalRequest.created_at.desc(), ApprovalRequest.id.desc())
    )
    return session.execute(query.limit(1)).scalars().first()


def list_requests(
    session: Session, *, status: str | None = None, limit: int = 500,
    before_id: str | None = None,
) -> Sequence[ApprovalRequest]:
    """Return approval requests, newest first; ``before_id``: only those older than that one."""
    query = select(ApprovalRequest).order_by(ApprovalRequest.id.desc()).limit(limit)
    if status:
        query = query.where(ApprovalRequest.status == status)
    if before_id is not None:
        query = query.where(ApprovalRequest.id < before_id)
    return session.execute(query).scalars().all()


def count_pending(session: Session) -> int:
    """Return how many approval requests wait for a decision."""
    query = select(func.count()).select_from(ApprovalRequest)
    return int(session.execute(query.where(ApprovalRequest.status == PENDING)).scalar_one())


def expire_due(*, session: Session, actor: str) -> list[str]:
    """Settle every pending request past its expiry as its ``on_timeout`` says; return their ids.

    ``on_timeout: approve`` counts as an approval, recorded as implicit in the audit log.
    """
    due_ids = session.execute(
        select(ApprovalRequest.id)
        .where(ApprovalRequest.status == PENDING, ApprovalRequest.expires_at <= utcnow())
        .order_by(ApprovalRequest.run_id, ApprovalRequest.id)  # every worker locks in one order
    ).scalars().all()
    settled = []
    for request_id in due_ids:
        run = lock_run_of(session, request_id)
        request = session.execute(
            select(ApprovalRequest).where(ApprovalRequest.id == request_id).with_for_update()
            .execution_options(populate_existing=True)
        ).scalars().one()
        if request.status != PENDING:  # decided, superseded or expired meanwhile
            continue
        if request.on_timeout == "approve":
            settle(session, request, run, approved=True, actor=actor, implicit=True)
        else:
            settle(session, request, run, approved=False, actor=actor, expired=True)
        settled.append(request_id)
    return settled


def lock_run_of(session: Session, request_id: str) -> Run:
    """Lock the run of a request before the request itself.

    Run first, then its requests: the order every writer of both takes (an alert starting the
    run over, a cancel, a decision, an expiry), so no two of them wait for each other.
    """
    run_id = session.execute(
        select(ApprovalRequest.run_id).where(ApprovalRequest.id == request_id)
    ).scalar()
    if run_id is None:
        raise NotFound(f"no approval request {request_id!r}")
    return lock_run(session, run_id)


def claim_escalations(session: Session) -> Sequence[ApprovalRequest]:
    """Mark pending requests past their escalation time as escalated, and return them.

    The claim commits before anyone is told, so no lock is held while messages go out; a
    worker that dies in between loses that one escalation (the request itself stays open).
    """
    due = session.execute(
        select(ApprovalRequest)
        .where(
            ApprovalRequest.status == PENDING,
            ApprovalRequest.escalate_at <= utcnow(),
            ApprovalRequest.escalated_at.is_(None),
        )
        .with_for_update(skip_locked=True)
    ).scalars().all()
    for request in due:
        request.escalated_at = utcnow()
    return due


def record_notice(
    *,
    session: Session,
    request_id: str,
    verb: str,
    actor: str,
    sent: list[str],
    failed: list[str],
) -> None:
    """Audit who was told about a request (``approval.notified`` or ``approval.escalated``)."""
    request = get_request(session, request_id)
    run = session.get(Run, request.run_id)
    assert run is not None
    audit.record(
        session,
        actor=actor,
        verb=verb,
        alert_id=run.alert_id,
        run_id=run.id,
        step_id=request.step_id,
        details={"request": request.id, "notified": sent, "failed": failed},
    )


def settle(
    session: Session,
    request: ApprovalRequest,
    run: Run,
    *,
    approved: bool,
    actor: str,
    expired: bool = False,
    implicit: bool = False,
) -> None:
    """Settle a pending request (approved, else expired or rejected) and resume or end its run.

    A request settled meanwhile raises ``Conflict``. The caller holds the run's lock first
    (``lock_run_of``).
    """
    status = "approved" if approved else ("expired" if expired else "rejected")
    now = utcnow()
    # The conditional update is what makes the outcome unique, whatever the isolation level.
    settled = session.execute(
        update(ApprovalRequest)
        .where(ApprovalRequest.id == request.id, ApprovalRequest.status == PENDING)
        .values(status=status, decided_at=now)
        .execution_options(synchronize_session="fetch")
    )
    if not settled.rowcount:  # type: ignore[attr-defined]
        raise Conflict(f"approval request {request.id} was decided concurrently")
    if run.status != conductor.WAITING_APPROVAL:
        return  # cancelled meanwhile: nothing to resume
    new_state = conductor.approval_decided(
        run.state, request.step_id, approved=approved, expired=expired
    )
    run.state = new_state
    run.status = new_state["status"]
    run.updated_at = now
    if approved:
        run.queued_at = now
        wakeup.mark_runnable(session)
    else:
        run.finished_at = now
    audit.record(
        session,
        actor=actor,
        verb=f"approval.{status}",
        alert_id=run.alert_id,
        run_id=run.id,
        step_id=request.step_id,
        details={"request": request.id, "run_status": run.status}
        | ({"implicit": True, "reason": "expired with on_timeout: approve"} if implicit else {}),
    )
