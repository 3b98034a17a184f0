"""Wire models: approvals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy.orm import Session

from api.schemas.common import (
    Page,
    RequestModel,
    ResponseModel,
    Text,
)
from engine.store.deciders import Deciders, decisions, remaining_deciders
from engine.store.models import ApprovalDecision, ApprovalRequest
from engine.store.rehearsals import run_modes


class DecisionIn(RequestModel):
    """One approver's answer."""

    decision: Literal["approve", "reject"]
    reason: Annotated[Text, Field(min_length=1, max_length=2000)]
    plan_hash: Annotated[
        str,
        Field(
            pattern=r"^[0-9a-f]{64}$",
            description="The plan_hash of the plan the approver reviewed (GET "
            "/v1/approvals/{id}); refused with 409 if the request's plan is not that one.",
        ),
    ]


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
    mode: str = Field(
        description="The run's mode: live, or dry_run — a rehearsal, whose approval changes "
        "nothing in AWS (its calls are planned, never made)."
    )

    @classmethod
    def of(cls, request: ApprovalRequest, *, mode: str) -> ApprovalSummary:
        stored = {
            name: getattr(request, name) for name in ApprovalSummary.model_fields if name != "mode"
        }
        return ApprovalSummary(**stored, mode=mode)


class ExcludedOut(ResponseModel):
    """A token that may not decide the request, and why."""

    name: str
    why: str


class DecidersOut(ResponseModel):
    """Who else may decide a request."""

    summary: str = Field(description="One line: who else may decide, or why nobody may.")
    anyone: bool = Field(
        description="The request names no approvers: any responder or admin token may decide, "
        "except the excluded ones."
    )
    approvers: list[str] = Field(
        description="The request's approvers still able to decide: token:<name> for a token "
        "that has not decided, did not start the run nor deliver one of its alerts, and "
        "role:<role> (any token of that role except the excluded ones)."
    )
    excluded: list[ExcludedOut] = Field(
        description="Tokens that may not decide: whoever started the run, a responder or admin "
        "token that delivered one of its alerts, and who already decided."
    )
    closed: str | None = Field(
        description="Why nobody may decide any more (settled, expired, run ended); null while "
        "the request is open."
    )

    @classmethod
    def of(cls, deciders: Deciders) -> DecidersOut:
        return cls(
            summary=deciders.summary(),
            anyone=deciders.anyone,
            approvers=deciders.approvers,
            excluded=[ExcludedOut(name=name, why=why) for name, why in deciders.excluded.items()],
            closed=deciders.closed,
        )


class ApprovalOut(ApprovalSummary):
    """An approval request, the exact plan it approves, the decisions so far, who else may
    decide."""

    plan: dict[str, Any]
    decisions: list[DecisionOut]
    approvals_needed: int = Field(
        description="Approvals still needed to approve it: required minus the approvals so far "
        "(0 once the request is settled or can no longer be decided)."
    )
    deciders: DecidersOut

    @classmethod
    def detailed(
        cls,
        request: ApprovalRequest,
        *,
        decisions: Sequence[ApprovalDecision],
        deciders: Deciders,
        mode: str,
    ) -> ApprovalOut:
        return cls(
            **ApprovalSummary.of(request, mode=mode).model_dump(),
            plan=request.plan,
            decisions=[DecisionOut.model_validate(d) for d in decisions],
            approvals_needed=deciders.approvals_needed,
            deciders=DecidersOut.of(deciders),
        )

    @classmethod
    def read(cls, session: Session, request: ApprovalRequest) -> ApprovalOut:
        """Shape a request as ``GET /v1/approvals/{id}`` (and the console) show it."""
        return cls.detailed(request, decisions=decisions(session, request.id),
                            deciders=remaining_deciders(session, request),
                            mode=run_modes(session, [request.run_id])[request.run_id])


class ApprovalList(Page):
    approvals: list[ApprovalSummary]
