"""Alerts: the generic delivery endpoint and reads of stored alerts."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api.deps import (
    BodyDigestDep,
    IdInPath,
    IngestCaller,
    LibraryDep,
    Limit,
    Offset,
    ResponderCaller,
    SessionDep,
)
from api.errors import unavailable
from api.schemas import AlertIn, AlertList, AlertOut, IngestOut
from engine.metrics import ALERTS_RECEIVED
from engine.store.alerts import get_alert, ingest_alert, list_alerts
from engine.store.runs import list_runs
from riposte.logs import bound

log = logging.getLogger("riposte.api")
router = APIRouter(tags=["alerts"])

ENDPOINT = "/v1/alerts"
# The source is chosen by the sender: only known ones become label values, so a sender cannot
# grow the metric without bound.
_METRIC_SOURCES = frozenset(
    {"generic", "sns", "cloudwatch", "eventbridge", "securityhub", "guardduty", "cloudtrail"}
)

@router.post(
    ENDPOINT,
    status_code=202,
    responses={
        200: {"model": IngestOut, "description": "A repeat of a stored alert (same dedup_key)."},
        503: {"description": "Not stored (database unavailable): retry later."},
    },
)
def post_alert(
    body: AlertIn,
    caller: IngestCaller,
    session: SessionDep,
    library: LibraryDep,
    digest: BodyDigestDep,
    response: Response,
) -> IngestOut:
    """Store an alert and queue every playbook it triggers; 2xx means it is committed."""
    alert = body.normalized()
    metric_source = alert.source if alert.source in _METRIC_SOURCES else "other"
    try:
        with session.begin():
            result = ingest_alert(
                session=session,
                alert=alert,
                playbooks=library.current(),
                endpoint=ENDPOINT,
                body_sha256=digest.sha256,
                body_bytes=digest.size,
                actor=caller.name,
            )
    except DataError:
        raise  # a value the database refuses: retrying would not help (400)
    except (DBAPIError, PoolTimeout) as exc:
        ALERTS_RECEIVED.labels(metric_source, "unavailable").inc()
        log.warning("alert from %s not stored: %s", caller.name, type(exc).__name__)
        raise unavailable("the alert was not stored (database unavailable); retry later") from None
    ALERTS_RECEIVED.labels(metric_source, "duplicate" if result.duplicate else "accepted").inc()
    with bound(alert_id=result.alert_id):
        if result.duplicate:
            response.status_code = 200
            log.info("repeat of alert %s from %s", result.alert_id, caller.name)
        else:
            log.info("alert %s from %s queued %d runs", result.alert_id, caller.name,
                     len(result.run_ids))
    return IngestOut(alert_id=result.alert_id, run_ids=result.run_ids,
                     duplicate=result.duplicate)


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
