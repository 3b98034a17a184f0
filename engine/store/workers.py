"""Worker heartbeats: who is alive, who went silent, and runs no live worker is there to take."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from engine import conductor
from engine.store.models import Run, WorkerHeartbeat
from engine.store.types import utcnow

WorkerState = Literal["live", "silent", "stopped"]
LIVE: Final = "live"
SILENT: Final = "silent"  # not heard from in RIPOSTE_WORKER_SILENT_AFTER: dead or stuck
STOPPED: Final = "stopped"  # stopped as asked (SIGTERM, Ctrl-C, the API shutting down)
# Rows of workers not heard from in this long are deleted (a host:pid id is new at every start).
KEPT_FOR = timedelta(days=7)


@dataclass(frozen=True)
class Beat:
    """What a worker says of itself at each heartbeat."""

    worker_id: str
    host: str
    pid: int
    started_at: datetime
    runs_claimed: int
    errors: int
    run_id: str | None


def beat(session: Session, beat: Beat) -> None:
    """Record that the worker is alive now (its row is made at its first beat)."""
    values = {
        "host": beat.host, "pid": beat.pid, "started_at": beat.started_at,
        "last_seen_at": utcnow(), "stopped_at": None, "runs_claimed": beat.runs_claimed,
        "errors": beat.errors, "run_id": beat.run_id,
    }
    done = session.execute(
        update(WorkerHeartbeat).where(WorkerHeartbeat.id == beat.worker_id).values(**values)
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        session.execute(insert(WorkerHeartbeat).values(id=beat.worker_id, **values))


def same_id_elsewhere(
    session: Session, beat: Beat, *, silent_after: float
) -> WorkerHeartbeat | None:
    """Return the row of another live process (other host or pid) using this worker's id."""
    row = session.get(WorkerHeartbeat, beat.worker_id)
    if row is None or (row.host, row.pid) == (beat.host, beat.pid):
        return None
    return row if state_of(row, silent_after=silent_after) == LIVE else None


def sign_off(session: Session, worker_id: str) -> None:
    """Record that the worker stopped as it was asked to."""
    now = utcnow()
    session.execute(
        update(WorkerHeartbeat)
        .where(WorkerHeartbeat.id == worker_id)
        .values(stopped_at=now, last_seen_at=now, run_id=None)
    )


def state_of(
    row: WorkerHeartbeat, *, silent_after: float, now: datetime | None = None
) -> WorkerState:
    """Tell whether a worker is live, silent or stopped."""
    if row.stopped_at is not None:
        return STOPPED
    if (now or utcnow()) - row.last_seen_at > timedelta(seconds=silent_after):
        return SILENT
    return LIVE


def list_workers(
    session: Session, *, limit: int = 100, after: tuple[datetime, str] | None = None
) -> Sequence[WorkerHeartbeat]:
    """Return the workers heard from, the most recently heard first.

    ``after``: only those after that (last_seen_at, id) in this order, the keyset of a page.
    """
    query = select(WorkerHeartbeat).order_by(
        WorkerHeartbeat.last_seen_at.desc(), WorkerHeartbeat.id
    )
    if after is not None:
        seen, worker_id = after
        query = query.where(or_(WorkerHeartbeat.last_seen_at < seen,
                                and_(WorkerHeartbeat.last_seen_at == seen,
                                     WorkerHeartbeat.id > worker_id)))
    return session.execute(query.limit(limit)).scalars().all()


def count_live(session: Session, *, silent_after: float) -> int:
    """Return how many workers were heard from lately and have not stopped."""
    heard_since = utcnow() - timedelta(seconds=silent_after)
    query = select(func.count()).where(
        WorkerHeartbeat.stopped_at.is_(None), WorkerHeartbeat.last_seen_at >= heard_since
    )
    return int(session.execute(query).scalar_one())


@dataclass(frozen=True)
class Unattended:
    """A run that could have been taken by a worker since ``runnable_since``."""

    run_id: str
    alert_id: str
    status: str
    runnable_since: datetime


def unattended_runs(
    session: Session, *, runnable_before: datetime, limit: int = 100
) -> list[Unattended]:
    """Return runs runnable since before ``runnable_before``, the oldest first.

    Queued ones (past their ``not_before``), and running ones whose lease has expired.
    """
    since = func.coalesce(Run.not_before, Run.queued_at)
    waiting = or_(
        and_(
            Run.status == conductor.QUEUED,
            Run.queued_at <= runnable_before,
            or_(Run.not_before.is_(None), Run.not_before <= runnable_before),
        ),
        and_(Run.status == conductor.RUNNING, Run.lease_expires_at <= runnable_before),
    )
    query = (
        select(Run.id, Run.alert_id, Run.status, since, Run.lease_expires_at)
        .where(waiting)
        .order_by(Run.queued_at)
        .limit(limit)
    )
    return [
        Unattended(
            run_id=run_id, alert_id=alert_id, status=status,
            runnable_since=expired if status == conductor.RUNNING and expired else queued,
        )
        for run_id, alert_id, status, queued, expired in session.execute(query)
    ]


def prune(session: Session) -> int:
    """Delete the rows of workers not heard from in ``KEPT_FOR``; return how many."""
    result = session.execute(
        delete(WorkerHeartbeat).where(WorkerHeartbeat.last_seen_at < utcnow() - KEPT_FOR)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
