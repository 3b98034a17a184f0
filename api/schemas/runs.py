"""Wire models: runs."""

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
from engine.store.models import Run, StepRecord

Mode = Literal["live", "dry_run"]


class RunIn(RequestModel):
    """Start a playbook on a stored alert by hand."""

    alert_id: Annotated[Text, Field(min_length=1, max_length=36)]
    playbook: Annotated[Text, Field(min_length=1, max_length=128)]
    mode: Mode = "live"


class StepOut(ResponseModel):
    """One execution of a step, from the run's journal."""

    step_id: str
    action: str
    status: str
    attempts: int
    params: Any
    output: Any
    error: dict[str, Any] | None
    worker: str
    started_at: datetime
    finished_at: datetime | None


class ApprovalRef(ResponseModel):
    """An approval request of a run, in brief."""

    id: str
    step_id: str
    status: str


class RunSummary(ResponseModel):
    """A run, without its journal."""

    id: str
    alert_id: str
    playbook: str
    playbook_hash: str
    mode: str
    status: str
    started_by: str
    error: str | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, run: Run) -> RunSummary:
        return RunSummary.model_validate(run)


class RunOut(RunSummary):
    """A run with its alerts, its context, its journal and its approval requests."""

    alert_ids: list[str] = Field(
        description="Every alert the run sees (templates: ``alerts``), in event time: the one "
        "that started it and those that joined it (correlated, or counted by a threshold)."
    )
    vars: dict[str, Any]
    steps: list[StepOut]
    approvals: list[ApprovalRef]

    @classmethod
    def detailed(
        cls, run: Run, *, alert_ids: Sequence[str], journal: Sequence[StepRecord]
    ) -> RunOut:
        """Shape a run; its approval requests are read from its state."""
        approvals = [
            ApprovalRef(id=step["approval"]["request"], step_id=step_id,
                        status=step["approval"]["status"])
            for step_id, step in run.state.get("steps", {}).items()
            if step.get("approval")
        ]
        return cls(
            **RunSummary.of(run).model_dump(),
            alert_ids=list(alert_ids),
            vars=run.state.get("vars", {}),
            steps=[StepOut.model_validate(record) for record in journal],
            approvals=approvals,
        )


class RunList(BaseModel):
    runs: list[RunSummary]
