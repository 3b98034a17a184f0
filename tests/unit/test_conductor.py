"""The conductor decides, purely: every state is JSON and can be rebuilt at any point."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import conductor
from engine.spec import Playbook


def playbook(*steps: dict[str, object]) -> Playbook:
    return Playbook.model_validate({"name": "p", "steps": list(steps)})


def rebuilt(state: conductor.State) -> conductor.State:
    return json.loads(json.dumps(state))  # type: ignore[no-any-return]


def finish(pb: Playbook, state: conductor.State, status: str, **kw: object) -> conductor.State:
    step_id = conductor.next_step(pb, state)
    assert step_id is not None
    return rebuilt(conductor.step_finished(pb, state, step_id, status=status, **kw))  # type: ignore[arg-type]


def started(pb: Playbook) -> conductor.State:
    return rebuilt(conductor.apply(conductor.initial_state(pb), "claim"))


THREE = playbook(
    {"id": "a", "action": "core.log"},
    {"id": "b", "action": "core.log"},
    {"id": "c", "action": "core.log"},
)


def test_steps_run_in_order_and_the_run_succeeds_after_the_last() -> None:
    state = started(THREE)
    seen = []
    while (step := conductor.next_step(THREE, state)) is not None:
        seen.append(step)
        state = finish(THREE, state, "succeeded", output={"step": step})
    assert seen == ["a", "b", "c"]
    assert state["status"] == conductor.SUCCEEDED
    assert state["steps"]["b"]["output"] == {"step": "b"}


def test_a_failed_step_fails_the_run_by_default() -> None:
    state = finish(THREE, started(THREE), "failed", error={"code": "X", "message": "m"})
    assert state["status"] == conductor.FAILED
    assert conductor.next_step(THREE, state) is None


def test_on_error_continue_goes_to_the_next_step() -> None:
    pb = playbook(
        {"id": "a", "action": "core.fail", "on_error": "continue"},
        {"id": "b", "action": "core.log"},
    )
    state = finish(pb, started(pb), "failed", error={"code": "X", "message": "m"})
    assert state["status"] == conductor.RUNNING
    assert conductor.next_step(pb, state) == "b"


def test_on_error_step_id_jumps_forward_to_that_step() -> None:
    pb = playbook(
        {"id": "a", "action": "core.fail", "on_error": "cleanup"},
        {"id": "b", "action": "core.log"},
        {"id": "cleanup", "action": "core.log"},
    )
    state = finish(pb, started(pb), "failed", error={"code": "X", "message": "m"})
    assert conductor.next_step(pb, state) == "cleanup"
    state = finish(pb, state, "succeeded")
    assert state["status"] == conductor.SUCCEEDED
    assert "b" not in state["steps"]


def test_skipped_steps_move_on() -> None:
    state = finish(THREE, started(THREE), "skipped")
    assert state["steps"]["a"]["status"] == "skipped"
    assert conductor.next_step(THREE, state) == "b"


def test_vars_updates_are_merged_into_the_context() -> None:
    pb = playbook({"id": "a", "action": "core.set"}, {"id": "b", "action": "core.log"})
    pb.vars["keep"] = 1
    state = finish(pb, started(pb), "succeeded", vars_update={"owner": "sec"})
    assert state["vars"] == {"keep": 1, "owner": "sec"}


def test_approval_parks_the_run_and_approval_resumes_it() -> None:
    state = started(THREE)
    state = rebuilt(conductor.approval_requested(state, "a", "req-1"))
    assert state["status"] == conductor.WAITING_APPROVAL
    assert not conductor.is_approved(state, "a")
    state = rebuilt(conductor.approval_decided(state, "a", approved=True))
    assert state["status"] == conductor.QUEUED
    assert conductor.is_approved(state, "a")
    assert conductor.next_step(THREE, state) == "a"


@pytest.mark.parametrize("expired", [False, True])
def test_rejection_or_expiry_ends_the_run_without_running_the_step(expired: bool) -> None:
    state = rebuilt(conductor.approval_requested(started(THREE), "a", "req-1"))
    state = rebuilt(conductor.approval_decided(state, "a", approved=False, expired=expired))
    assert state["status"] == conductor.REJECTED
    assert state["steps"]["a"]["status"] == conductor.REJECTED
    assert conductor.next_step(THREE, state) is None


@pytest.mark.parametrize(
    ("status", "event"),
    [
        (conductor.SUCCEEDED, "cancel"),
        (conductor.QUEUED, "approve"),
        (conductor.WAITING_APPROVAL, "succeed"),
        (conductor.CANCELLED, "claim"),
        (conductor.REJECTED, "approve"),
    ],
)
def test_illegal_transitions_raise_in_one_place(status: str, event: str) -> None:
    with pytest.raises(conductor.IllegalTransition, match=f"a {status} run cannot {event}"):
        conductor.transition(status, event)


def test_finishing_a_step_of_a_run_that_is_not_running_is_refused() -> None:
    state = conductor.initial_state(THREE)  # queued, never claimed
    with pytest.raises(conductor.IllegalTransition):
        conductor.step_finished(THREE, state, "a", status="succeeded")


def test_every_terminal_status_has_no_way_out() -> None:
    for status in conductor.TERMINAL:
        assert conductor.TRANSITIONS[status] == {}
    assert conductor.TERMINAL == {"succeeded", "failed", "cancelled", "rejected"}


outcomes = st.lists(st.sampled_from(["succeeded", "failed", "skipped"]), min_size=1, max_size=12)


@given(n_steps=st.integers(1, 6), results=outcomes, policy=st.sampled_from(["fail", "continue"]))
def test_any_sequence_of_outcomes_ends_within_one_execution_per_step(
    n_steps: int, results: list[str], policy: str
) -> None:
    pb = playbook(*({"id": f"s{i}", "action": "core.log", "on_error": policy}
                    for i in range(n_steps)))
    state = started(pb)
    executed = 0
    for result in results:
        if conductor.next_step(pb, state) is None:
            break
        error = {"code": "E", "message": "m"} if result == "failed" else None
        state = finish(pb, state, result, error=error)
        executed += 1
    assert executed <= n_steps
    if conductor.next_step(pb, state) is None:
        assert state["status"] in conductor.TERMINAL
        if policy == "continue":
            assert state["status"] == conductor.SUCCEEDED
    else:
        assert state["status"] == conductor.RUNNING
