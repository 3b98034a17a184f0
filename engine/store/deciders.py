"""Deciders of approval requests: who may decide one, their decisions, and who else still may.

A decision is checked here (the request's approvers; separation of duties: not whoever started
the run or delivered one of its alerts) and recorded; once it settles its request,
``engine.store.approvals.settle`` applies the outcome, the same one whoever races.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import audit, conductor
from engine.identities import DECIDING_ROLES, read_approver
from engine.store.approvals import PENDING, lock_run_of, settle
from engine.store.errors import Conflict, Forbidden, NotFound
from engine.store.models import (
    ApiToken,
    ApprovalDecision,
    ApprovalRequest,
    AuditEvent,
    Run,
    RunAlert,
)
from engine.store.types import utcnow


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


def decisions(session: Session, request_id: str) -> Sequence[ApprovalDecision]:
    """Return the decisions made on a request so far."""
    query = select(ApprovalDecision).where(ApprovalDecision.request_id == request_id)
    return session.execute(query.order_by(ApprovalDecision.id)).scalars().all()


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
        lock_run_of(session, request_id)
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
        settle(session, request, run, approved=False, actor=actor)
        return request
    approvals = session.execute(
        select(func.count()).where(
            ApprovalDecision.request_id == request.id, ApprovalDecision.decision == "approve"
        )
    ).scalar_one()
    if approvals >= request.required:
        settle(session, request, run, approved=True, actor=actor)
    return request


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
