"""Wire models: playbooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from api.schemas.common import Page
from engine.playbooks import LoadedPlaybook, PlaybookProblem


class StepBrief(BaseModel):
    id: str
    action: str
    approval: dict[str, Any] | None


class PlaybookOut(BaseModel):
    """A loaded playbook: its name, triggers and steps."""

    name: str
    description: str
    hash: str
    file: str
    triggers: list[dict[str, Any]] = Field(
        description="The alerts that start it, in order (an alert is handled by the first it "
        "matches); empty: started by hand only."
    )
    trigger: dict[str, Any] | None = Field(
        description="The first of ``triggers``, or null (kept for clients written when a "
        "playbook had one trigger; read ``triggers``)."
    )
    mode: str = Field(
        description="Mode of the runs alerts start: the playbook's own, else "
        "RIPOSTE_DEFAULT_MODE; dry_run: rehearsals (shadow mode), nothing changes in AWS."
    )
    steps: list[StepBrief]

    @classmethod
    def summary_fields(cls, playbook: LoadedPlaybook, *, default_mode: str) -> dict[str, Any]:
        spec = playbook.spec
        return {
            "name": spec.name,
            "description": spec.description,
            "mode": spec.mode or default_mode,
            "hash": playbook.hash,
            "file": Path(playbook.file).name,
            "triggers": [trigger.model_dump(mode="json") for trigger in spec.triggers],
            "trigger": spec.triggers[0].model_dump(mode="json") if spec.triggers else None,
            "steps": [
                StepBrief(
                    id=step.id,
                    action=step.action,
                    approval=step.approval.model_dump(mode="json") if step.approval else None,
                )
                for step in spec.steps
            ],
        }

    @classmethod
    def of(cls, playbook: LoadedPlaybook, *, default_mode: str) -> PlaybookOut:
        return cls(**cls.summary_fields(playbook, default_mode=default_mode))


class PlaybookDetail(PlaybookOut):
    """A loaded playbook with the YAML text runs started now would pin."""

    text: str

    @classmethod
    def detailed(cls, playbook: LoadedPlaybook, *, default_mode: str) -> PlaybookDetail:
        return cls(**cls.summary_fields(playbook, default_mode=default_mode), text=playbook.text)


class ProblemOut(BaseModel):
    file: str
    line: int | None
    step: str | None
    message: str

    @classmethod
    def of(cls, problem: PlaybookProblem, *, directory: Path) -> ProblemOut:
        path = Path(problem.file)
        shown = path.name if path.parent == directory else problem.file
        return cls(file=shown, line=problem.line, step=problem.step, message=problem.message)


class PlaybookList(Page):
    playbooks: list[PlaybookOut]
    problems: list[ProblemOut]
