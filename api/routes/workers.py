"""The workers, as their heartbeats show them: who is live, who went silent, who stopped."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.deps import AdminCaller, SessionDep, SettingsDep
from api.pagination import (
    DEFAULT_LIMIT,
    Limit,
    TimeNameCursor,
    page,
    read_time_and_name,
    time_and_name,
)
from api.problems import AUTHENTICATED, problems
from api.query import STRICT_QUERY
from api.schemas.health import WorkerList, WorkerOut
from engine.store import workers
from engine.store.types import utcnow

router = APIRouter(prefix="/v1/workers", tags=["workers"], dependencies=STRICT_QUERY)


@router.get("", operation_id="listWorkers", responses=problems(*AUTHENTICATED, 422))
def get_workers(
    request: Request, caller: AdminCaller, session: SessionDep, settings: SettingsDep,
    limit: Limit = DEFAULT_LIMIT, cursor: TimeNameCursor = None,
) -> WorkerList:
    """List the workers heard from in the last days, the most recently heard first."""
    silent_after = settings.worker_silent_after
    rows, next_page = page(
        request,
        workers.list_workers(session, limit=limit + 1,
                             after=read_time_and_name(cursor) if cursor else None),
        limit=limit, cursor=lambda row: time_and_name(row.last_seen_at, row.id))
    now = utcnow()
    shown = [
        WorkerOut(
            id=row.id, host=row.host, pid=row.pid,
            state=workers.state_of(row, silent_after=silent_after, now=now),
            started_at=row.started_at, last_seen_at=row.last_seen_at,
            seconds_since_seen=round((now - row.last_seen_at).total_seconds(), 3),
            stopped_at=row.stopped_at, runs_claimed=row.runs_claimed, errors=row.errors,
            run_id=row.run_id,
        )
        for row in rows
    ]
    return WorkerList(
        workers=shown, live=sum(w.state == workers.LIVE for w in shown), silent_after=silent_after,
        next=next_page,
    )
