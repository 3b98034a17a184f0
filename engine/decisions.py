"""A person's decision on an approval request, taken the same way by every interface.

The HTTP API, the console and the chat integrations all call :func:`take_decision`: the rules
(an approver of the request, not the run's starter, the plan hash seen, quorum) live in
``engine.store.deciders``; this adds what surrounds them — making an approved plan again first,
and auditing a refusal — so that no interface can skip either.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings
from engine import containment
from engine.replan import refuse_if_moved
from engine.store.deciders import check_decision, decide, record_refusal
from engine.store.errors import Conflict, Forbidden
from engine.store.models import ApprovalRequest, Run

Decision = Literal["approve", "reject"]
APPROVED, REJECTED = "approved", "rejected"  # the statuses of a request a decision settled


def take_decision(
    *,
    session: Session,
    sessions: sessionmaker[Session],
    settings: Settings,
    request_id: str,
    actor: str,
    role: str,
    decision: Decision,
    reason: str,
    plan_hash: str,
) -> ApprovalRequest:
    """Record ``actor``'s decision; raise ``NotFound``, ``Forbidden`` or ``Conflict`` if refused.

    An approval first checks that ``actor`` may decide, then makes the plan again: if it
    changed, the request is superseded by one showing the new plan and the approval is refused
    (``Conflict`` naming the new request). Every ``Forbidden`` or ``Conflict`` is audited as
    ``approval.refused``. ``session`` must have no transaction open; each step commits its own.
    """
    try:
        if decision == "approve":
            with session.begin():
                check_decision(session, request_id, actor=actor, role=role,
                               seen_plan_hash=plan_hash)
            refuse_if_moved(sessions, request_id, settings, actor=actor)
        with session.begin():
            request = decide(session=session, request_id=request_id, actor=actor, role=role,
                             decision=decision, reason=reason, seen_plan_hash=plan_hash)
            run = session.get(Run, request.run_id)
            if run is not None and request.status in (APPROVED, REJECTED):  # it settled
                containment.approval_decided(session, run, request)
            return request
    except (Forbidden, Conflict) as refused:
        with session.begin():
            record_refusal(session=session, request_id=request_id, actor=actor,
                           reason=f"{decision}: {refused}")
        raise
