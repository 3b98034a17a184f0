"""Execute one step: evaluate ``when``, expand ``for_each``, render, retry, time out, call.

The runner does no database work; the worker persists what it returns.
"""

from __future__ import annotations

import contextvars
import fnmatch
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from actions import registry
from actions.base import Action, ActionContext, ActionError, RunEnv
from core.logs import fields
from engine import conductor
from engine.spec import Playbook, Retry, Step
from engine.templates import TemplateFailure, evaluate, render

NO_RETRY = Retry(attempts=1)

log = logging.getLogger("riposte.worker")


@dataclass
class StepOutcome:
    """What happened when a step was executed."""

    status: str  # succeeded | failed | skipped
    params: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    vars_update: dict[str, Any] = field(default_factory=dict)
    # What a succeeded step says it did not do ({target, reason}; ActionContext.leave_undone).
    left_undone: list[dict[str, str]] = field(default_factory=list)


def record_outcome(
    playbook: Playbook, state: dict[str, Any], step_id: str, outcome: StepOutcome
) -> dict[str, Any]:
    """Return the run's state after ``outcome`` of ``step_id`` (the conductor decides)."""
    return conductor.step_finished(
        playbook,
        state,
        step_id,
        status=outcome.status,
        output=outcome.output,
        error=outcome.error,
        attempts=outcome.attempts,
        vars_update=outcome.vars_update,
        left_undone=outcome.left_undone,
    )


def template_context(
    *, alert: Mapping[str, Any], state: Mapping[str, Any], run: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the names a playbook's templates can use: alert, steps, vars, run."""
    return {"alert": alert, "steps": state["steps"], "vars": state["vars"], "run": run}


def should_run(step: Step, context: Mapping[str, Any]) -> bool:
    """Evaluate the step's ``when`` (absent means yes)."""
    return step.when is None or bool(evaluate(step.when, context))


def resolve_params(step: Step, context: Mapping[str, Any]) -> list[dict[str, Any]] | dict[str, Any]:
    """Render the step's parameters: one dict, or one per ``for_each`` item."""
    if step.for_each is None:
        params: dict[str, Any] = _json_safe(render(step.with_, context))
        return params
    items = evaluate(step.for_each, context) if isinstance(step.for_each, str) else step.for_each
    if not isinstance(items, list | tuple):
        raise TemplateFailure(f"for_each gave {type(items).__name__}, not a list")
    return [_json_safe(render(step.with_, {**context, "item": item})) for item in items]


def params_if_runs(
    step: Step, context: Mapping[str, Any]
) -> list[dict[str, Any]] | dict[str, Any] | None:
    """The step's parameters if it would run; None if it would be skipped or does not render
    (the runner then records that)."""
    try:
        return resolve_params(step, context) if should_run(step, context) else None
    except TemplateFailure:
        return None


def execute_step(
    step: Step,
    context: Mapping[str, Any],
    *,
    run_id: str,
    mode: str,
    cancelled: threading.Event | None = None,
    sleep: Callable[[float], None] | None = None,
    env: RunEnv | None = None,
) -> StepOutcome:
    """Run one step to its outcome; failures become a failed outcome, never an exception."""
    cancelled = cancelled or threading.Event()
    env = env or RunEnv(run_id=run_id, mode=mode, alert=context.get("alert", {}))
    try:
        if not should_run(step, context):
            return StepOutcome(status="skipped")
        params = resolve_params(step, context)
    except TemplateFailure as exc:
        return _failed(None, "TemplateError", str(exc), 0)
    action = registry.get(step.action)()
    calls = params if isinstance(params, list) else [params]
    outputs: list[Any] = []
    vars_update: dict[str, Any] = {}
    left_undone: list[dict[str, str]] = []
    attempts = 0
    for index, call in enumerate(calls):
        ctx = ActionContext(run_id=run_id, step_id=step.id, mode=mode, env=env)
        try:
            output = _call_with_retry(step, action, ctx, call, cancelled, sleep or cancelled.wait)
        except ActionError as exc:
            where = f" (item {index})" if step.for_each is not None else ""
            return _failed(params, exc.code, exc.message + where, attempts + ctx.attempt)
        if ctx.left_undone and isinstance(output, dict):
            # In the output too, beside what it did: a dry run's output is only its plan.
            output = {**output, "left_undone": ctx.left_undone}
        outputs.append(output)
        attempts += ctx.attempt
        vars_update.update(ctx.vars_update)
        left_undone += ctx.left_undone
    output = outputs if step.for_each is not None else outputs[0]
    return StepOutcome(
        status="succeeded",
        params=params,
        output=_json_safe(output),
        attempts=attempts,
        vars_update=_json_safe(vars_update),
        left_undone=_json_safe(left_undone),
    )


def _call_with_retry(
    step: Step,
    action: Action[Any],
    ctx: ActionContext,
    raw_params: dict[str, Any],
    cancelled: threading.Event,
    sleep: Callable[[float], Any],
) -> Any:
    try:
        params = action.Input.model_validate(raw_params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'with'}: {e['msg']}" for e in exc.errors()
        )
        raise ActionError("InvalidParameters", problems, retryable=False) from exc
    policy = step.retry or NO_RETRY

    def attempt() -> Any:
        if cancelled.is_set():
            raise ActionError("Cancelled", "the step was cancelled", retryable=False)
        ctx.cancelled = threading.Event()  # per attempt: a timeout cuts short this one only
        ctx.left_undone = []  # what the attempt that succeeds says, not every attempt
        if ctx.dry_run and action.mutating:
            return {"planned": [c.model_dump() for c in action.plan(ctx, params)]}
        return _with_timeout(step.timeout, ctx, lambda: action.run(ctx, params))

    def before(state: RetryCallState) -> None:
        ctx.attempt = state.attempt_number

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        code = error.code if isinstance(error, ActionError) else type(error).__name__
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("step %s attempt %d failed: %s: %s; retrying in %.1fs", ctx.step_id,
                    state.attempt_number, code, error, wait,
                    extra=fields(event="step.retrying", action=step.action,
                                 attempt=state.attempt_number, error_code=code,
                                 retry_in_seconds=round(wait, 3)))

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        # Full jitter (AWS's advice): a random delay up to backoff * 2^n, capped.
        wait=wait_random_exponential(multiplier=policy.backoff, max=policy.max_delay),
        retry=retry_if_exception(lambda e: _retryable(e, policy.on)),
        before=before,
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except ActionError:
        raise
    except Exception as exc:  # an action bug must fail the step, not the worker
        raise ActionError(type(exc).__name__, str(exc), retryable=False) from exc


def _retryable(exc: BaseException, codes: list[str]) -> bool:
    return (
        isinstance(exc, ActionError)
        and exc.retryable
        and any(fnmatch.fnmatchcase(exc.code, pattern) for pattern in codes)
    )


def _with_timeout(timeout: float | None, ctx: ActionContext, call: Callable[[], Any]) -> Any:
    if timeout is None:
        return call()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed back to the caller's thread below
            box["error"] = exc

    started = time.monotonic()
    # The copied context keeps the run and step ids on the action's log lines.
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run, args=(target,), daemon=True, name=f"step-{ctx.step_id}"
    )
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        # Actions watch ctx.cancelled; one that does not is abandoned, never waited for.
        ctx.cancelled.set()
        thread.join(min(1.0, timeout))
        elapsed = time.monotonic() - started
        raise ActionError("Timeout", f"attempt took longer than {timeout:g}s ({elapsed:.1f}s)")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _failed(params: Any, code: str, message: str, attempts: int) -> StepOutcome:
    return StepOutcome(
        status="failed", params=params, error={"code": code, "message": message}, attempts=attempts
    )


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
