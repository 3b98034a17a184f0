"""Approval requests and decisions: exactly one outcome, whoever races."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import audit, conductor, plans, wakeup
from engine.identities import DECIDING_ROLES, read_approver
from engine.plans import plan_hash
from engine.spec import Approval
from engine.store.errors import Conflict, Forbidden, NotFound
from engine.store.models import (
    ApiToken,
    ApprovalDecision,
    ApprovalRequest,
    AuditEvent,
    Run,
    RunAlert,
)
from engine.store.runs import lock as lock_run
from engine.store.runs import release
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
    run = _lock_run_of(session, request_id)
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


def decisions(session: Session, request_id: str) -> Sequence[ApprovalDecision]:
    """Return the decisions made on a request so far."""
    query = select(ApprovalDecision).where(ApprovalDecision.request_id == request_id)
    return session.execute(query.order_by(ApprovalDecision.id)).scalars().all()


def may_decide(request: ApprovalRequest, *, actor: str, role: str) -> bool:
    """Tell whether a token of this name and role is one of the request's approvers.

    An entry names a role or a token, never both: a token named like a role is not that role.
    Entries stored before they said which (no ``role:``/``token:``) are read as they were
    meant: a role by a role's name, a token by any other (``engine.identities``).
    """
    if role not in DECIDING_ROLES:
        return False
    return not request.approvers or any(
        read_approver(entry).admits(actor=actor, role=role) for entry in request.approvers
    )


# Whoever delivered an alert of a run counts as its starter (separation of duties): a run an
# alert starts is "system"'s, and an alert joins its run's judgement, so whoever sent it must
# not be the one who approves acting on it. Who sent an alert is the actor of its
# ``alert.received`` audit row, written with the alert (engine.store.alerts); a repeat
# (``alert.repeated``) changes nothing a run sees, so its sender does not count.
_RECEIVED = "alert.received"


def _deliveries(run_id: Any) -> Select[str]:
    """Who delivered each alert of the run ``run_id`` (a run's id, or ``Run.id`` correlated)."""
    return (
        select(AuditEvent.actor)
        .join(RunAlert, RunAlert.alert_id == AuditEvent.alert_id)
        .where(RunAlert.run_id == run_id, AuditEvent.verb == _RECEIVED)
    )


def deliverers(session: Session, run_id: str) -> list[str]:
    """Who delivered the alerts of a run (the one that started it and every one that joined)."""
    return sorted(session.execute(_deliveries(run_id).distinct()).scalars())


def check_decision(
    session: Session,
    request_id: str,
    *,
    actor: str,
    role: str,
    seen_plan_hash: str | None,
    lock: bool = False,
) -> tuple[ApprovalRequest, Run]:
    """Raise ``NotFound``, ``Forbidden`` or ``Conflict`` unless ``actor`` may decide now.

    ``decide`` checks again under a row lock; checking first lets a caller refuse early,
    before any work done on the request's behalf (re-planning).
    """
    query = select(ApprovalRequest).where(ApprovalRequest.id == request_id)
    if lock:
        _lock_run_of(session, request_id)
        query = query.with_for_update().execution_options(populate_existing=True)
    request = session.execute(query).scalars().first()
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
    if actor in deliverers(session, run.id):
        raise Forbidden(
            f"{actor!r} delivered an alert of run {run.id} and cannot approve it: whoever "
            "sends an alert counts as the run's starter"
        )
    if seen_plan_hash is not None and seen_plan_hash != request.plan_hash:
        raise Conflict(f"plan hash {seen_plan_hash} is not the plan of request {request_id}")
    if utcnow() >= request.expires_at:
        raise Conflict(f"approval request {request_id} expired at {request.expires_at}")
    return request, run


def record_refusal(*, session: Session, request_id: str, actor: str, reason: str) -> None:
    """Audit a decision that was refused (not an approver, already settled, plan changed…)."""
    request = session.get(ApprovalRequest, request_id)
    if request is None:
        return  # nothing to refuse a decision on
    run = session.get(Run, request.run_id)
    assert run is not None
    audit.record(
        session,
        actor=actor,
        verb="approval.refused",
        alert_id=run.alert_id,
        run_id=run.id,
        step_id=request.step_id,
        details={"request": request.id, "reason": reason},
    )


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
    request, run = check_decision(
        session, request_id, actor=actor, role=role, seen_plan_hash=seen_plan_hash, lock=True
    )
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
        run = _lock_run_of(session, request_id)
        request = session.execute(
            select(ApprovalRequest).where(ApprovalRequest.id == request_id).with_for_update()
            .execution_options(populate_existing=True)
        ).scalars().one()
        if request.status != PENDING:  # decided, superseded or expired meanwhile
            continue
        if request.on_timeout == "approve":
            _settle(session, request, run, approved=True, actor=actor, implicit=True)
        else:
            _settle(session, request, run, approved=False, actor=actor, expired=True)
        settled.append(request_id)
    return settled


def _lock_run_of(session: Session, request_id: str) -> Run:
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


def _settle(
    session: Session,
    request: ApprovalRequest,
    run: Run,
    *,
    approved: bool,
    actor: str,
    expired: bool = False,
    implicit: bool = False,
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
        details={"request": request.id, "run_status": run.status}
        | ({"implicit": True, "reason": "expired with on_timeout: approve"} if implicit else {}),
    )


# ---------------------------------------------------------------------------------------------
# Who may still decide: what GET /v1/approvals and the CLI show an approver


class Deciders:
    """Who else may decide an approval request, and how many approvals it still needs.

    ``approvers`` are the request's own entries still able to decide: ``token:<name>`` for a
    token that has neither decided nor started the run (nor delivered one of its alerts), and
    ``role:<role>`` (any token of that role, except those in ``excluded``). ``anyone`` means
    the request names no approvers: any responder or admin token except those in ``excluded``.
    ``closed`` says why nobody may decide any more.
    """

    def __init__(
        self,
        *,
        approvals_needed: int,
        approvers: list[str],
        anyone: bool,
        excluded: dict[str, str],
        closed: str | None,
    ) -> None:
        self.approvals_needed = approvals_needed
        self.approvers = approvers
        self.anyone = anyone
        self.excluded = excluded
        self.closed = closed

    def summary(self) -> str:
        """Say in one line who else may decide, or why nobody may."""
        if self.closed is not None:
            return f"nobody: {self.closed}"
        excepted = ", ".join(f"{name} ({why})" for name, why in self.excluded.items())
        if self.anyone:
            return "any responder or admin token" + (f" except {excepted}" if excepted else "")
        if not self.approvers:
            return ("nobody: every named approver has decided, started the run or delivered "
                    "one of its alerts; the request stays pending until it expires")
        named = [read_approver(entry) for entry in self.approvers]
        names = [approver.name for approver in named if approver.kind == "token"]
        roles = [approver.name for approver in named if approver.kind == "role"]
        choices = names + [f"any {role} token" for role in roles]
        said = choices[0] if len(choices) == 1 else ", ".join(choices[:-1]) + " or " + choices[-1]
        return said + (f" except {excepted}" if roles and excepted else "")


def remaining_deciders(session: Session, request: ApprovalRequest) -> Deciders:
    """Tell who else may decide ``request``: not its run's starter, nor who delivered one of
    its alerts, nor who already decided."""
    run = session.get(Run, request.run_id)
    assert run is not None
    made = decisions(session, request.id)
    excluded = {run.started_by: "started the run"}
    delivered = deliverers(session, run.id)
    if delivered:  # shown only where they could decide otherwise: not ingest tokens, not "sns"
        could = select(ApiToken.name).where(
            ApiToken.name.in_(delivered), ApiToken.role.in_(DECIDING_ROLES)
        )
        for name in sorted(session.execute(could).scalars()):
            excluded.setdefault(name, "delivered an alert of the run")
    for decision in made:
        excluded.setdefault(decision.actor, f"already decided: {decision.decision}")
    closed = None
    if request.status != PENDING:
        closed = f"the request is {request.status}"
    elif utcnow() >= request.expires_at:
        closed = f"the request expired at {request.expires_at:%Y-%m-%d %H:%M:%S} UTC"
    elif run.status != conductor.WAITING_APPROVAL:
        closed = f"run {run.id} is {run.status}"
    if closed is not None:
        return Deciders(approvals_needed=0, approvers=[], anyone=False, excluded=excluded,
                        closed=closed)
    approvals = sum(1 for decision in made if decision.decision == "approve")
    return Deciders(
        approvals_needed=max(0, request.required - approvals),
        approvers=[
            str(approver) for approver in map(read_approver, request.approvers)
            if approver.kind == "role" or approver.name not in excluded
        ],
        anyone=not request.approvers,
        excluded=excluded,
        closed=None,
    )


def requests_to_decide(
    session: Session, *, actor: str, role: str, limit: int = 500, before_id: str | None = None
) -> list[ApprovalRequest]:
    """Return the pending, unexpired requests this token may still decide, newest first.

    Not those of runs it started or delivered an alert of, nor those it has already decided;
    at most ``limit``, and with ``before_id`` only those older than that request.
    """
    already = select(ApprovalDecision.id).where(
        ApprovalDecision.request_id == ApprovalRequest.id, ApprovalDecision.actor == actor
    )
    delivered = _deliveries(Run.id).where(AuditEvent.actor == actor)
    query = (
        select(ApprovalRequest)
        .join(Run, Run.id == ApprovalRequest.run_id)
        .where(
            ApprovalRequest.status == PENDING,
            ApprovalRequest.expires_at > utcnow(),
            Run.started_by != actor,
            ~already.exists(),
            ~delivered.exists(),
        )
        .order_by(ApprovalRequest.id.desc())
        .limit(limit)
    )
    # may_decide reads the approvers, which SQL cannot: read on until the page is full.
    found: list[ApprovalRequest] = []
    while True:
        rows = session.execute(query if before_id is None
                               else query.where(ApprovalRequest.id < before_id)).scalars().all()
        found += [request for request in rows if may_decide(request, actor=actor, role=role)]
        if len(found) >= limit or len(rows) < limit:
            return found[:limit]
        before_id = rows[-1].id
