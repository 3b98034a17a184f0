"""Alerts: the generic delivery endpoint and reads of stored alerts."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import (
    BodyDigestDep,
    IdInPath,
    IngestCaller,
    Limit,
    Offset,
    ResponderCaller,
    RuntimeDep,
    SessionDep,
)
from api.ingest import in_ingest_thread, store_delivery
from api.schemas import AlertIn, AlertList, AlertOut, IngestOut
from core.logs import bound
from engine.store.alerts import get_alert, list_alerts
from engine.store.runs import list_runs

router = APIRouter(tags=["alerts"])

ENDPOINT = "/v1/alerts"


@router.post(
    ENDPOINT,
    status_code=202,
    responses={
        200: {"model": IngestOut, "description": "A repeat of a stored alert (same dedup_key)."},
        503: {"description": "Not stored (database unavailable): retry later."},
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


@router.get(ENDPOINT)
def get_alerts(
    caller: ResponderCaller, session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> AlertList:
    """List stored alerts, newest first."""
    alerts = list_alerts(session, limit=limit, offset=offset)
    return AlertList(alerts=[AlertOut.of(alert) for alert in alerts])


@router.get(ENDPOINT + "/{alert_id}", responses={404: {"description": "No such alert."}})
def get_one_alert(alert_id: IdInPath, caller: ResponderCaller, session: SessionDep) -> AlertOut:
    """Show one alert with the ids of its runs."""
    with bound(alert_id=alert_id):
        alert = get_alert(session, alert_id)
        return AlertOut.of(alert, runs=list_runs(session, alert_id=alert.id, limit=1000))
