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
    findings: list[dict[str, Any]] = Field(
        description="The investigation's findings (``vars.findings``, set by "
        "investigation.assess): question, answer, evidence, confidence."
    )
    open_questions: list[dict[str, Any]] = Field(
        description="Questions the investigation could not answer, each with why "
        "(``vars.open_questions``)."
    )
    verdict: dict[str, Any] | None = Field(
        description="Unusual or not, why, severity, principal kind (``vars.verdict``)."
    )
    narrative: str | None = Field(
        description="The narrative written from the findings (``vars.narrative``)."
    )
    recommendation: list[str] = Field(
        description="What to do, and whom to confirm with (``vars.recommendation``)."
    )
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
        run_vars = run.state.get("vars", {})
        return cls(
            **RunSummary.of(run).model_dump(),
            alert_ids=list(alert_ids),
            vars=run_vars,
            **investigation(run_vars),
            steps=[StepOut.model_validate(record) for record in journal],
            approvals=approvals,
        )


def investigation(run_vars: dict[str, Any]) -> dict[str, Any]:
    """The investigation's results among a run's variables, each of its expected shape or empty.

    A playbook may set these names to anything (``core.set``): what does not have the shape
    investigation.assess / investigation.narrate give it is left out of these fields (it stays
    in ``vars``).
    """
    verdict, narrative = run_vars.get("verdict"), run_vars.get("narrative")
    recommendation = run_vars.get("recommendation")
    return {
        "findings": _objects(run_vars.get("findings")),
        "open_questions": _objects(run_vars.get("open_questions")),
        "verdict": verdict if isinstance(verdict, dict) else None,
        "narrative": narrative if isinstance(narrative, str) else None,
        "recommendation": [r for r in recommendation if isinstance(r, str)]
        if isinstance(recommendation, list) else [],
    }


def _objects(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


class RunList(BaseModel):
    runs: list[RunSummary]
