"""Approvals: what waits for a human, the exact plan, and the decisions."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from api.deps import IdInPath, ResponderCaller, RuntimeDep, SessionDep
from api.pagination import DEFAULT_LIMIT, IdCursor, Limit, page
from api.problems import AUTHENTICATED, WITH_BODY, problems
from api.query import STRICT_QUERY
from api.schemas import ApprovalList, ApprovalOut, ApprovalSummary, DecisionIn
from core.logs import bound
from engine.decisions import take_decision
from engine.store.approvals import PENDING, get_request, list_requests
from engine.store.deciders import requests_to_decide
from engine.store.rehearsals import run_modes

log = logging.getLogger("riposte.api")
router = APIRouter(prefix="/v1/approvals", tags=["approvals"],
                   dependencies=STRICT_QUERY)

RequestStatus = Literal["pending", "approved", "rejected", "expired"]
_NOT_FOUND = {404: "No such approval request."}


@router.get("", operation_id="listApprovals", responses=problems(*AUTHENTICATED, 422))
def get_approvals(
    request: Request,
    caller: ResponderCaller,
    session: SessionDep,
    status: Annotated[
        RequestStatus | None,
        Query(description="pending: only the requests the caller may decide."),
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: IdCursor = None,
) -> ApprovalList:
    """List approval requests, newest first; pending: only those the caller may still decide."""
    if status == PENDING:
        rows = requests_to_decide(session, actor=caller.name, role=caller.role,
                                  limit=limit + 1, before_id=cursor)
    else:
        rows = list(list_requests(session, status=status, limit=limit + 1, before_id=cursor))
    requests, next_page = page(request, rows, limit=limit, cursor=lambda row: row.id)
    modes = run_modes(session, (row.run_id for row in requests))
    return ApprovalList(approvals=[ApprovalSummary.of(row, mode=modes[row.run_id])
                                   for row in requests], next=next_page)


@router.get("/{request_id}", operation_id="getApproval",
            responses=problems(*AUTHENTICATED, 404, 422, described=_NOT_FOUND))
def get_approval(request_id: IdInPath, caller: ResponderCaller, session: SessionDep) -> ApprovalOut:
    """Show a request, the plan it approves (and its hash), the decisions so far, who else may
    decide and how many approvals it still needs."""
    request = get_request(session, request_id)
    with bound(run_id=request.run_id):
        return ApprovalOut.read(session, request)


@router.post(
    "/{request_id}/decision",
    operation_id="decideApproval",
    responses=problems(*AUTHENTICATED, *WITH_BODY, 404, 409, described={
        **_NOT_FOUND,
        403: "Not a responder, not an approver, or the caller started the run.",
        409: "Already settled, already decided by the caller, or the plan changed.",
    }),
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
