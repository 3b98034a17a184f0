"""The moments of a run that time to contain is measured between (engine.containment)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.store.models import Alert, ApprovalRequest, StepRecord

APPROVED = "approved"
SUCCEEDED = "succeeded"


@dataclass(frozen=True)
class RunTimeline:
    """When a run's first step began, its last approval was granted, and each step succeeded."""

    first_step_at: datetime | None
    last_approved_at: datetime | None
    succeeded: list[tuple[str, datetime]]  # (action, finished_at) of each step that succeeded


def alert_received_at(session: Session, alert_id: str) -> datetime | None:
    """Return when Riposte received the alert ``alert_id`` (its first delivery)."""
    return session.execute(select(Alert.first_seen).where(Alert.id == alert_id)).scalar()


def first_step_at(session: Session, run_id: str) -> datetime | None:
    """Return when the run's first step began (its first journal row), or None."""
    query = select(func.min(StepRecord.started_at)).where(StepRecord.run_id == run_id)
    return session.execute(query).scalar()


def run_timeline(session: Session, run_id: str, round: int) -> RunTimeline:
    """Return the moments of run ``run_id`` in its round ``round`` (the one it ended in)."""
    last_approved = session.execute(
        select(func.max(ApprovalRequest.decided_at))
        .where(ApprovalRequest.run_id == run_id, ApprovalRequest.status == APPROVED)
    ).scalar()
    rows = session.execute(
        select(StepRecord.action, StepRecord.finished_at)
        .where(StepRecord.run_id == run_id, StepRecord.round == round,
               StepRecord.status == SUCCEEDED, StepRecord.finished_at.is_not(None))
    ).all()
    return RunTimeline(
        first_step_at=first_step_at(session, run_id),
        last_approved_at=last_approved,
        succeeded=[(action, finished) for action, finished in rows if finished is not None],
    )


def oldest_pending_request_at(session: Session) -> datetime | None:
    """Return when the oldest approval request still waiting for a decision was opened."""
    query = select(func.min(ApprovalRequest.created_at)).where(ApprovalRequest.status == "pending")
    return session.execute(query).scalar()
