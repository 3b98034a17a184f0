"""A failed run's error names the step whose failure ended it, whatever the key order of its
stored state (PostgreSQL's JSONB orders keys by length, not by when they were written)."""

from __future__ import annotations

from typing import Any

import pytest

from engine import conductor
from engine.playbooks import parse_playbook
from engine.store.leases import ending_failure

PLAYBOOK = parse_playbook("""
name: blame
steps:
  - {id: describe, action: core.fail, on_error: continue}
  - {id: isolate, action: core.fail}
  - {id: never, action: core.log, with: {message: not reached}}
""").spec


def failed_run() -> dict[str, Any]:
    state = conductor.apply(conductor.initial_state(PLAYBOOK), "claim")
    for step_id, code in [("describe", "InstanceNotFound"), ("isolate", "AccessDenied")]:
        state = conductor.step_finished(PLAYBOOK, state, step_id, status="failed",
                                        error={"code": code, "message": f"{code}!"})
    return state


@pytest.mark.parametrize("order", [["describe", "isolate"], ["isolate", "describe"]])
def test_the_step_that_ended_the_run_is_blamed_in_any_key_order(order: list[str]) -> None:
    state = failed_run()
    assert (state["status"], conductor.ended_by(state)) == ("failed", "isolate")
    state["steps"] = {step_id: state["steps"][step_id] for step_id in order}
    assert ending_failure(state) == "isolate: AccessDenied: AccessDenied!"


def test_a_run_failed_before_ended_by_was_kept_is_named_only_when_one_step_failed() -> None:
    state = failed_run()
    del state["ended_by"]
    assert ending_failure(state) is None
    del state["steps"]["describe"]
    assert ending_failure(state) == "isolate: AccessDenied: AccessDenied!"
