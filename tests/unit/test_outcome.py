"""A run that succeeded but left work undone ends ``partial``; the shipped playbooks say so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine import conductor, runner
from engine.playbooks import parse_playbook
from engine.spec import Playbook

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
TWO = Playbook.model_validate(
    {
        "name": "p",
        "steps": [
            {"id": "relaunch", "action": "core.log"},
            {"id": "tell", "action": "core.log"},
        ],
    }
)
DEAD = [
    {"target": "i-1", "reason": "not relaunched: no AMI before the incident"},
    {"target": "i-2", "reason": "not relaunched: no AMI before the incident"},
]


def ended(first: str, *, left_undone: list[dict[str, str]] | None = None) -> conductor.State:
    """Both steps done, the first as ``first`` (with what it left undone); rebuilt from JSON."""
    state = conductor.apply(conductor.initial_state(TWO), "claim")
    state = conductor.step_finished(TWO, state, "relaunch", status=first, left_undone=left_undone)
    state = json.loads(json.dumps(state))
    state = conductor.step_finished(TWO, state, "tell", status="succeeded")
    return json.loads(json.dumps(state))  # type: ignore[no-any-return]


def test_a_run_that_did_everything_ends_as_its_status() -> None:
    state = ended("succeeded")
    assert (state["status"], conductor.outcome(state)) == ("succeeded", "succeeded")
    assert conductor.left_undone(state) == []


def test_a_succeeded_run_whose_step_left_work_undone_ends_partial() -> None:
    state = ended("succeeded", left_undone=DEAD)
    assert state["status"] == "succeeded"  # the status table knows no partial: nothing moves
    assert conductor.outcome(state) == conductor.PARTIAL
    assert conductor.left_undone(state) == [{"step": "relaunch", **item} for item in DEAD]
    assert state["steps"]["relaunch"]["status"] == "succeeded"


def test_a_failed_run_ends_failed_even_when_a_step_left_work_undone() -> None:
    state = conductor.apply(conductor.initial_state(TWO), "claim")
    state = conductor.step_finished(TWO, state, "relaunch", status="succeeded", left_undone=DEAD)
    assert conductor.outcome(state) is None  # not ended yet
    state = conductor.step_finished(
        TWO, state, "tell", status="failed", error={"code": "E", "message": "m"}
    )
    assert conductor.outcome(state) == "failed"
    assert [i["target"] for i in conductor.left_undone(state)] == ["i-1", "i-2"]


def _finding_status(left_undone: list[dict[str, str]]) -> Any:
    """The workflow status mass-instance-termination writes on the finding after a relaunch."""
    loaded = parse_playbook((PLAYBOOKS / "mass-instance-termination.yml").read_text())
    relaunch = {"status": "succeeded", "output": {"summary": "…"}, "error": None,
                "attempts": 1, "left_undone": left_undone}
    context = runner.template_context(
        alert={"source": "securityhub"},
        state={"steps": {"relaunch": relaunch}, "vars": {"outcome": ["…"]}},
        run={"id": "r"},
    )
    params = runner.resolve_params(loaded.spec.step("update-finding"), context)
    assert isinstance(params, dict)
    return params["status"]


@pytest.mark.parametrize(("left_undone", "status"), [([], "RESOLVED"), (DEAD, "NOTIFIED")])
def test_the_finding_is_resolved_only_when_every_instance_came_back(
    left_undone: list[dict[str, str]], status: str
) -> None:
    assert _finding_status(left_undone) == status
