"""Core actions that need no AWS: logging, context values, injected failures, waiting."""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import Field

from actions.base import Action, ActionContext, ActionError, ActionInput
from actions.registry import register


class LogInput(ActionInput):
    message: str = Field(description="Text to write to the run's log.")
    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level of the line: debug, info, warning or error."
    )


@register
class Log(Action[LogInput]):
    """Write a message to the log, tagged with the run and step.

    ```yaml
    - id: say-hello
      action: core.log
      with:
        message: "alert {{ alert.title }} received"
    ```
    """

    name = "core.log"
    Input = LogInput

    def run(self, ctx: ActionContext, params: LogInput) -> dict[str, Any]:
        ctx.log.log(logging.getLevelName(params.level.upper()), params.message)
        return {"message": params.message}


class SetInput(ActionInput):
    values: dict[str, Any] = Field(description="Names and values to put into ``vars``.")


@register
class Set(Action[SetInput]):
    """Put values into the run context, where later steps read them as ``vars.<name>``.

    ```yaml
    - id: remember
      action: core.set
      with:
        values:
          owner: security-team
    ```
    """

    name = "core.set"
    Input = SetInput

    def run(self, ctx: ActionContext, params: SetInput) -> dict[str, Any]:
        ctx.set_vars(params.values)
        return params.values


class FailInput(ActionInput):
    code: str = Field(default="Injected", description="Error code of the failure.")
    times: int | None = Field(
        default=None, ge=0, description="Fail this many attempts, then succeed; unset: always."
    )
    message: str = Field(
        default="failure injected by core.fail", description="Text of the step's error."
    )


@register
class Fail(Action[FailInput]):
    """Fail with an error code for a number of attempts, then succeed (rehearses retries).

    ```yaml
    - id: flaky
      action: core.fail
      with:
        code: Throttling
        times: 2
      retry:
        attempts: 3
        on: [Throttling]
    ```
    """

    name = "core.fail"
    Input = FailInput

    def run(self, ctx: ActionContext, params: FailInput) -> dict[str, Any]:
        if params.times is None or ctx.attempt <= params.times:
            raise ActionError(params.code, params.message)
        return {"succeeded_on_attempt": ctx.attempt}


class SleepInput(ActionInput):
    seconds: float = Field(ge=0, le=86_400, description="How long to wait.")


@register
class Sleep(Action[SleepInput]):
    """Wait for a number of seconds (cut short when the step times out or is cancelled).

    ```yaml
    - id: settle
      action: core.sleep
      with:
        seconds: 2
    ```
    """

    name = "core.sleep"
    Input = SleepInput

    def run(self, ctx: ActionContext, params: SleepInput) -> dict[str, Any]:
        if ctx.cancelled.wait(params.seconds):
            raise ActionError("Cancelled", "sleep interrupted", retryable=False)
        return {"slept": params.seconds}
