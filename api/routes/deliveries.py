"""Deliveries: every body an ingest endpoint received, accepted, duplicate or rejected."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import AdminCaller, Limit, Offset, SessionDep
from api.schemas import DeliveryList, DeliveryOut
from engine.store.alerts import list_deliveries

router = APIRouter(tags=["deliveries"])

Outcome = Literal["accepted", "duplicate", "rejected"]


@router.get("/v1/deliveries")
def get_deliveries(
    caller: AdminCaller,
    session: SessionDep,
    outcome: Annotated[Outcome | None, Query(description="Only deliveries with it.")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> DeliveryList:
    """List recorded deliveries, newest first."""
    rows = list_deliveries(session, outcome=outcome, limit=limit, offset=offset)
    return DeliveryList(deliveries=[DeliveryOut.model_validate(row) for row in rows])
