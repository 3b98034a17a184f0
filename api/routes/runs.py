"""Runs: list, show with the journal, start by hand, cancel, rehearse, roll back."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from api.deps import (
    TEXT_PATTERN,
    IdFilter,
    IdInPath,
    LibraryDep,
    ResponderCaller,
    SessionDep,
    SettingsDep,
)
from api.pagination import DEFAULT_LIMIT, IdCursor, Limit, page
from api.problems import AUTHENTICATED, WITH_BODY, problems
from api.query import STRICT_QUERY
from api.schemas import RunIn, RunList, RunOut, RunSummary
from api.schemas.common import Moment
from core.logs import bound
from engine.conductor import TRANSITIONS
from engine.rollback import start_rollback
from engine.store.alert_reads import get_alert
from engine.store.errors import NotFound
from engine.store.rehearsals import rehearse_run
from engine.store.runs import (
    cancel_run,
    get_run,
    journal,
    list_runs,
    queue_run,
    run_alert_ids,
)

log = logging.getLogger("riposte.api")
router = APIRouter(prefix="/v1/runs", tags=["runs"], dependencies=STRICT_QUERY)

_NOT_FOUND = {404: "No such run."}
# conductor.TRANSITIONS' statuses, spelt out so that OpenAPI lists them (a test keeps them equal).
_STATUSES = ", ".join(TRANSITIONS)
RunStatus = Literal["queued", "running", "waiting_approval", "succeeded", "failed", "cancelled",
                   "rejected"]


@router.get("", operation_id="listRuns", responses=problems(*AUTHENTICATED, 422))
def get_runs(
    request: Request,
    caller: ResponderCaller,
    session: SessionDep,
    status: Annotated[RunStatus | None, Query(description=f"Only runs in it: {_STATUSES}.")] = None,
    alert_id: IdFilter = None,
    playbook: IdFilter = None,
    principal: Annotated[
        str | None,
        Query(min_length=1, max_length=256, pattern=TEXT_PATTERN,
              description="Runs that see an alert whose principal's name or ARN holds this "
              "text (any case)."),
    ] = None,
    since: Annotated[Moment, Query(description="Created at or after (ISO 8601 with a "
                                               "zone).")] = None,
    until: Annotated[Moment, Query(description="Created before (ISO 8601 with a zone).")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: IdCursor = None,
) -> RunList:
    """List runs, newest first, optionally of one status, playbook or principal, created in a
    time span, or that see one alert."""
    rows = list_runs(session, status=status, alert_id=alert_id, playbook=playbook,
                     principal=principal, since=since, until=until, limit=limit + 1,
                     before_id=cursor)
    runs, next_page = page(request, rows, limit=limit, cursor=lambda run: run.id)
    return RunList(runs=[RunSummary.of(run) for run in runs], next=next_page)


@router.get("/{run_id}", operation_id="getRun",
            responses=problems(*AUTHENTICATED, 404, 422, described=_NOT_FOUND))
def get_one_run(run_id: IdInPath, caller: ResponderCaller, session: SessionDep) -> RunOut:
    """Show a run with its context, its investigation, its step journal and its approvals.

    The investigation (findings, open questions, verdict, narrative, recommendation) is what
    investigation.assess and investigation.narrate put in the run's variables.
    """
    with bound(run_id=run_id):
        run = get_run(session, run_id)
        return RunOut.detailed(run, alert_ids=run_alert_ids(session, run.id),
                               journal=journal(session, run.id))


@router.post(
    "", status_code=201, operation_id="startRun",
    responses=problems(*AUTHENTICATED, *WITH_BODY, 404,
                       described={404: "No such alert or playbook."}),
)
def start_run(
    body: RunIn, caller: ResponderCaller, session: SessionDep, library: LibraryDep,
    settings: SettingsDep,
) -> RunOut:
    """Queue a run of a loaded playbook on a stored alert.

    Without a ``mode`` it runs in the playbook's, else in RIPOSTE_DEFAULT_MODE.
    """
    playbook = library.current().get(body.playbook)
    if playbook is None:
        raise NotFound(f"no playbook {body.playbook!r} is loaded (GET /v1/playbooks lists them)")
    mode = body.mode or playbook.spec.mode or settings.default_mode
    with bound(alert_id=body.alert_id), session.begin():
        alert = get_alert(session, body.alert_id)
        run = queue_run(session=session, alert_id=alert.id, playbook=playbook, mode=mode,
                        started_by=caller.name)
    with bound(alert_id=run.alert_id, run_id=run.id):
        log.info("%s started %s run of %s", caller.name, run.mode, run.playbook)
    return RunOut.detailed(run, alert_ids=[run.alert_id], journal=[])


@router.post(
    "/{run_id}/cancel",
    operation_id="cancelRun",
    responses=problems(*AUTHENTICATED, 404, 409, 422,
                       described={**_NOT_FOUND, 409: "The run has already ended."}),
)
def cancel(run_id: IdInPath, caller: ResponderCaller, session: SessionDep) -> RunOut:
    """Cancel a run that has not ended; a step already executing finishes and is recorded."""
    with bound(run_id=run_id):
        with session.begin():
            run = cancel_run(session=session, run_id=run_id, actor=caller.name)
        log.info("%s cancelled run %s", caller.name, run_id)
        return RunOut.detailed(run, alert_ids=run_alert_ids(session, run.id),
                               journal=journal(session, run.id))


@router.post(
    "/{run_id}/rollback",
    status_code=202,
    operation_id="rollBackRun",
    responses=problems(*AUTHENTICATED, 404, 409, 422, described={
        **_NOT_FOUND, 409: "The run has not ended, or changed nothing that can be undone."}),
)
def rollback(run_id: IdInPath, caller: ResponderCaller, session: SessionDep) -> RunOut:
    """Plan the undo of every change the run made (newest first) and ask approval for it.

    Answers the rollback run, which waits for one approver (not the caller) to approve the
    plan: the undo calls, and the changes that cannot be undone, listed as such.
    """
    with bound(run_id=run_id):
        with session.begin():
            rollback_run = start_rollback(session=session, run_id=run_id, actor=caller.name)
        log.info("%s asked to roll back run %s: run %s", caller.name, run_id, rollback_run.id)
        return RunOut.detailed(rollback_run, alert_ids=[rollback_run.alert_id], journal=[])


@router.post(
    "/{run_id}/rehearse",
    status_code=201,
    operation_id="rehearseRun",
    responses=problems(*AUTHENTICATED, 404, 409, 422, described={
        **_NOT_FOUND, 409: "The playbook the run pinned no longer loads."}),
)
def rehearse(run_id: IdInPath, caller: ResponderCaller, session: SessionDep) -> RunOut:
    """Rehearse a run: queue a dry-run copy of it on every alert it sees; answer the copy.

    The copy pins the same playbook text, names the run in ``rehearses``, is started by the
    caller (who therefore cannot approve it) and changes nothing in AWS. Alerts arriving later
    join the run, not the copy.
    """
    with bound(run_id=run_id):
        with session.begin():
            rehearsal = rehearse_run(session=session, run_id=run_id, actor=caller.name)
        log.info("%s rehearses run %s: run %s", caller.name, run_id, rehearsal.id)
        return RunOut.detailed(rehearsal, alert_ids=run_alert_ids(session, rehearsal.id),
                               journal=[])
