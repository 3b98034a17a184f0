"""Wire models: approvals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from api.schemas.common import (
    RequestModel,
    ResponseModel,
    Text,
)
from engine.store.models import ApprovalDecision, ApprovalRequest


class DecisionIn(RequestModel):
    """One approver's answer."""

    decision: Literal["approve", "reject"]
    reason: Annotated[Text, Field(min_length=1, max_length=2000)]
    plan_hash: Annotated[Text, Field(max_length=64)] | None = Field(
        default=None, description="The plan hash the approver saw; refused if the plan changed."
    )


class DecisionOut(ResponseModel):
    actor: str
    decision: str
    reason: str
    plan_hash: str
    created_at: datetime


class ApprovalSummary(ResponseModel):
    """An approval request without its plan."""

    id: str
    run_id: str
    step_id: str
    status: str
    plan_hash: str
    required: int
    approvers: list[str]
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, request: ApprovalRequest) -> ApprovalSummary:
        return ApprovalSummary.model_validate(request)


class ApprovalOut(ApprovalSummary):
    """An approval request, the exact plan it approves, and the decisions so far."""

    plan: dict[str, Any]
    decisions: list[DecisionOut]

    @classmethod
    def detailed(
        cls, request: ApprovalRequest, *, decisions: Sequence[ApprovalDecision]
    ) -> ApprovalOut:
        return cls(
            **ApprovalSummary.of(request).model_dump(),
            plan=request.plan,
            decisions=[DecisionOut.model_validate(d) for d in decisions],
        )


class ApprovalList(BaseModel):
    approvals: list[ApprovalSummary]
