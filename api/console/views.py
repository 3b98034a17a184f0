"""What each console page shows, read through the same store functions and wire models as the
API: the inbox, a run, an approval, and the lists.

Shaping only: whether a person may decide, roll back or see something is answered by the
service functions the API calls (``check_decision``, ``start_rollback``'s own checks…), never
re-decided here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import Caller
from api.schemas import AlertOut, ApprovalOut, AuditEventOut, RunOut, RunSummary
from api.schemas.runs import investigation
from engine import audit, conductor
from engine.render import PlanChange, PlanView, plan_change, plan_view
from engine.rollback import undo_entries
from engine.store import workers
from engine.store.alert_reads import get_alert, list_alerts
from engine.store.approvals import (
    PENDING,
    SUPERSEDED,
    earlier_request,
    get_request,
    list_requests,
)
from engine.store.deciders import check_decision, remaining_deciders, requests_to_decide
from engine.store.errors import Conflict, Forbidden
from engine.store.models import Alert, ApprovalRequest, Run
from engine.store.runs import get_run, journal, list_runs, run_alert_ids, run_alerts
from engine.store.types import utcnow

ATTENTION_LIMIT = 20  # runs of each kind the inbox lists (the runs page has them all)
NEWEST_ALERTS = 10
RUN_EVENTS_LIMIT = 500


def principal_text(principal: Any) -> str:
    """An alert's principal in one line: its ARN, else its name (``—`` when none)."""
    if not isinstance(principal, dict):
        return "—"
    return str(principal.get("arn") or principal.get("name") or "—")


@dataclass(frozen=True)
class RunRow:
    """A run in a list, with what its first alert says."""

    run: RunSummary
    alert: AlertOut | None
    verdict: dict[str, Any] | None = None


def run_rows(session: Session, runs: Iterable[Run]) -> list[RunRow]:
    """Shape runs for a list, reading their alerts in one query."""
    runs = list(runs)
    alerts = _alerts_by_id(session, {run.alert_id for run in runs})
    return [RunRow(run=RunSummary.of(run), alert=alerts.get(run.alert_id), verdict=verdict_of(run))
            for run in runs]


def _alerts_by_id(session: Session, ids: Iterable[str]) -> dict[str, AlertOut]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    found = session.execute(select(Alert).where(Alert.id.in_(wanted))).scalars()
    return {alert.id: AlertOut.of(alert) for alert in found}


# ---------------------------------------------------------------------------------------------
# The inbox


@dataclass(frozen=True)
class PendingApproval:
    """A request waiting for decisions, as the inbox lists it."""

    request: ApprovalRequest
    run: RunSummary
    alert: AlertOut | None
    plan: PlanView
    deciders: str
    yours: bool  # the viewer may decide it (GET /v1/approvals?status=pending lists it)
    escalates_at: datetime | None
    verdict: dict[str, Any] | None  # the investigation's, when the run has one (vars.verdict)


@dataclass(frozen=True)
class Stuck:
    """A run no worker has taken although it could have (``engine.store.workers``)."""

    row: RunRow
    since: datetime


@dataclass(frozen=True)
class Inbox:
    approvals: list[PendingApproval]
    waiting: list[RunRow]
    failed: list[RunRow]
    stuck: list[Stuck]
    alerts: list[AlertOut]
    now: datetime


def inbox(session: Session, *, caller: Caller, unattended_after: float) -> Inbox:
    """What needs a person now: pending approvals, runs needing attention, newest alerts."""
    pending = list(list_requests(session, status=PENDING))
    yours = {request.id for request in requests_to_decide(session, actor=caller.name,
                                                           role=caller.role)}
    runs = {run.id: run for run in _runs(session, (r.run_id for r in pending))}
    alerts = _alerts_by_id(session, (run.alert_id for run in runs.values()))
    approvals = []
    for request in pending:
        run = runs[request.run_id]
        approvals.append(PendingApproval(
            request=request, run=RunSummary.of(run), alert=alerts.get(run.alert_id),
            plan=plan_view(request.plan), deciders=remaining_deciders(session, request).summary(),
            yours=request.id in yours,
            escalates_at=request.escalate_at if request.escalated_at is None else None,
            verdict=verdict_of(run),
        ))
    # Yours first, then the soonest to expire.
    approvals.sort(key=lambda item: (not item.yours, item.request.expires_at))
    now = utcnow()
    unattended = workers.unattended_runs(
        session, runnable_before=now - timedelta(seconds=unattended_after),
        limit=ATTENTION_LIMIT)
    stuck_runs = {run.id: run for run in _runs(session, (u.run_id for u in unattended))}
    stuck_rows = {row.run.id: row for row in run_rows(session, stuck_runs.values())}
    return Inbox(
        approvals=approvals,
        waiting=run_rows(session, list_runs(session, status=conductor.WAITING_APPROVAL,
                                            limit=ATTENTION_LIMIT)),
        failed=run_rows(session, list_runs(session, status=conductor.FAILED,
                                           limit=ATTENTION_LIMIT)),
        stuck=[Stuck(row=stuck_rows[u.run_id], since=u.runnable_since) for u in unattended
               if u.run_id in stuck_rows],
        alerts=[AlertOut.of(alert) for alert in list_alerts(session, limit=NEWEST_ALERTS)],
        now=now,
    )


def _runs(session: Session, ids: Iterable[str]) -> Sequence[Run]:
    wanted = sorted(set(ids))
    if not wanted:
        return []
    return session.execute(select(Run).where(Run.id.in_(wanted))).scalars().all()


# ---------------------------------------------------------------------------------------------
# A run


@dataclass(frozen=True)
class RunPage:
    run: RunOut
    alerts: list[AlertOut]
    approvals: list[ApprovalOut]
    events: list[AuditEventOut]
    more_events: bool
    rollback_offered: bool


def run_page(session: Session, run_id: str) -> RunPage:
    """A run with its alerts, investigation, steps, approvals and audit events."""
    run = get_run(session, run_id)
    shaped = RunOut.detailed(run, alert_ids=run_alert_ids(session, run.id),
                             journal=journal(session, run.id))
    events = audit.list_events(session, run_id=run.id, limit=RUN_EVENTS_LIMIT + 1)
    requests = [get_request(session, ref.id) for ref in shaped.approvals]
    return RunPage(
        run=shaped,
        alerts=[AlertOut.of(alert) for alert in run_alerts(session, run.id)],
        approvals=[ApprovalOut.read(session, request) for request in requests],
        events=[AuditEventOut.model_validate(e) for e in events[:RUN_EVENTS_LIMIT]],
        more_events=len(events) > RUN_EVENTS_LIMIT,
        rollback_offered=rollback_offered(session, run),
    )


def rollback_offered(session: Session, run: Run) -> bool:
    """Whether ``POST /v1/runs/{id}/rollback`` would accept this run: ended, with undo data."""
    if run.status not in conductor.TERMINAL:
        return False
    return any("undo" in entry for entry in undo_entries(session, run.id))


@dataclass(frozen=True)
class RollbackPage:
    run: RunSummary
    ended: bool  # only an ended run is rolled back (engine.rollback.start_rollback)
    undoable: list[dict[str, Any]]
    not_undoable: list[dict[str, Any]]


def rollback_page(session: Session, run_id: str) -> RollbackPage:
    """What rolling a run back would undo, and what it cannot."""
    run = get_run(session, run_id)
    ended = run.status in conductor.TERMINAL
    entries = undo_entries(session, run.id) if ended else []
    return RollbackPage(run=RunSummary.of(run), ended=ended,
                        undoable=[e for e in entries if "undo" in e],
                        not_undoable=[e for e in entries if "undo" not in e])


# ---------------------------------------------------------------------------------------------
# An approval


@dataclass(frozen=True)
class ApprovalPage:
    approval: ApprovalOut
    run: RunSummary
    alert: AlertOut
    plan: PlanView
    may_decide: bool
    why_not: str | None
    successor: ApprovalOut | None  # the request that replaced this one, if superseded
    change: PlanChange | None  # how this plan differs from the one the person reviewed
    verdict: dict[str, Any] | None  # the investigation's, when the run has one


def approval_page(session: Session, request_id: str, *, caller: Caller,
                  compare_with: dict[str, Any] | None = None) -> ApprovalPage:
    """A request, its plan and whether ``caller`` may decide it now (and why not).

    ``compare_with``: the plan the person reviewed, when a decision on it was refused because
    the plan changed (this request replaced that one): the page says what changed.
    """
    request = get_request(session, request_id)
    run = get_run(session, request.run_id)
    successor = None
    if request.status == SUPERSEDED:
        newest = earlier_request(session, run_ids=[run.id], step_id=request.step_id)
        if newest is not None and newest.id != request.id:
            successor = ApprovalOut.read(session, newest)
    why_not = None
    try:
        check_decision(session, request.id, actor=caller.name, role=caller.role,
                       seen_plan_hash=None)
    except (Forbidden, Conflict) as refused:
        why_not = str(refused)
    change = None
    if compare_with is not None and compare_with != request.plan:
        change = plan_change(compare_with, request.plan)
    return ApprovalPage(
        approval=ApprovalOut.read(session, request), run=RunSummary.of(run),
        alert=AlertOut.of(get_alert(session, run.alert_id)), plan=plan_view(request.plan),
        may_decide=why_not is None, why_not=why_not, successor=successor, change=change,
        verdict=verdict_of(run),
    )


def verdict_of(run: Run) -> dict[str, Any] | None:
    """The run's verdict (``vars.verdict``, written by its investigation), or None.

    Pages that ask for a decision show it beside the alert's own severity: a CloudTrail call
    is rated INFORMATIONAL by its source, while the burst it belongs to may be CRITICAL.
    """
    verdict: dict[str, Any] | None = investigation(run.state.get("vars", {}))["verdict"]
    return verdict

