"""What people are told when a run ends: its failure (or cancellation), or its outcome.

A failure goes to the playbook's ``on_failure.notify``, else ``RIPOSTE_FAILURE_NOTIFY``, else
whoever its approvals were sent to (a run that fails during containment must tell someone),
and into the thread of its approval's Slack messages. The outcome of a run that ends otherwise
— what was contained, relaunched, what is left to do — is posted in that thread.

Alert values are attacker-controlled: they enter the text as plain text only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from actions import registry
from actions.notify import plain
from core.settings import Settings
from engine import conductor
from engine.alerts import template_view
from engine.modes import rehearsal_mark
from engine.playbooks import LoadedPlaybook
from engine.store.alert_reads import as_normalized, get_alert
from engine.store.runs import get_run

LISTED = 15  # steps, or things left undone, listed before "and N more"


@dataclass(frozen=True)
class StepDone:
    """One step of an ended run, as a notice lists it."""

    step_id: str
    action: str
    status: str
    changes_aws: bool
    error: str | None = None


@dataclass(frozen=True)
class RunEnding:
    """An ended run as its notices tell it."""

    run_id: str
    playbook: str
    mode: str
    status: str
    outcome: str
    error: str | None
    acted: bool  # a step that changes AWS began: it ended during (or after) containment
    by: str  # who ended it (the canceller), or the worker
    alert: dict[str, Any]
    steps: list[StepDone]
    left_undone: list[dict[str, Any]]
    run_url: str | None


def read_ending(
    session: Session, run_id: str, *, by: str, playbook: LoadedPlaybook | None, settings: Settings
) -> RunEnding:
    """Read how run ``run_id`` ended (its pinned ``playbook`` gives the steps' order)."""
    run = get_run(session, run_id)
    alert = template_view(run.alert_id, as_normalized(get_alert(session, run.alert_id)))
    recorded = run.state.get("steps", {})
    order = [step.id for step in playbook.spec.steps] if playbook is not None else list(recorded)
    actions = {step.id: step.action for step in playbook.spec.steps} if playbook else {}
    steps = []
    for step_id in order:
        state = recorded.get(step_id)
        if not state or "status" not in state:
            continue
        action = actions.get(step_id, "")
        error = state.get("error") or None
        steps.append(StepDone(
            step_id=step_id, action=action, status=str(state["status"]),
            changes_aws=_mutating(action),
            error=f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict)
            else None,
        ))
    base = (settings.public_url or "").rstrip("/")
    return RunEnding(
        run_id=run.id, playbook=run.playbook, mode=run.mode, status=run.status,
        outcome=conductor.outcome(run.state) or run.status, error=run.error,
        acted=run.acted_at is not None, by=by, alert=alert, steps=steps,
        left_undone=conductor.left_undone(run.state),
        run_url=f"{base}/ui/runs/{run.id}" if base else None,
    )


def failure_notice(ending: RunEnding) -> tuple[str, str]:
    """Subject and text telling that a run failed or was cancelled, and what it left."""
    mark = rehearsal_mark(ending.mode)
    if ending.status == conductor.CANCELLED:
        what = f"was CANCELLED by {plain(ending.by, 80)}"
    else:
        what = "FAILED"
    during = " during containment" if ending.acted else ""
    subject = f"{mark}Riposte: run {ending.run_id} ({ending.playbook}) {what}{during}"
    lines = [subject, ""]
    lines += _alert_lines(ending.alert)
    failed = [step for step in ending.steps if step.status == conductor.FAILED]
    for step in failed:
        lines.append(f"Failed at step {plain(step.step_id)} ({plain(step.action)}): "
                     f"{plain(step.error, 500)}")
    if not failed and ending.error and ending.status == conductor.FAILED:
        lines.append(f"Error: {plain(ending.error, 500)}")
    lines += _steps_lines(ending)
    lines += _left_undone_lines(ending)
    if ending.acted:
        lines.append("Containment may be incomplete: check the AWS state of the targets, then "
                     "finish by hand, start the run again, or roll back what it did.")
    else:
        lines.append("Nothing was changed in AWS: the run ended before its first change.")
    lines.append(_where(ending))
    return subject[:99], "\n".join(lines)


def outcome_notice(ending: RunEnding) -> str:
    """The run's outcome, for the thread of its approval: what was done, what is left."""
    mark = rehearsal_mark(ending.mode)
    said = {conductor.SUCCEEDED: "succeeded", conductor.PARTIAL: "succeeded, with work left "
            "undone", conductor.REJECTED: "ended: not approved"}.get(ending.outcome,
                                                                      ending.outcome)
    lines = [f"{mark}Run {ending.run_id} ({ending.playbook}) {said}."]
    lines += _steps_lines(ending)
    lines += _left_undone_lines(ending)
    lines.append(_where(ending))
    return "\n".join(lines)


def _alert_lines(alert: dict[str, Any]) -> list[str]:
    title = plain(alert.get("title"))
    if not title:
        return []
    label = plain(alert.get("severity_label"), 20)
    return [f"Alert: {title}" + (f" [{label}]" if label else "")]


def _steps_lines(ending: RunEnding) -> list[str]:
    done = [step for step in ending.steps if step.status == conductor.SUCCEEDED]
    contained = [step for step in done if step.changes_aws]
    lines = []
    if contained:
        verb = "Planned (rehearsal)" if ending.mode != "live" else "Done"
        lines.append(f"{verb}:")
        lines += [f"- {plain(step.step_id)} ({plain(step.action)})" for step in contained[:LISTED]]
        if len(contained) > LISTED:
            lines.append(f"- ... and {len(contained) - LISTED} more")
    elif ending.acted:
        lines.append("No step that changes AWS succeeded.")
    skipped = [step.step_id for step in ending.steps if step.status == "skipped"]
    if skipped:
        lines.append("Skipped: " + ", ".join(plain(s) for s in skipped[:LISTED]))
    return lines


def _left_undone_lines(ending: RunEnding) -> list[str]:
    if not ending.left_undone:
        return []
    lines = ["Left to do:"]
    for item in ending.left_undone[:LISTED]:
        lines.append(f"- {plain(item.get('target'), 120)}: {plain(item.get('reason'), 300)} "
                     f"(step {plain(item.get('step'))})")
    if len(ending.left_undone) > LISTED:
        lines.append(f"- ... and {len(ending.left_undone) - LISTED} more")
    return lines


def _where(ending: RunEnding) -> str:
    if ending.run_url:
        return f"Run: {ending.run_url}"
    return f"Run: riposte runs show {ending.run_id}"


def _mutating(action: str) -> bool:
    try:
        return registry.get(action).mutating
    except KeyError:  # a pinned playbook's action no longer registered
        return False
