"""The plan an approval binds: a step's resolved parameters and the exact calls it would make.

A plan is plain JSON: ``{"step", "action", "params", "reason", "calls"}``. ``calls`` holds, for a
mutating action, what its ``plan`` returns after doing the read-only lookups for real — one list
per parameter set (a ``for_each`` step has several). Its hash is what approvers approve: a
decision names it, and the step runs only while a fresh plan still hashes the same.

An approval that ``covers`` later steps adds ``"covers": [{"step", "action", "params",
"calls"}]``, their plans made at the same moment; they are part of the hash. A covered step runs
later only if every call it would then make is among its approved calls: it may do less (an
earlier step did part of it), never more. A covered step that cannot be planned yet (its target
does not exist yet) says why in ``unplannable`` and is approved for no call.

Some values are only known when the call is made (the time in a policy that revokes sessions
issued "before now"); a planned call lists those parameters as ``volatile`` and the hash leaves
them out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from actions import registry
from actions.base import ActionContext, ActionError, RunEnv


def plan_hash(plan: dict[str, Any]) -> str:
    """Hash a plan canonically, leaving out each call's volatile parameters."""
    stable = {**plan, "calls": _stable_calls(plan)}
    if "covers" in plan:
        stable["covers"] = [{**sub, "calls": _stable_calls(sub)} for sub in plan["covers"]]
    body = json.dumps(stable, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _stable_calls(plan: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return [[_stable(call) for call in calls] for calls in plan.get("calls", [])]


def _every_calls(plan: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The call lists of the plan and of every step it covers."""
    return [*plan.get("calls", []), *(c for sub in plan.get("covers", []) for c in sub["calls"])]


def _stable_calls_all(plan: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return _stable_calls({"calls": _every_calls(plan)})


def _stable(call: dict[str, Any]) -> dict[str, Any]:
    volatile = set(call.get("volatile", ()))
    params = {k: v for k, v in call.get("params", {}).items() if k not in volatile}
    return {**call, "params": params}


# Run variables an approver reads with the plan: what the investigation concluded.
BRIEFING_VARS = ("narrative", "recommendation", "open_questions")


def briefing(run_vars: dict[str, Any]) -> dict[str, Any]:
    """The investigation's narrative and recommendation, when earlier steps wrote them."""
    return {name: run_vars[name] for name in BRIEFING_VARS if run_vars.get(name)}


def step_plan(
    *,
    step_id: str,
    action: str,
    params: Any,
    reason: str,
    env: RunEnv,
    briefing: dict[str, Any] | None = None,
    covers: Sequence[tuple[str, str, Any]] = (),
) -> dict[str, Any]:
    """Make the plan of a step whose parameters are resolved (a list for ``for_each``).

    ``briefing`` (narrative, recommendation) is shown with the plan and is part of its hash.
    ``covers`` lists the (step id, action, resolved parameters) of the later steps the approval
    also authorises; each gets its own plan inside this one.
    Raises ``ActionError`` when an action cannot plan (a target gone, a protected principal).
    """
    plan = {
        "step": step_id,
        "action": action,
        "params": params,
        "reason": reason,
        "calls": planned_calls(action, params, env=env, step_id=step_id),
    }
    if covers:
        plan["covers"] = [_covered(one, env) for one in covers]
    if briefing:
        plan["briefing"] = briefing
    return plan


def _covered(step: tuple[str, str, Any], env: RunEnv) -> dict[str, Any]:
    """A covered step's plan; one that cannot be made now approves no call at all."""
    step_id, action, params = step
    plan = {"step": step_id, "action": action, "params": params, "calls": []}
    try:
        plan["calls"] = planned_calls(action, params, env=env, step_id=step_id)
    except ActionError as exc:
        plan["unplannable"] = f"{exc.code}: {exc.message}"
    return plan


def has_calls(plan: dict[str, Any]) -> bool:
    """Whether the plan (or a step it covers) would call AWS at all."""
    return any(calls for calls in _every_calls(plan))


def covered_plan(plan: dict[str, Any], step_id: str) -> dict[str, Any] | None:
    """The plan an approval holds for the covered step ``step_id``, if it covers it."""
    return next((sub for sub in plan.get("covers", []) if sub["step"] == step_id), None)


def unapproved(approved: dict[str, Any], fresh_calls: list[Any]) -> list[str]:
    """The calls in ``fresh_calls`` that the approved (covered) plan does not hold, described."""
    allowed = [call for calls in _stable_calls(approved) for call in calls]
    fresh = [call for calls in _stable_calls({"calls": fresh_calls}) for call in calls]
    return [_describe(call) for call in fresh if call not in allowed]


def planned_calls(action_name: str, params: Any, *, env: RunEnv, step_id: str) -> list[Any]:
    """The calls a mutating action would make for each parameter set; none for the others."""
    action = registry.get(action_name)()
    if not action.mutating:
        return []
    calls = []
    for one in params if isinstance(params, list) else [params]:
        ctx = ActionContext(run_id=env.run_id, step_id=step_id, mode=env.mode, env=env)
        try:
            validated = action.Input.model_validate(one)
        except ValueError as exc:
            raise ActionError("InvalidParameters", str(exc), retryable=False) from exc
        calls.append([call.model_dump() for call in action.plan(ctx, validated)])
    return calls


def replan(plan: dict[str, Any], *, env: RunEnv) -> dict[str, Any]:
    """The same plan made again now, from the same steps and parameters."""
    again = {
        **plan,
        "calls": planned_calls(plan["action"], plan["params"], env=env, step_id=plan["step"]),
    }
    if "covers" in plan:
        again["covers"] = [
            _covered((sub["step"], sub["action"], sub["params"]), env) for sub in plan["covers"]
        ]
    return again


def widening(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[str]]:
    """The calls ``new`` makes that ``old`` did not (``added``), and those it no longer makes.

    Shown with a request that replaces an earlier one of the same step, when the burst it
    judges grew: the approvers see what they are asked for beyond what they saw before.
    """
    gone, added = _call_changes(old, new)
    return {"added": added, "no_longer": gone}


def _call_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[str]]:
    flat_before = [c for calls in _stable_calls_all(old) for c in calls]
    flat_after = [c for calls in _stable_calls_all(new) for c in calls]
    gone = [_describe(c) for c in flat_before if c not in flat_after]
    added = [_describe(c) for c in flat_after if c not in flat_before]
    return gone, added


def changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Say briefly how two plans of the same step differ (for a 409 or a step error)."""
    if _stable_calls_all(old) == _stable_calls_all(new):
        return "the parameters changed"
    gone, added = _call_changes(old, new)
    parts = []
    if gone:
        parts.append("no longer: " + "; ".join(gone))
    if added:
        parts.append("now also: " + "; ".join(added))
    return ", ".join(parts) or "the order of the calls changed"


def _describe(call: dict[str, Any]) -> str:
    target = f" on {call['target']}" if call.get("target") else ""
    return f"{call['service']}:{call['operation']}{target}"
