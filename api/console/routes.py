"""The console's reading pages: the inbox (and its self-refreshing part), runs, alerts,
playbooks and the audit log. Thin, like the API's routers: read, shape, render.

Lists page like the API: ``limit`` and the opaque ``cursor`` of api.pagination (runs, alerts),
and ``after_id`` (audit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.console import views
from api.console.access import HOME, ViewerDep
from api.console.pages import page, render
from api.deps import IdInPath, LibraryDep, RuntimeDep, SessionDep
from api.pagination import IdCursor
from api.pagination import page as paged
from api.schemas import AlertOut, AuditEventOut, ChainReportOut, PlaybookOut, ProblemOut
from engine import audit, conductor
from engine.store.alert_reads import get_alert, list_alerts
from engine.store.runs import list_runs

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
PageLimit = Annotated[int, Query(ge=1, le=1000)]
FilterText = Annotated[str | None, Query(max_length=256)]
REFRESH_SECONDS = 15


@dataclass(frozen=True)
class Pager:
    """Previous and next links of a list, keeping its filters."""

    previous: str | None
    next: str | None


def pager(request: Request, *, cursor: str | None, next_page: str | None) -> Pager:
    """Links to the first page (from any later one) and to the next one (none on the last)."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    first = f"{request.url.path}?{urlencode(query)}" if cursor else None
    return Pager(previous=first, next=next_page)


@router.get("/")
def root() -> RedirectResponse:
    """Send a browser to the console."""
    return RedirectResponse(HOME, status_code=303)


@router.get("/ui/")
def inbox_page(request: Request, viewer: ViewerDep, session: SessionDep,
               runtime: RuntimeDep) -> HTMLResponse:
    """The inbox: what waits for a decision, runs that need a look, the newest alerts."""
    found = views.inbox(session, caller=viewer.caller,
                        unattended_after=runtime.settings.run_unattended_after)
    return page("inbox.html", request, viewer, nav="inbox", inbox=found,
                refresh_seconds=REFRESH_SECONDS)


@router.get("/ui/inbox")
def inbox_fragment(request: Request, viewer: ViewerDep, session: SessionDep,
                   runtime: RuntimeDep) -> HTMLResponse:
    """The inbox's content alone: what the page fetches to refresh itself (htmx)."""
    found = views.inbox(session, caller=viewer.caller,
                        unattended_after=runtime.settings.run_unattended_after)
    return render("_inbox.html", viewer=viewer, inbox=found)


@router.get("/ui/runs")
def runs_page(
    request: Request, viewer: ViewerDep, session: SessionDep, library: LibraryDep,
    status: FilterText = None, playbook: FilterText = None, principal: FilterText = None,
    since: FilterText = None, until: FilterText = None,
    limit: PageLimit = PAGE_SIZE, cursor: IdCursor = None,
) -> HTMLResponse:
    """Runs, newest first, filtered by status, playbook, principal and creation time."""
    problems: list[str] = []
    if status and status not in conductor.TRANSITIONS:
        problems.append(f"status: one of {', '.join(conductor.TRANSITIONS)}")
        status = None
    start, end = _moment("since", since, problems), _moment("until", until, problems)
    runs, next_page = paged(request, list_runs(
        session, status=status or None, playbook=playbook or None, principal=principal or None,
        since=start, until=end, limit=limit + 1, before_id=cursor,
    ), limit=limit, cursor=lambda run: run.id)
    rows = views.run_rows(session, runs)
    filters = {"status": status or "", "playbook": playbook or "",
               "principal": principal or "", "since": since or "", "until": until or ""}
    return page("runs.html", request, viewer, nav="runs", status=422 if problems else 200,
                rows=rows, filters=filters, statuses=list(conductor.TRANSITIONS),
                playbooks=sorted(library.current()), problems=problems,
                pager=pager(request, cursor=cursor, next_page=next_page))


def _moment(name: str, text: str | None, problems: list[str]) -> datetime | None:
    """Read a time filter: ISO 8601, or a form's ``2025-03-01T14:05`` (read as UTC)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        problems.append(f"{name}: not a date and time (2025-03-01T14:05, UTC)")
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@router.get("/ui/runs/{run_id}")
def run_page(request: Request, run_id: IdInPath, viewer: ViewerDep,
             session: SessionDep) -> HTMLResponse:
    """A run: its alerts, investigation, steps, approvals and audit events."""
    return page("run.html", request, viewer, nav="runs", page=views.run_page(session, run_id))


@router.get("/ui/alerts")
def alerts_page(request: Request, viewer: ViewerDep, session: SessionDep,
                limit: PageLimit = PAGE_SIZE, cursor: IdCursor = None) -> HTMLResponse:
    """Stored alerts, newest first."""
    rows, next_page = paged(request, list_alerts(session, limit=limit + 1, before_id=cursor),
                            limit=limit, cursor=lambda alert: alert.id)
    alerts = [AlertOut.of(alert) for alert in rows]
    return page("alerts.html", request, viewer, nav="alerts", alerts=alerts,
                pager=pager(request, cursor=cursor, next_page=next_page))


@router.get("/ui/alerts/{alert_id}")
def alert_page(request: Request, alert_id: IdInPath, viewer: ViewerDep,
               session: SessionDep) -> HTMLResponse:
    """One alert, every field of it, and the runs that see it."""
    alert = get_alert(session, alert_id)
    runs = list_runs(session, alert_id=alert.id, limit=1000)
    return page("alert.html", request, viewer, nav="alerts", alert=AlertOut.of(alert),
                rows=views.run_rows(session, runs))


@router.get("/ui/playbooks")
def playbooks_page(request: Request, viewer: ViewerDep, library: LibraryDep,
                   runtime: RuntimeDep) -> HTMLResponse:
    """The loaded playbooks and every problem of the files that did not load."""
    loaded = library.current()
    default_mode = runtime.settings.default_mode
    playbooks = [PlaybookOut.of(loaded[name], default_mode=default_mode)
                 for name in sorted(loaded)]
    problems = [ProblemOut.of(p, directory=library.directory) for p in library.problems]
    return page("playbooks.html", request, viewer, nav="playbooks", playbooks=playbooks,
                problems=problems)


@router.get("/ui/audit")
def audit_page(
    request: Request, viewer: ViewerDep, session: SessionDep,
    run_id: FilterText = None, alert_id: FilterText = None, actor: FilterText = None,
    limit: PageLimit = PAGE_SIZE,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> HTMLResponse:
    """The audit log, oldest first, paged by id, with whether its hash chain holds."""
    events = audit.list_events(session, run_id=run_id or None, alert_id=alert_id or None,
                               actor=actor or None, limit=limit, after_id=after_id)
    shaped = [AuditEventOut.model_validate(event) for event in events]
    query = {k: v for k, v in {"run_id": run_id, "alert_id": alert_id, "actor": actor,
                               "limit": str(limit)}.items() if v}
    next_page = (f"/ui/audit?{urlencode({**query, 'after_id': str(shaped[-1].id)})}"
                 if len(shaped) == limit else None)
    first_page = f"/ui/audit?{urlencode(query)}" if after_id else None
    return page("audit.html", request, viewer, nav="audit", events=shaped,
                chain=ChainReportOut.model_validate(audit.verify(session)),
                filters={"run_id": run_id or "", "alert_id": alert_id or "",
                         "actor": actor or ""},
                pager=Pager(previous=first_page, next=next_page))
