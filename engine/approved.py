"""Whether a step may still run as it was approved: the worker asks before an approved step,
or a step an approval ``covers``, makes any call.

An approved step runs only while its whole plan (the calls of the steps it covers included)
still hashes the same, so nothing starts when any part has moved. A covered step runs only
under a granted approval that covers it, and only the calls approved for it. Each check returns
the failed outcome to record instead of running the step, or None. ``env`` is a dry-run
environment: planning only reads, and the guard enforces it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from actions.base import ActionError, RunEnv
from engine import conductor, plans, runner
from engine.spec import Playbook, Step
from engine.store import approvals
from engine.templates import TemplateFailure


def covered_params(
    playbook: Playbook, covered: list[str], context: dict[str, Any]
) -> list[tuple[str, str, Any]]:
    """The covered steps' (id, action, parameters), resolved now, as if their conditions hold.

    Raises ``TemplateFailure`` naming the step whose parameters need something only known
    later (an output of the approved step): nobody can approve what cannot be shown.
    """
    resolved = []
    for step in map(playbook.step, covered):
        try:
            resolved.append((step.id, step.action, runner.resolve_params(step, context)))
        except TemplateFailure as exc:
            raise TemplateFailure(
                f"covered step {step.id}: its parameters cannot be resolved before the "
                f"approval: {exc}"
            ) from exc
    return resolved


def plan_moved(
    sessions: sessionmaker[Session],
    state: dict[str, Any],
    step: Step,
    context: dict[str, Any],
    *,
    env: RunEnv,
) -> runner.StepOutcome | None:
    """A failed outcome if the approved plan no longer matches what the step would do."""
    request_id = state["steps"][step.id]["approval"]["request"]
    with sessions() as session:
        request = approvals.get_request(session, request_id)
        approved_plan, approved_hash = request.plan, request.plan_hash
    try:
        params = runner.resolve_params(step, context)
        fresh = plans.replan({**approved_plan, "params": params}, env=env)
    except (ActionError, TemplateFailure) as exc:
        message = exc.message if isinstance(exc, ActionError) else str(exc)
        fresh, message = None, f"the approved plan can no longer be made: {message}"
    if fresh is not None and plans.plan_hash(fresh) == approved_hash:
        return None
    if fresh is not None:
        message = f"live state moved since the approval: {plans.changes(approved_plan, fresh)}"
    return _failed(approved_plan.get("params"), "PlanChanged", message)


def beyond_approval(
    sessions: sessionmaker[Session],
    state: dict[str, Any],
    step: Step,
    context: dict[str, Any],
    covering: list[str],
    *,
    env: RunEnv,
) -> runner.StepOutcome | None:
    """A failed outcome if a covered step would run without, or beyond, its approval.

    It runs under the last granted approval of ``covering`` (the steps whose approval covers
    it), and only if every call it would make now is among the calls approved for it. A step
    whose condition is false, or whose parameters do not render, is left to the runner.
    """
    params = runner.params_if_runs(step, context)
    if params is None:
        return None
    granted = [one for one in covering if conductor.is_approved(state, one)]
    if not granted:
        return _failed(params, "NotApproved", (
            f"step {step.id} runs only under the approval of {', '.join(covering)}, and none "
            "was granted in this run"
        ))
    request_id = state["steps"][granted[-1]]["approval"]["request"]
    with sessions() as session:
        approved = plans.covered_plan(approvals.get_request(session, request_id).plan, step.id)
    if approved is None:  # only a request opened by an older Riposte lacks it
        return _failed(params, "NotApproved",
                       f"approval request {request_id} did not show step {step.id}'s plan")
    try:
        calls = plans.planned_calls(step.action, params, env=env, step_id=step.id)
    except ActionError as exc:
        return _failed(params, "PlanChanged",
                       f"the approved plan can no longer be made: {exc.message}")
    extra = plans.unapproved(approved, calls)
    if not extra:
        return None
    return _failed(params, "PlanChanged", (
        f"live state moved since the approval: step {step.id} would now also make "
        f"{'; '.join(extra)}"
    ))


def _failed(params: Any, code: str, message: str) -> runner.StepOutcome:
    return runner.StepOutcome(
        status="failed", params=params, error={"code": code, "message": message}
    )
