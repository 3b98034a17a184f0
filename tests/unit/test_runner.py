"""The runner executes one step: when, for_each, retry, timeout, parameters."""

from __future__ import annotations

from typing import Any

from engine.runner import StepOutcome, execute_step
from engine.spec import Step

ALERT = {"title": "t", "resources": [{"id": "i-1"}, {"id": "i-2"}, {"id": "i-3"}], "sev": 70}


def run(step: dict[str, Any], sleeps: list[float] | None = None) -> StepOutcome:
    context = {"alert": ALERT, "steps": {}, "vars": {"who": "sec"}, "run": {"id": "r"}}
    sleep = sleeps.append if sleeps is not None else (lambda _s: None)
    return execute_step(Step.model_validate(step), context, run_id="r", mode="live", sleep=sleep)


def test_a_step_succeeds_with_its_resolved_params_and_output() -> None:
    out = run({"id": "s", "action": "core.log", "with": {"message": "to {{ vars.who }}"}})
    assert out.status == "succeeded"
    assert out.params == {"message": "to sec"}
    assert out.output == {"message": "to sec"}
    assert out.attempts == 1


def test_retry_on_a_listed_code_until_it_succeeds_with_capped_backoff() -> None:
    sleeps: list[float] = []
    out = run(
        {
            "id": "s",
            "action": "core.fail",
            "with": {"code": "Throttling", "times": 4},
            "retry": {"attempts": 5, "backoff": 1, "max_delay": 3, "on": ["Throttl*"]},
        },
        sleeps,
    )
    assert out.status == "succeeded"
    assert out.output == {"succeeded_on_attempt": 5}
    assert out.attempts == 5
    assert len(sleeps) == 4
    ceilings = [1, 2, 3, 3]  # backoff * 2^n, capped at max_delay; full jitter below it
    assert all(0 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))


def test_an_unlisted_code_is_not_retried() -> None:
    sleeps: list[float] = []
    out = run(
        {
            "id": "s",
            "action": "core.fail",
            "with": {"code": "AccessDenied", "times": 1},
            "retry": {"attempts": 5, "on": ["Throttling"]},
        },
        sleeps,
    )
    assert out.status == "failed"
    assert out.error == {"code": "AccessDenied", "message": "failure injected by core.fail"}
    assert out.attempts == 1
    assert sleeps == []


def test_retries_stop_after_the_last_attempt() -> None:
    out = run({"id": "s", "action": "core.fail", "with": {"code": "E"}, "retry": {"attempts": 3}})
    assert out.status == "failed"
    assert out.attempts == 3


def test_when_false_skips_the_step() -> None:
    out = run({"id": "s", "action": "core.fail", "when": "alert.sev < 50"})
    assert out.status == "skipped"


def test_for_each_runs_once_per_item_in_order() -> None:
    out = run(
        {
            "id": "s",
            "action": "core.log",
            "for_each": "alert.resources",
            "with": {"message": "{{ item.id }}"},
        }
    )
    assert out.status == "succeeded"
    assert out.params == [{"message": "i-1"}, {"message": "i-2"}, {"message": "i-3"}]
    assert [o["message"] for o in out.output] == ["i-1", "i-2", "i-3"]


def test_for_each_failure_names_the_item() -> None:
    out = run(
        {
            "id": "s",
            "action": "core.fail",
            "for_each": [1, 2],
            "with": {"times": "{{ 0 if item == 1 else None }}"},
        }
    )
    assert out.status == "failed"
    assert out.error is not None and "(item 1)" in out.error["message"]


def test_timeout_cuts_an_attempt_short() -> None:
    out = run({"id": "s", "action": "core.sleep", "with": {"seconds": 30}, "timeout": "100ms"})
    assert out.status == "failed"
    assert out.error is not None and out.error["code"] == "Timeout"


def test_timed_out_attempts_are_retried_when_listed() -> None:
    out = run(
        {
            "id": "s",
            "action": "core.sleep",
            "with": {"seconds": 30},
            "timeout": 0.05,
            "retry": {"attempts": 2, "on": ["Timeout"]},
        }
    )
    assert out.status == "failed"
    assert out.attempts == 2


def test_bad_parameters_fail_the_step_without_retrying() -> None:
    out = run(
        {
            "id": "s",
            "action": "core.sleep",
            "with": {"seconds": "{{ alert.title }}"},
            "retry": {"attempts": 3},
        }
    )
    assert out.status == "failed"
    assert out.error is not None and out.error["code"] == "InvalidParameters"
    assert "seconds" in out.error["message"]
    assert out.attempts == 1


def test_an_undefined_template_name_fails_the_step() -> None:
    out = run({"id": "s", "action": "core.log", "with": {"message": "{{ alert.nope }}"}})
    assert out.status == "failed"
    assert out.error is not None and out.error["code"] == "TemplateError"


def test_core_set_values_reach_the_run_context() -> None:
    out = run({"id": "s", "action": "core.set", "with": {"values": {"n": "{{ alert.sev }}"}}})
    assert out.vars_update == {"n": 70}
