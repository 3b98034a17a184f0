"""Wire models: runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from api.schemas.common import (
    Page,
    RequestModel,
    ResponseModel,
    Text,
)
from engine import conductor
from engine.store.models import Run, StepRecord

Mode = Literal["live", "dry_run"]


class RunIn(RequestModel):
    """Start a playbook on a stored alert by hand."""

    alert_id: Annotated[Text, Field(min_length=1, max_length=36)]
    playbook: Annotated[Text, Field(min_length=1, max_length=128)]
    mode: Mode | None = Field(
        default=None,
        description="live, or dry_run (a rehearsal: nothing changes in AWS); none: the "
        "playbook's mode, else RIPOSTE_DEFAULT_MODE.",
    )


class StepOut(ResponseModel):
    """One execution of a step, from the run's journal."""

    step_id: str
    action: str
    status: str
    round: int = Field(
        description="Which judgement of the run's alerts it belongs to: alerts that joined "
        "before anything was approved or changed started the run over, in a new round."
    )
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


class LeftUndone(ResponseModel):
    """Work a succeeded step said it did not do, and why."""

    step: str
    target: str
    reason: str


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
    not_before: datetime | None = Field(
        description="Queued, it starts no sooner: it waits for its burst to go quiet "
        "(the trigger's settle)."
    )
    round: int = Field(
        default=1,
        description="How many times it has judged its alerts: 1, plus one each time alerts "
        "joined it before anything was approved or changed.",
    )
    follows: str | None = Field(
        default=None,
        description="The run this one follows up: alerts of its burst arrived after that run "
        "ended or acted, so this one judges the whole burst again and asks for what is left.",
    )
    rehearses: str | None = Field(
        default=None,
        description="The run this one rehearses (POST /v1/runs/{id}/rehearse); every dry_run "
        "run is a rehearsal and changes nothing in AWS.",
    )
    outcome: str | None = Field(
        default=None,
        description="How the run ended: its final status, or ``partial`` when it succeeded but "
        "a step left work undone (``left_undone``); null until it ends.",
    )
    left_undone: list[LeftUndone] = Field(
        default=[],
        description="What its steps said they left undone (e.g. instances no backup could "
        "relaunch), by step.",
    )

    @classmethod
    def of(cls, run: Run) -> RunSummary:
        summary = RunSummary.model_validate(run)
        rehearses = run.state.get("rehearses")
        summary.rehearses = rehearses if isinstance(rehearses, str) else None
        summary.round = conductor.round_of(run.state)
        follows = run.state.get("follows")
        summary.follows = follows if isinstance(follows, str) else None
        # The step records in the run's state keep what each step left undone.
        summary.outcome = conductor.outcome(run.state)
        summary.left_undone = [LeftUndone(**i) for i in conductor.left_undone(run.state)]
        return summary


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


class RunList(Page):
    runs: list[RunSummary]
