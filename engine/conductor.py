"""The conductor: pure decisions about a run. No database, no AWS, no clock.

A run's state is plain JSON (``initial_state``) that can be stored and rebuilt at any point.
Every status change goes through ``transition`` and its one table.
"""

from __future__ import annotations

import copy
from typing import Any

from engine.spec import Playbook

State = dict[str, Any]

QUEUED = "queued"
RUNNING = "running"
WAITING_APPROVAL = "waiting_approval"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
REJECTED = "rejected"

# {status: {event: next status}}; anything not listed is illegal.
TRANSITIONS: dict[str, dict[str, str]] = {
    QUEUED: {"claim": RUNNING, "cancel": CANCELLED},
    RUNNING: {
        "reclaim": RUNNING,  # another worker takes over an expired lease
        "await_approval": WAITING_APPROVAL,
        "succeed": SUCCEEDED,
        "fail": FAILED,
        "cancel": CANCELLED,
    },
    WAITING_APPROVAL: {
        "approve": QUEUED,
        "reject": REJECTED,
        "expire": REJECTED,
        "cancel": CANCELLED,
    },
    SUCCEEDED: {},
    FAILED: {},
    CANCELLED: {},
    REJECTED: {},
}
TERMINAL = frozenset(s for s, events in TRANSITIONS.items() if not events)


class IllegalTransition(Exception):
    """A status change the transition table does not allow."""

    def __init__(self, status: str, event: str) -> None:
        allowed = ", ".join(sorted(TRANSITIONS.get(status, {}))) or "nothing (it is final)"
        super().__init__(f"a {status} run cannot {event}; it can: {allowed}")
        self.status = status
        self.event = event


def transition(status: str, event: str) -> str:
    """Return the status that ``event`` leads to from ``status``, or raise."""
    try:
        return TRANSITIONS[status][event]
    except KeyError:
        raise IllegalTransition(status, event) from None


def initial_state(playbook: Playbook) -> State:
    """Return the state of a run that has not started yet."""
    return {
        "status": QUEUED,
        "cursor": playbook.steps[0].id,
        "steps": {},
        "vars": copy.deepcopy(playbook.vars),
    }


def next_step(playbook: Playbook, state: State) -> str | None:
    """Return the id of the step to execute next, or None when the run has nothing to do."""
    if state["status"] in TERMINAL:
        return None
    cursor: str | None = state["cursor"]
    return cursor


def apply(state: State, event: str) -> State:
    """Return a copy of ``state`` with its status moved by ``event``."""
    new = copy.deepcopy(state)
    new["status"] = transition(state["status"], event)
    return new


def step_finished(
    playbook: Playbook,
    state: State,
    step_id: str,
    *,
    status: str,
    output: Any = None,
    error: dict[str, Any] | None = None,
    attempts: int = 0,
    vars_update: dict[str, Any] | None = None,
) -> State:
    """Record a step's outcome (succeeded, failed or skipped) and move the cursor."""
    if state["status"] != RUNNING:
        raise IllegalTransition(state["status"], f"finish step {step_id!r}")
    if state["cursor"] != step_id:
        raise ValueError(f"step {step_id!r} finished but the run is at {state['cursor']!r}")
    new = copy.deepcopy(state)
    previous = new["steps"].get(step_id, {})
    new["steps"][step_id] = {
        **previous,
        "status": status,
        "output": output,
        "error": error,
        "attempts": attempts,
    }
    new["vars"].update(vars_update or {})
    step = playbook.step(step_id)
    if status == FAILED and step.on_error == "fail":
        new["status"] = transition(RUNNING, "fail")
        new["cursor"] = None
        return new
    if status == FAILED and step.on_error != "continue":
        new["cursor"] = step.on_error
        return new
    new["cursor"] = _after(playbook, step_id)
    if new["cursor"] is None:
        new["status"] = transition(RUNNING, "succeed")
    return new


def approval_requested(state: State, step_id: str, request_id: str) -> State:
    """Park the run until the approval request for ``step_id`` is decided."""
    new = apply(state, "await_approval")
    new["steps"].setdefault(step_id, {})["approval"] = {"request": request_id, "status": "pending"}
    return new


def approval_replaced(state: State, step_id: str, request_id: str) -> State:
    """Point the waiting step at the request that replaced its superseded one."""
    new = copy.deepcopy(state)
    new["steps"][step_id]["approval"] = {"request": request_id, "status": "pending"}
    return new


def approval_decided(state: State, step_id: str, *, approved: bool, expired: bool = False) -> State:
    """Resume the run (approved) or end it (rejected or expired)."""
    event = "approve" if approved else ("expire" if expired else "reject")
    new = apply(state, event)
    outcome = "approved" if approved else ("expired" if expired else "rejected")
    new["steps"][step_id]["approval"]["status"] = outcome
    if not approved:
        new["steps"][step_id]["status"] = REJECTED
        new["cursor"] = None
    return new


def is_approved(state: State, step_id: str) -> bool:
    """Tell whether the approval guarding ``step_id`` has been granted."""
    approval = state["steps"].get(step_id, {}).get("approval")
    return bool(approval and approval["status"] == "approved")


def _after(playbook: Playbook, step_id: str) -> str | None:
    ids = [s.id for s in playbook.steps]
    index = ids.index(step_id) + 1
    return ids[index] if index < len(ids) else None
