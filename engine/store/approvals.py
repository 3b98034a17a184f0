"""Approval requests and decisions: exactly one outcome, whoever races."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import audit, conductor, wakeup
from engine.spec import Approval
from engine.store.errors import Conflict, Forbidden, NotFound
from engine.store.models import ApprovalDecision, ApprovalRequest, Run
from engine.store.runs import release
from engine.store.types import utcnow

PENDING = "pending"


def plan_hash(plan: dict[str, Any]) -> str:
    """Hash a plan canonically; a decision names the hash it saw."""
    body = json.dumps(plan, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def open_request(
    *,
    session: Session,
    run: Run,
    step_id: str,
    approval: Approval,
    plan: dict[str, Any],
    default_expiry: float,
    worker: str,
) -> ApprovalRequest:
    """Park the run and open an approval request showing what the step will do."""
    now = utcnow()
    expires_in = approval.expires_in if approval.expires_in is not None else default_expiry
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
        },
    )
    return request


def get_request(session: Session, request_id: str) -> ApprovalRequest:
    """Return one approval request or raise ``NotFound``."""
    request = session.get(ApprovalRequest, request_id)
    if request is None:
        raise NotFound(f"no approval request {request_id!r}")
    return request


def list_requests(session: Session, *, status: str | None = None) -> Sequence[ApprovalRequest]:
    """Return approval requests, newest first."""
    query = select(ApprovalRequest).order_by(ApprovalRequest.id.desc()).limit(500)
    if status:
        query = query.where(ApprovalRequest.status == status)
    return session.execute(query).scalars().all()


def count_pending(session: Session) -> int:
    """Return how many approval requests wait for a decision."""
    query = select(func.count()).select_from(ApprovalRequest)
    return int(session.execute(query.where(ApprovalRequest.status == PENDING)).scalar_one())


def decisions(session: Session, request_id: str) -> Sequence[ApprovalDecision]:
    """Return the decisions made on a request so far."""
    query = select(ApprovalDecision).where(ApprovalDecision.request_id == request_id)
    return session.execute(query.order_by(ApprovalDecision.id)).scalars().all()


def may_decide(request: ApprovalRequest, *, actor: str, role: str) -> bool:
    """Tell whether a token of this name and role is one of the request's approvers."""
    if role not in ("responder", "admin"):
        return False
    return not request.approvers or actor in request.approvers or role in request.approvers


def decide(
    *,
    session: Session,
    request_id: str,
    actor: str,
    role: str,
    decision: str,
    reason: str,
    seen_plan_hash: str | None = None,
) -> ApprovalRequest:
    """Record one approver's decision; apply the outcome when it settles the request."""
    request = session.execute(
        select(ApprovalRequest).where(ApprovalRequest.id == request_id).with_for_update()
    ).scalars().first()
    if request is None:
        raise NotFound(f"no approval request {request_id!r}")
    if request.status != PENDING:
        raise Conflict(f"approval request {request_id} is already {request.status}")
    if not may_decide(request, actor=actor, role=role):
        raise Forbidden(f"{actor!r} is not an approver of request {request_id}")
    run = session.get(Run, request.run_id)
    assert run is not None
    if run.status != conductor.WAITING_APPROVAL:
        raise Conflict(f"run {run.id} is {run.status}; its approval can no longer be decided")
    if run.started_by == actor:
        raise Forbidden(f"{actor!r} started run {run.id} and cannot approve it")
    if seen_plan_hash is not None and seen_plan_hash != request.plan_hash:
        raise Conflict(f"plan hash {seen_plan_hash} is not the plan of request {request_id}")
    if utcnow() >= request.expires_at:
        raise Conflict(f"approval request {request_id} expired at {request.expires_at}")
    try:
        with session.begin_nested():
            session.add(
                ApprovalDecision(
                    request_id=request.id,
                    decision=decision,
                    actor=actor,
                    reason=reason,
                    plan_hash=request.plan_hash,
                )
            )
    except IntegrityError:
        raise Conflict(f"{actor!r} has already decided request {request_id}") from None
    audit.record(
        session,
        actor=actor,
        verb=f"approval.{decision}",
        alert_id=run.alert_id,
        run_id=run.id,
        step_id=request.step_id,
        details={"request": request.id, "reason": reason, "plan_hash": request.plan_hash},
    )
    if decision == "reject":
        _settle(session, request, run, approved=False, actor=actor)
        return request
    approvals = session.execute(
        select(func.count()).where(
            ApprovalDecision.request_id == request.id, ApprovalDecision.decision == "approve"
        )
    ).scalar_one()
    if approvals >= request.required:
        _settle(session, request, run, approved=True, actor=actor)
    return request


def expire_due(*, session: Session, actor: str) -> list[str]:
    """Reject every pending request past its expiry (``on_timeout: reject``); return their ids."""
    due = session.execute(
        select(ApprovalRequest)
        .where(ApprovalRequest.status == PENDING, ApprovalRequest.expires_at <= utcnow())
        .with_for_update(skip_locked=True)
    ).scalars().all()
    for request in due:
        run = session.get(Run, request.run_id)
        assert run is not None
        _settle(session, request, run, approved=False, actor=actor, expired=True)
    return [request.id for request in due]


def _settle(
    session: Session,
    request: ApprovalRequest,
    run: Run,
    *,
    approved: bool,
    actor: str,
    expired: bool = False,
) -> None:
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
        details={"request": request.id, "run_status": run.status},
    )
