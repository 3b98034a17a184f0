"""Chat messages posted about approval requests: stored when posted, found again to edit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.store.models import ApprovalMessage, ApprovalRequest
from engine.store.types import utcnow

REQUEST = "request"  # the message that asked for the decision
ESCALATION = "escalation"  # the one that asked the escalation group


@dataclass(frozen=True)
class Posted:
    """A message the chat accepted: where it is, and what it was posted for."""

    target: str
    channel: str
    ts: str


def add_messages(
    session: Session, *, request_id: str, kind: str, shows: str, posted: Sequence[Posted]
) -> None:
    """Store the messages just posted about a request."""
    now = utcnow()
    for message in posted:
        session.add(ApprovalMessage(
            request_id=request_id, target=message.target, channel=message.channel,
            ts=message.ts, kind=kind, shows=shows, posted_at=now, updated_at=now,
        ))
    session.flush()


def messages_of(session: Session, request_ids: Sequence[str]) -> Sequence[ApprovalMessage]:
    """The messages posted about these requests, oldest first."""
    if not request_ids:
        return []
    query = (select(ApprovalMessage).where(ApprovalMessage.request_id.in_(request_ids))
             .order_by(ApprovalMessage.posted_at, ApprovalMessage.id))
    return session.execute(query).scalars().all()


def messages_of_run(session: Session, run_id: str) -> Sequence[ApprovalMessage]:
    """The messages posted about every approval request of a run, oldest first."""
    query = (
        select(ApprovalMessage)
        .join(ApprovalRequest, ApprovalRequest.id == ApprovalMessage.request_id)
        .where(ApprovalRequest.run_id == run_id)
        .order_by(ApprovalMessage.posted_at, ApprovalMessage.id)
    )
    return session.execute(query).scalars().all()


def message_at(session: Session, *, channel: str, ts: str) -> ApprovalMessage | None:
    """The stored message at ``channel``/``ts`` (the one a button was pressed on), if any."""
    query = select(ApprovalMessage).where(ApprovalMessage.channel == channel,
                                          ApprovalMessage.ts == ts)
    return session.execute(query).scalars().first()


def shown(session: Session, message_id: str, *, shows: str, request_id: str | None = None) -> None:
    """Record what a message shows now (and which request, when it now shows another)."""
    values: dict[str, str] = {"shows": shows}
    if request_id is not None:
        values["request_id"] = request_id
    session.execute(update(ApprovalMessage).where(ApprovalMessage.id == message_id)
                    .values(updated_at=utcnow(), **values))
