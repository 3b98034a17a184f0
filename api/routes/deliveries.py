"""Deliveries: every body an ingest endpoint received, accepted, duplicate or rejected."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from api.deps import AdminCaller, SessionDep
from api.pagination import (
    DEFAULT_LIMIT,
    Limit,
    TimeIdCursor,
    page,
    read_time_and_id,
    time_and_id,
)
from api.problems import AUTHENTICATED, problems
from api.query import STRICT_QUERY
from api.schemas import DeliveryList, DeliveryOut
from engine.store.alert_reads import list_deliveries

router = APIRouter(tags=["deliveries"], dependencies=STRICT_QUERY)

Outcome = Literal["accepted", "duplicate", "rejected"]


@router.get("/v1/deliveries", operation_id="listDeliveries",
            responses=problems(*AUTHENTICATED, 422))
def get_deliveries(
    request: Request,
    caller: AdminCaller,
    session: SessionDep,
    outcome: Annotated[Outcome | None, Query(description="Only deliveries with it.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: TimeIdCursor = None,
) -> DeliveryList:
    """List recorded deliveries, newest first."""
    rows = list_deliveries(session, outcome=outcome, limit=limit + 1,
                           before=read_time_and_id(cursor) if cursor else None)
    shown, next_page = page(request, rows, limit=limit,
                            cursor=lambda row: time_and_id(row.received_at, row.id))
    return DeliveryList(deliveries=[DeliveryOut.model_validate(row) for row in shown],
                        next=next_page)
