"""The notice feed's place in the audit log, held by one worker at a time under a lease.

Events are appended to the audit log in commit order (each append waits for the chain's tail
row, which the previous append holds until its commit: engine.audit), so once an event is seen
no event with a smaller id can still appear: following the log by id misses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from engine.store.models import AuditEvent, NoticeFeed
from engine.store.types import utcnow

_ROW = 1


def behind(session: Session) -> bool:
    """Whether events were appended since the feed's place (read only: an idle pass writes
    nothing); True too when the feed has no row yet."""
    last = session.execute(select(NoticeFeed.last_event_id).where(NoticeFeed.id == _ROW)
                           ).scalar()
    end = session.execute(select(func.coalesce(func.max(AuditEvent.id), 0))).scalar_one()
    return last is None or int(end) > int(last)


def claim(session: Session, *, worker: str, lease_seconds: float) -> int | None:
    """Take the feed for ``lease_seconds`` and return the last event id told; None if another
    worker holds it."""
    now = utcnow()
    taken = session.execute(
        update(NoticeFeed)
        .where(NoticeFeed.id == _ROW,
               or_(NoticeFeed.owner.is_(None), NoticeFeed.owner == worker,
                   NoticeFeed.lease_until < now))
        .values(owner=worker, lease_until=now + timedelta(seconds=lease_seconds))
        .returning(NoticeFeed.last_event_id)
    ).scalar()
    if taken is not None:
        return int(taken)
    if session.get(NoticeFeed, _ROW) is not None:
        return None  # another worker's
    # A database made without the migrations' seed row: start at the end of the log.
    last = session.execute(select(func.coalesce(func.max(AuditEvent.id), 0))).scalar_one()
    session.add(NoticeFeed(id=_ROW, last_event_id=last, owner=worker,
                           lease_until=now + timedelta(seconds=lease_seconds)))
    session.flush()
    return int(last)


def advance(session: Session, *, worker: str, to: int, lease_seconds: float) -> bool:
    """Move the feed past event ``to`` and renew the lease; False if it is no longer ours."""
    moved = session.execute(
        update(NoticeFeed)
        .where(NoticeFeed.id == _ROW, NoticeFeed.owner == worker)
        .values(last_event_id=to, lease_until=utcnow() + timedelta(seconds=lease_seconds))
    )
    return bool(moved.rowcount)  # type: ignore[attr-defined]


def release(session: Session, *, worker: str) -> None:
    """Let go of the feed (another worker may take it at once)."""
    session.execute(update(NoticeFeed).where(NoticeFeed.id == _ROW, NoticeFeed.owner == worker)
                    .values(owner=None, lease_until=None))


def events_after(
    session: Session, last_id: int, *, verbs: Sequence[str], limit: int
) -> tuple[Sequence[AuditEvent], int]:
    """The events of ``verbs`` after ``last_id`` (at most ``limit``), and the id the feed may
    move to once they are told: the last one's, or the log's end when fewer were found."""
    end = session.execute(select(func.coalesce(func.max(AuditEvent.id), 0))).scalar_one()
    events = session.execute(
        select(AuditEvent)
        .where(AuditEvent.id > last_id, AuditEvent.id <= end, AuditEvent.verb.in_(verbs))
        .order_by(AuditEvent.id).limit(limit)
    ).scalars().all()
    if len(events) == limit:
        return events, events[-1].id
    return events, max(int(end), last_id)
