"""Approvals: what waits for a human, the exact plan, and the decisions."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.deps import IdInPath, ResponderCaller, SessionDep
from api.schemas import ApprovalList, ApprovalOut, ApprovalSummary, DecisionIn
from engine.store.approvals import PENDING, decide, decisions, get_request, list_requests
from engine.store.approvals import may_decide as is_approver
from engine.store.runs import get_run
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
    """List approval requests, newest first; pending ones only if the caller may decide them."""
    requests = list_requests(session, status=status)
    if status == PENDING:
        requests = [
            request
            for request in requests
            if is_approver(request, actor=caller.name, role=caller.role)
            and get_run(session, request.run_id).started_by != caller.name
        ]
    return ApprovalList(approvals=[ApprovalSummary.of(request) for request in requests])


@router.get("/{request_id}", responses=_NOT_FOUND)
def get_approval(request_id: IdInPath, caller: ResponderCaller, session: SessionDep) -> ApprovalOut:
    """Show a request, the plan it approves (and its hash), and the decisions so far."""
    request = get_request(session, request_id)
    with bound(run_id=request.run_id):
        return ApprovalOut.detailed(request, decisions=decisions(session, request.id))


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
    request_id: IdInPath, body: DecisionIn, caller: ResponderCaller, session: SessionDep
) -> ApprovalOut:
    """Approve or reject a request; the run resumes (or ends) once the request settles."""
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
    with bound(run_id=request.run_id):
        log.info("%s decided %s on approval %s: now %s", caller.name, body.decision,
                 request_id, request.status)
        return ApprovalOut.detailed(request, decisions=decisions(session, request.id))
