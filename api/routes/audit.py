"""The audit log: filtered reads, paged by id, and verification of the hash chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from api.deps import IdFilter, ResponderCaller, SessionDep
from api.schemas import AuditEventOut, AuditPage, ChainReportOut
from engine import audit

router = APIRouter(prefix="/v1/audit", tags=["audit"])

MAX_ID = 2**63 - 1


@router.get("")
def get_audit(
    caller: ResponderCaller,
    session: SessionDep,
    alert_id: IdFilter = None,
    run_id: IdFilter = None,
    actor: IdFilter = None,
    since: Annotated[AwareDatetime | None, Query(description="ISO 8601 with a zone.")] = None,
    until: Annotated[AwareDatetime | None, Query(description="ISO 8601 with a zone.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID, description="Last id already seen.")] = 0,
) -> AuditPage:
    """List audit events oldest first; page with ``after_id`` = the last id of a page."""
    events = audit.list_events(session, alert_id=alert_id, run_id=run_id, actor=actor, since=since,
                     until=until, limit=limit, after_id=after_id)
    return AuditPage(
        events=[AuditEventOut.model_validate(event) for event in events],
        next_after_id=events[-1].id if len(events) == limit else None,
    )


@router.get("/verify")
def verify_audit(caller: ResponderCaller, session: SessionDep) -> ChainReportOut:
    """Recompute the hash chain; the body says whether it holds and where it breaks."""
    return ChainReportOut.model_validate(audit.verify(session))

