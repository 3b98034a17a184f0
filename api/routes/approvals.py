"""Approvals: what waits for a human, the exact plan, and the decisions."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.deps import IdInPath, ResponderCaller, RuntimeDep, SessionDep
from api.schemas import ApprovalList, ApprovalOut, ApprovalSummary, DecisionIn
from core.logs import bound
from engine.decisions import take_decision
from engine.store.approvals import PENDING, get_request, list_requests, requests_to_decide
from engine.store.rehearsals import run_modes

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
        return ApprovalOut.read(session, request)


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
    request = take_decision(
        session=session, sessions=runtime.sessions, settings=runtime.settings,
        request_id=request_id, actor=caller.name, role=caller.role, decision=body.decision,
        reason=body.reason, plan_hash=body.plan_hash,
    )
    with bound(run_id=request.run_id):
        log.info("%s decided %s on approval %s: now %s", caller.name, body.decision,
                 request_id, request.status)
        return ApprovalOut.read(session, request)
