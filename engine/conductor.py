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
# Not a status (no transition leads to it): how a succeeded run that left work undone ended.
PARTIAL = "partial"

# {status: {event: next status}}; anything not listed is illegal.
TRANSITIONS: dict[str, dict[str, str]] = {
    QUEUED: {"claim": RUNNING, "cancel": CANCELLED},
    RUNNING: {
        "reclaim": RUNNING,  # another worker takes over an expired lease
        "rejudge": QUEUED,  # alerts joined before it acted: it starts over on all of them
        "await_approval": WAITING_APPROVAL,
        "succeed": SUCCEEDED,
        "fail": FAILED,
        "cancel": CANCELLED,
    },
    WAITING_APPROVAL: {
        "approve": QUEUED,
        "rejudge": QUEUED,  # the request is superseded; the new round asks again
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


def rejudged(playbook: Playbook, state: State) -> State:
    """Start the run over, in a new round, on every alert it has now.

    Only while ``takes_alerts``: its steps so far only read, so doing them again changes
    nothing; what they found is dropped with the rest of the round. Keys other than the
    round's own (``follows``, ``rehearses``) are kept.
    """
    new = {**copy.deepcopy(state), **initial_state(playbook)}
    new["status"] = transition(state["status"], "rejudge")
    new["round"] = round_of(state) + 1
    return new


def takes_alerts(state: State) -> bool:
    """Tell whether alerts may still join the run and be judged with the others.

    True until an approval of it is granted or it ends: a queued run sees them when it starts,
    a running or waiting one starts over (``rejudged``). The store also requires that no step
    that changes AWS has begun (``runs.acted_at``): the state cannot tell a step in flight.
    """
    return state["status"] in (QUEUED, RUNNING, WAITING_APPROVAL) and not _granted(state)


def round_of(state: State) -> int:
    """Which judgement of its alerts the run is in (1 until alerts made it start over)."""
    return int(state.get("round", 1))


def _granted(state: State) -> bool:
    return any(
        (step.get("approval") or {}).get("status") == "approved"
        for step in state["steps"].values()
    )


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
    left_undone: list[dict[str, Any]] | None = None,
) -> State:
    """Record a step's outcome (succeeded, failed or skipped) and move the cursor.

    A step that succeeded but ``left_undone`` some of its work stays succeeded (its
    ``when: steps.x.status == 'succeeded'`` dependents still run); the record keeps the list,
    and the run's ``outcome`` shows it.
    """
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
        "left_undone": list(left_undone or []),
    }
    new["vars"].update(vars_update or {})
    step = playbook.step(step_id)
    if status == FAILED and step.on_error == "fail":
        new["status"] = transition(RUNNING, "fail")
        new["cursor"] = None
        # The step that ended the run: a failed ``on_error: continue`` step before it did not.
        new["ended_by"] = step_id
        return new
    if status == FAILED and step.on_error != "continue":
        new["cursor"] = step.on_error
        return new
    new["cursor"] = _after(playbook, step_id)
    if new["cursor"] is None:
        new["status"] = transition(RUNNING, "succeed")
    return new


def ended_by(state: State) -> str | None:
    """Return the id of the step whose failure ended the run (its ``on_error`` is ``fail``).

    None while the run has not failed so, and for a run that failed before this was kept.
    """
    step_id = state.get("ended_by")
    return str(step_id) if step_id is not None else None


def left_undone(state: State) -> list[dict[str, Any]]:
    """What the run's steps said they left undone: ``{step, target, reason}``, by step id.

    By step id, not in execution order: a state stored as PostgreSQL JSONB keeps no key order.
    """
    return [
        {"step": step_id, **item}
        for step_id, step in sorted(state["steps"].items())
        for item in step.get("left_undone") or []
    ]


def outcome(state: State) -> str | None:
    """How the run ended: its final status, or ``partial`` when it succeeded but a step left
    work undone; None while it has not ended."""
    if state["status"] not in TERMINAL:
        return None
    if state["status"] == SUCCEEDED and left_undone(state):
        return PARTIAL
    return str(state["status"])


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
