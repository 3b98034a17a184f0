"""The workers, as their heartbeats show them: who is live, who went silent, who stopped."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminCaller, Limit, SessionDep, SettingsDep
from api.schemas.health import WorkerList, WorkerOut
from engine.store import workers
from engine.store.types import utcnow

router = APIRouter(prefix="/v1/workers", tags=["workers"])


@router.get("")
def get_workers(
    caller: AdminCaller, session: SessionDep, settings: SettingsDep, limit: Limit = 100
) -> WorkerList:
    """List the workers heard from in the last days, the most recently heard first."""
    silent_after = settings.worker_silent_after
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
        for row in workers.list_workers(session, limit=limit)
    ]
    return WorkerList(
        workers=shown, live=sum(w.state == workers.LIVE for w in shown), silent_after=silent_after
    )
