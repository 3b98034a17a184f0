"""The console's deciding pages: an approval (approve or reject with a reason) and the
rollback of a finished run, each behind a form that names exactly what it decides.

A decision goes through ``engine.decisions.take_decision`` as the API's does, sending the plan
hash the page showed. Refusals come back as pages, not tracebacks: 403 (not an approver, the
run's starter) and 409 (settled, expired, already decided) show the request with the reason;
a plan that changed since the page was shown shows the request that replaced it — its plan,
what changed — and decides nothing until the person submits again.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from api.console import views
from api.console.access import PostedForm, Viewer, ViewerDep
from api.console.pages import page
from api.deps import IdInPath, RuntimeDep, SessionDep
from core.logs import bound
from engine.decisions import Decision, take_decision
from engine.rollback import start_rollback
from engine.store.approvals import SUPERSEDED, earlier_request, get_request
from engine.store.errors import Conflict, Forbidden

log = logging.getLogger("riposte.console")
router = APIRouter(include_in_schema=False)

DECISIONS: dict[str, Decision] = {"approve": "approve", "reject": "reject"}
REASON_LIMIT = 2000  # as DecisionIn.reason


@router.get("/ui/approvals/{request_id}")
def approval_page(request: Request, request_id: IdInPath, viewer: ViewerDep,
                  session: SessionDep) -> HTMLResponse:
    """A request: the exact plan and its hash, decisions so far, the form to decide."""
    shown = views.approval_page(session, request_id, caller=viewer.caller)
    return page("approval.html", request, viewer, nav="inbox", page=shown, reason="")


@router.post("/ui/approvals/{request_id}/decision", response_model=None)
def decide(request: Request, request_id: IdInPath, viewer: ViewerDep, form: PostedForm,
           session: SessionDep, runtime: RuntimeDep) -> HTMLResponse | RedirectResponse:
    """Approve or reject with a reason and the plan hash the page showed."""
    decision = DECISIONS.get(form.get("decision", ""))
    reason = form.get("reason", "").strip()
    plan_hash = form.get("plan_hash", "").strip().lower()
    problem = _problem(decision, reason, plan_hash)
    if decision is None or problem is not None:
        return _refused_page(request, viewer, session, request_id, status=422,
                             message=problem or "Not decided: choose Approve or Reject.",
                             reason=reason)
    try:
        decided = take_decision(
            session=session, sessions=runtime.sessions, settings=runtime.settings,
            request_id=request_id, actor=viewer.caller.name, role=viewer.caller.role,
            decision=decision, reason=reason, plan_hash=plan_hash,
        )
    except Forbidden as refused:
        return _refused_page(request, viewer, session, request_id, status=403,
                             message=f"Not decided: {refused}.", reason=reason)
    except Conflict as refused:
        return _refused_page(request, viewer, session, request_id, status=409,
                             message=f"Not decided: {refused}.", reason=reason, replaced=True)
    with bound(run_id=decided.run_id):
        log.info("%s decided %s on approval %s in the console: now %s", viewer.caller.name,
                 decision, request_id, decided.status)
    return RedirectResponse(f"/ui/approvals/{decided.id}#outcome", status_code=303)


def _problem(decision: Decision | None, reason: str, plan_hash: str) -> str | None:
    if decision is None:
        return None
    if not reason:
        return "Not decided: give a reason; it is kept with the decision and audited."
    if len(reason) > REASON_LIMIT or "\x00" in reason:
        return f"Not decided: the reason must be at most {REASON_LIMIT} characters of text."
    if len(plan_hash) != 64 or any(c not in "0123456789abcdef" for c in plan_hash):
        return "Not decided: the form did not send the plan hash of the page; reload it."
    return None


def _refused_page(request: Request, viewer: Viewer, session: Session, request_id: str, *,
                  status: int, message: str, reason: str,
                  replaced: bool = False) -> HTMLResponse:
    """The approval page again, with why nothing was decided.

    ``replaced``: if the request was superseded (its plan changed), show the one that
    replaced it, what changed, and a form for it.
    """
    # What the refusal left (another session superseded the request): not what this one saw.
    session.expire_all()
    old = get_request(session, request_id)
    shown = None
    if replaced and old.status == SUPERSEDED:
        newest = earlier_request(session, run_ids=[old.run_id], step_id=old.step_id)
        if newest is not None and newest.id != old.id:
            shown = views.approval_page(session, newest.id, caller=viewer.caller,
                                        compare_with=old.plan)
    if shown is None:
        shown = views.approval_page(session, request_id, caller=viewer.caller)
    return page("approval.html", request, viewer, nav="inbox", status=status, page=shown,
                message=message, message_kind="error", reason=reason)


@router.get("/ui/runs/{run_id}/rollback")
def rollback_page(request: Request, run_id: IdInPath, viewer: ViewerDep,
                  session: SessionDep) -> HTMLResponse:
    """What rolling the run back would undo and what it cannot, and the form to ask for it."""
    return page("rollback.html", request, viewer, nav="runs",
                page=views.rollback_page(session, run_id))


@router.post("/ui/runs/{run_id}/rollback", response_model=None)
def rollback(request: Request, run_id: IdInPath, viewer: ViewerDep, form: PostedForm,
             session: SessionDep) -> HTMLResponse | RedirectResponse:
    """Ask for the rollback (``POST /v1/runs/{id}/rollback``): a run that waits for approval."""
    try:
        with session.begin():
            started = start_rollback(session=session, run_id=run_id, actor=viewer.caller.name)
    except Conflict as refused:
        return page("rollback.html", request, viewer, nav="runs", status=409,
                    page=views.rollback_page(session, run_id),
                    message=f"Not rolled back: {refused}.", message_kind="error")
    with bound(run_id=run_id):
        log.info("%s asked to roll back run %s in the console: run %s", viewer.caller.name,
                 run_id, started.id)
    return RedirectResponse(f"/ui/runs/{started.id}", status_code=303)
