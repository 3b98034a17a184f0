"""Approvals: what waits for a human, the exact plan, and the decisions."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from api.deps import IdInPath, ResponderCaller, RuntimeDep, SessionDep
from api.schemas import ApprovalList, ApprovalOut, ApprovalSummary, DecisionIn
from engine.replan import refuse_if_moved
from engine.store.approvals import (
    PENDING,
    check_decision,
    decide,
    decisions,
    get_request,
    list_requests,
    record_refusal,
    remaining_deciders,
    requests_to_decide,
)
from engine.store.errors import Conflict, Forbidden
from engine.store.models import ApprovalRequest
from engine.store.rehearsals import run_modes
from riposte.logs import bound

log = logging.getLogger("riposte.api")
router = APIRouter(prefix="/v1/approvals", tags=["approvals"])

RequestStatus = Literal["pending", "approved", "rejected", "expired"]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such approval request."}}


@router.get("")
def get_approvals(
    caller: ResponderCaller,
    session: SessionDep,
    status: Annotated[
        RequestStatus | None,
        Query(description="pending: only the requests the caller may decide."),
    ] = None,
) -> ApprovalList:
    """List approval requests, newest first; pending: only those the caller may still decide."""
    if status == PENDING:
        requests = requests_to_decide(session, actor=caller.name, role=caller.role)
    else:
        requests = list(list_requests(session, status=status))
    modes = run_modes(session, (request.run_id for request in requests))
    return ApprovalList(approvals=[ApprovalSummary.of(request, mode=modes[request.run_id])
                                   for request in requests])


@router.get("/{request_id}", responses=_NOT_FOUND)
def get_approval(request_id: IdInPath, caller: ResponderCaller, session: SessionDep) -> ApprovalOut:
    """Show a request, the plan it approves (and its hash), the decisions so far, who else may
    decide and how many approvals it still needs."""
    request = get_request(session, request_id)
    with bound(run_id=request.run_id):
        return _detailed(session, request)


@router.post(
    "/{request_id}/decision",
    responses={
        **_NOT_FOUND,
        403: {"description": "Not an approver, or the caller started the run."},
        409: {"description": "Already settled, already decided by the caller, or the plan "
                            "changed."},
    },
)
def post_decision(
    request_id: IdInPath,
    body: DecisionIn,
    caller: ResponderCaller,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ApprovalOut:
    """Approve or reject a request; the run resumes (or ends) once the request settles.

    An approval first makes the plan again: if it changed, the request is superseded by one
    showing the new plan, and the answer is 409 naming it.
    """
    try:
        if body.decision == "approve":
            with session.begin():
                check_decision(session, request_id, actor=caller.name, role=caller.role,
                               seen_plan_hash=body.plan_hash)
            refuse_if_moved(runtime.sessions, request_id, runtime.settings, actor=caller.name)
        with session.begin():
            request = decide(
                session=session,
                request_id=request_id,
                actor=caller.name,
                role=caller.role,
                decision=body.decision,
                reason=body.reason,
                seen_plan_hash=body.plan_hash,
            )
    except (Forbidden, Conflict) as refused:
        with session.begin():
            record_refusal(session=session, request_id=request_id, actor=caller.name,
                           reason=f"{body.decision}: {refused}")
        raise
    with bound(run_id=request.run_id):
        log.info("%s decided %s on approval %s: now %s", caller.name, body.decision,
                 request_id, request.status)
        return _detailed(session, request)


def _detailed(session: Session, request: ApprovalRequest) -> ApprovalOut:
    return ApprovalOut.detailed(request, decisions=decisions(session, request.id),
                                deciders=remaining_deciders(session, request),
                                mode=run_modes(session, [request.run_id])[request.run_id])
