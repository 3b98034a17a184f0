"""Rehearse a playbook against an alert in dry-run mode, with no database (``riposte plan``).

The conductor and the runner are the ones a worker uses; only persistence is left out, and an
approval step is shown as the request it would open and then treated as approved.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from actions.aws.clients import ClientHook
from actions.base import RunEnv
from core.settings import Settings
from engine import conductor, runner
from engine.alerts import NormalizedAlert, template_view
from engine.playbooks import LoadedPlaybook
from engine.spec import Approval, Step

REHEARSAL_ID = "rehearsal"


@dataclass(frozen=True)
class RehearsedStep:
    """What one step would do: its resolved parameters and its dry-run outcome."""

    id: str
    action: str
    status: str  # succeeded | failed | skipped (as the dry run went)
    params: Any
    output: Any
    error: dict[str, Any] | None
    approval: str | None  # "would ask approval of … for: …" when the step is guarded
    run_status: str  # the run's status once this step is done
    run_outcome: str | None = None  # how the run would end, once it ends (partial: see below)
    left_undone: tuple[dict[str, str], ...] = ()  # what the step says it would leave undone


def rehearse(
    playbook: LoadedPlaybook,
    alert: NormalizedAlert,
    *,
    alerts: Sequence[NormalizedAlert] = (),
    settings: Settings | None = None,
    aws_hook: ClientHook | None = None,
) -> list[RehearsedStep]:
    """Dry-run every step the run would reach, in order, as if every approval were granted.

    ``alert`` started the run; ``alerts`` are every alert of it in event-time order (a
    correlated or threshold burst; default: the one). ``aws_hook`` sees every AWS client.
    """
    spec = playbook.spec
    alert_view = template_view(REHEARSAL_ID, alert)
    views = [
        alert_view if other is alert else template_view(f"{REHEARSAL_ID}-{number}", other)
        for number, other in enumerate(alerts or [alert], 1)
    ]
    alerts_view = {"alerts": views}
    run_view = {"id": REHEARSAL_ID, "mode": "dry_run", "playbook": spec.name}
    env = RunEnv(run_id=REHEARSAL_ID, mode="dry_run", alert=alert_view, aws_hook=aws_hook)
    if settings is not None:
        env.settings = settings
    state = conductor.apply(conductor.initial_state(spec), "claim")
    rehearsed: list[RehearsedStep] = []
    # The cursor only moves forward (on_error jumps too), so each step runs at most once.
    for _ in spec.steps:
        step_id = conductor.next_step(spec, state)
        if step_id is None:
            break
        step = spec.step(step_id)
        approval: str | None = None
        if step.approval is not None:
            context = {
                **runner.template_context(alert=alert_view, state=state, run=run_view),
                **alerts_view,
            }
            approval = _approval_request(step, step.approval, context)
            if approval is not None:
                state = conductor.approval_requested(state, step_id, REHEARSAL_ID)
                state = conductor.approval_decided(state, step_id, approved=True)
                state = conductor.apply(state, "claim")
        context = {
            **runner.template_context(alert=alert_view, state=state, run=run_view),
            **alerts_view,
        }
        outcome = runner.execute_step(
            step, context, run_id=REHEARSAL_ID, mode="dry_run", sleep=_no_wait, env=env
        )
        state = runner.record_outcome(spec, state, step_id, outcome)
        rehearsed.append(
            RehearsedStep(
                id=step.id,
                action=step.action,
                status=outcome.status,
                params=outcome.params,
                output=outcome.output,
                error=outcome.error,
                approval=approval,
                run_status=state["status"],
                run_outcome=conductor.outcome(state),
                left_undone=tuple(outcome.left_undone),
            )
        )
    return rehearsed


def describe_approvers(approval: Approval) -> str:
    """Say who may decide an approval request, the way a responder reads it."""
    who = ", ".join(approval.approvers) if approval.approvers else "any responder or admin"
    return f"{approval.required} of {who}" if approval.required > 1 else who


def _approval_request(step: Step, approval: Approval, context: dict[str, Any]) -> str | None:
    # As the worker does: a skipped step or one whose parameters do not render asks no one.
    params = runner.params_if_runs(step, context)
    if params is None:
        return None
    reason = f" ({approval.reason})" if approval.reason else ""
    plan = json.dumps(params, sort_keys=True, default=str)
    covers = f", also covering steps {', '.join(approval.covers)}" if approval.covers else ""
    return f"would ask approval of {describe_approvers(approval)}{reason} for: {plan}{covers}"


def _no_wait(_seconds: float) -> None:
    """Retries in a rehearsal go on at once: the point is the outcome, not the wait."""
