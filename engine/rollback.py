"""Rolling a run back: its completed changes, undone newest first, behind one approval.

A rollback is a run of its own, on the same alert, of a playbook made here: one ``core.rollback``
step guarded by an approval (quorum 1). Its plan — the undo calls of every change, and the
changes that cannot be undone — is what the approver sees and approves, like any other step.
The undo data travels in the playbook's ``vars`` and reaches the step as a value, never as
template text: it holds names that came from alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import yaml
from sqlalchemy.orm import Session

from actions import registry
from actions.base import Action
from engine import conductor
from engine.playbooks import LoadedPlaybook, parse_playbook
from engine.store.errors import Conflict
from engine.store.models import Run
from engine.store.runs import get_run, journal, queue_run


class StepDone(Protocol):
    """A step execution of a run's journal, as stored or as ``GET /v1/runs/{id}`` shows it."""

    @property
    def step_id(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def output(self) -> Any: ...


def undo_entries(session: Session, run_id: str) -> list[dict[str, Any]]:
    """Every change the run's succeeded mutating steps made, newest first."""
    return changes_to_undo(journal(session, run_id))


def changes_to_undo(steps: Sequence[StepDone]) -> list[dict[str, Any]]:
    """Every change these steps (a run's journal, oldest first) made, newest first: with its
    undo data, or why it cannot be undone. Pure: ``riposte runs rollback`` shows it first."""
    entries: list[dict[str, Any]] = []
    for record in reversed(steps):
        if record.status != "succeeded" or not _mutating(record.action):
            continue
        outputs = record.output if isinstance(record.output, list) else [record.output]
        indexed = len(outputs) > 1 or isinstance(record.output, list)
        for index in reversed(range(len(outputs))):
            entries.append(_entry(record.step_id, record.action, outputs[index],
                                  index if indexed else None))
    return entries


def _action(name: str) -> type[Action[Any]] | None:
    try:
        return registry.get(name)
    except KeyError:  # an action that no longer exists: its changes are listed, not undone
        return None


def _mutating(name: str) -> bool:
    action = _action(name)
    return action is None or action.mutating


def _entry(step: str, name: str, output: Any, item: int | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"step": step, "action": name, "item": item}
    undo = output.get("undo") if isinstance(output, dict) else None
    action = _action(name)
    reversible = action is not None and action.reversible
    if isinstance(undo, dict) and reversible:
        entry["undo"] = undo
    else:
        entry["why_not"] = (
            f"{name} cannot be undone" if not reversible else "it recorded nothing to undo"
        )
    return entry


def rollback_playbook(run: Run, entries: list[dict[str, Any]]) -> LoadedPlaybook:
    """The playbook of the rollback of ``run``."""
    document = {
        "name": f"rollback-{run.playbook}"[:128],
        "description": f"Undo the changes of run {run.id} ({run.playbook}), newest first.",
        "vars": {"entries": entries},
        "steps": [
            {
                "id": "undo",
                "action": "core.rollback",
                "with": {"of_run": run.id, "entries": "{{ vars.entries }}"},
                "approval": {"required": 1, "reason": f"roll back run {run.id}"},
            }
        ],
    }
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return parse_playbook(text, f"rollback of run {run.id}")


def start_rollback(*, session: Session, run_id: str, actor: str) -> Run:
    """Queue the rollback of a run that has ended; refuse when it changed nothing undoable."""
    run = get_run(session, run_id)
    if run.status not in conductor.TERMINAL:
        raise Conflict(f"run {run_id} is {run.status}; cancel it or let it end first")
    entries = undo_entries(session, run_id)
    if not any("undo" in entry for entry in entries):
        listed = "; ".join(f"{e['step']}: {e['why_not']}" for e in entries) or "no changes"
        raise Conflict(f"run {run_id} has nothing that can be undone ({listed})")
    return queue_run(session=session, alert_id=run.alert_id,
                     playbook=rollback_playbook(run, entries), mode="live", started_by=actor)
