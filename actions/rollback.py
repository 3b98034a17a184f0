"""Undo what a run changed: every completed mutating step, newest first, as one approved step."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from actions import registry
from actions.base import Action, ActionContext, ActionError, ActionInput, PlannedCall
from actions.registry import register


class UndoEntry(BaseModel):
    """One change of the run being rolled back: the step, its action and its undo data."""

    model_config = ConfigDict(extra="forbid")

    step: str = Field(description="Id of the step of that run that made the change.")
    action: str = Field(description="The action the step ran, whose undo is called.")
    item: int | None = Field(default=None, description="Index in a for_each step's outputs.")
    undo: dict[str, Any] | None = Field(
        default=None, description="What the action recorded; none: it cannot be undone."
    )
    why_not: str = Field(default="", description="Why the change cannot be undone.")


class RollbackInput(ActionInput):
    of_run: str = Field(description="The run whose changes are undone.")
    entries: list[UndoEntry] = Field(description="The changes, in the order to undo them.")


@register
class Rollback(Action[RollbackInput]):
    """Undo a run's changes in the order given; list those that cannot be undone.

    ``POST /v1/runs/{id}/rollback`` builds this step (newest change first) behind an approval;
    it is not meant to be written by hand. Undoing stops at the first failure, which names
    what was already undone. Not reversible: a rollback is not itself rolled back; what it
    put back stays until someone changes it again.

    ```yaml
    - id: undo
      action: core.rollback
      with:
        of_run: "0190c3e0-0000-7000-8000-000000000000"
        entries:
          - step: revoke
            action: aws.iam.revoke_access_keys
            undo: {user: mallory, keys: []}
    ```
    """

    name = "core.rollback"
    Input = RollbackInput
    mutating = True

    def plan(self, ctx: ActionContext, params: RollbackInput) -> list[PlannedCall]:
        calls: list[PlannedCall] = []
        for entry in params.entries:
            if entry.undo is None:
                calls.append(_cannot_undo(entry))
                continue
            calls += registry.get(entry.action)().plan_undo(ctx, entry.undo)
        return calls

    def run(self, ctx: ActionContext, params: RollbackInput) -> dict[str, Any]:
        undone: list[dict[str, Any]] = []
        skipped = [_label(e) + f": {e.why_not}" for e in params.entries if e.undo is None]
        for entry in params.entries:
            if entry.undo is None:
                continue
            try:
                output = registry.get(entry.action)().undo(ctx, entry.undo)
            except ActionError as exc:
                done = ", ".join(u["step"] for u in undone) or "nothing"
                raise ActionError(
                    exc.code,
                    f"undoing {_label(entry)} failed: {exc.message} (already undone: {done})",
                    retryable=exc.retryable,
                ) from exc
            undone.append({"step": _label(entry), "action": entry.action, "output": output})
        return {"of_run": params.of_run, "undone": undone, "not_undone": skipped, "undo": None}


def _label(entry: UndoEntry) -> str:
    return entry.step if entry.item is None else f"{entry.step}[{entry.item}]"


def _cannot_undo(entry: UndoEntry) -> PlannedCall:
    return PlannedCall(
        service="riposte",
        operation="CannotUndo",
        params={"step": _label(entry), "action": entry.action, "why": entry.why_not},
        target=_label(entry),
    )
