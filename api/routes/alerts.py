"""Alerts: the generic delivery endpoint and reads of stored alerts."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import (
    BodyDigestDep,
    IdInPath,
    IngestCaller,
    ResponderCaller,
    RuntimeDep,
    SessionDep,
)
from api.ingest import in_ingest_thread, store_delivery
from api.pagination import DEFAULT_LIMIT, IdCursor, Limit, page
from api.problems import AUTHENTICATED, WITH_BODY, problems
from api.query import STRICT_QUERY
from api.schemas import AlertIn, AlertList, AlertOut, IngestOut
from core.logs import bound
from engine.store.alert_reads import get_alert, list_alerts
from engine.store.runs import list_runs

router = APIRouter(tags=["alerts"], dependencies=STRICT_QUERY)

ENDPOINT = "/v1/alerts"


@router.post(
    ENDPOINT,
    status_code=202,
    operation_id="ingestAlert",
    responses={
        200: {"model": IngestOut, "description": "A repeat of a stored alert (same dedup_key)."},
        **problems(*AUTHENTICATED, *WITH_BODY,
                   described={503: "Not stored (database unavailable): retry later."}),
    },
)
async def post_alert(
    body: AlertIn,
    caller: IngestCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    digest: BodyDigestDep,
    response: Response,
) -> IngestOut:
    """Store an alert and queue every playbook it triggers; 2xx means it is committed."""
    # Async, so that FastAPI checks the answer on the event loop: the database work alone goes
    # to a worker thread, in one hop.
    [result] = await in_ingest_thread(
        runtime,
        store_delivery,
        session=session,
        alerts=[body.normalized()],
        runtime=runtime,
        endpoint=ENDPOINT,
        digest=digest,
        actor=caller.name,
        response=response,
    )
    return IngestOut.of(result)


@router.get(ENDPOINT, operation_id="listAlerts", responses=problems(*AUTHENTICATED, 422))
def get_alerts(
    request: Request, caller: ResponderCaller, session: SessionDep,
    limit: Limit = DEFAULT_LIMIT, cursor: IdCursor = None,
) -> AlertList:
    """List stored alerts, newest first, a page at a time (follow ``next``)."""
    rows = list_alerts(session, limit=limit + 1, before_id=cursor)
    alerts, next_page = page(request, rows, limit=limit, cursor=lambda alert: alert.id)
    return AlertList(alerts=[AlertOut.of(alert) for alert in alerts], next=next_page)


@router.get(ENDPOINT + "/{alert_id}", operation_id="getAlert",
            responses=problems(*AUTHENTICATED, 404, 422, described={404: "No such alert."}))
def get_one_alert(alert_id: IdInPath, caller: ResponderCaller, session: SessionDep) -> AlertOut:
    """Show one alert with the ids of its runs."""
    with bound(alert_id=alert_id):
        alert = get_alert(session, alert_id)
        return AlertOut.of(alert, runs=list_runs(session, alert_id=alert.id, limit=1000))
