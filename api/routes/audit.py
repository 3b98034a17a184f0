"""The audit log: filtered reads, paged by id, and verification of the hash chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.deps import IdFilter, ResponderCaller, SessionDep
from api.pagination import DEFAULT_LIMIT, Limit, SerialCursor, page
from api.problems import AUTHENTICATED, problems
from api.query import STRICT_QUERY
from api.schemas import AuditEventOut, AuditPage, ChainReportOut
from api.schemas.common import Moment
from engine import audit

router = APIRouter(prefix="/v1/audit", tags=["audit"], dependencies=STRICT_QUERY)


@router.get("", operation_id="listAuditEvents", responses=problems(*AUTHENTICATED, 422))
def get_audit(
    request: Request,
    caller: ResponderCaller,
    session: SessionDep,
    alert_id: IdFilter = None,
    run_id: IdFilter = None,
    actor: IdFilter = None,
    since: Annotated[Moment, Query(description="At or after (ISO 8601 with a zone).")] = None,
    until: Annotated[Moment, Query(description="Before (ISO 8601 with a zone).")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: SerialCursor = None,
) -> AuditPage:
    """List audit events oldest first, at or after ``since`` and before ``until``."""
    rows = audit.list_events(session, alert_id=alert_id, run_id=run_id, actor=actor, since=since,
                             until=until, limit=limit + 1, after_id=int(cursor or 0))
    events, next_page = page(request, rows, limit=limit, cursor=lambda event: str(event.id))
    return AuditPage(events=[AuditEventOut.model_validate(event) for event in events],
                     next=next_page)


@router.get("/verify", operation_id="verifyAuditChain",
            responses=problems(*AUTHENTICATED, 422))
def verify_audit(caller: ResponderCaller, session: SessionDep) -> ChainReportOut:
    """Recompute the hash chain; the body says whether it holds and where it breaks."""
    return ChainReportOut.model_validate(audit.verify(session))

