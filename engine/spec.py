"""The playbook language: pydantic models of the YAML a playbook is written in."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

_DURATION = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def _seconds(value: Any) -> Any:
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration (e.g. 30, '30s', '5m', '1h')")
        return float(match["n"]) * _UNITS[match["unit"]]
    return value


Duration = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]
StepId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")]
SeverityLabel = Literal["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]


class SpecModel(BaseModel):
    """Playbook models refuse unknown keys: a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Retry(SpecModel):
    """How a failing step is retried: exponential backoff with jitter, capped."""

    attempts: int = Field(default=3, ge=1, le=50, description="Total tries, the first included.")
    backoff: Duration = Field(default=1.0, description="Delay before the first retry.")
    max_delay: Duration = Field(default=30.0, description="Longest delay between two tries.")
    on: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Error codes (globs) worth retrying; anything else fails at once.",
    )


class Approval(SpecModel):
    """A human decision the step waits for before it runs."""

    required: int = Field(default=1, ge=1, le=10, description="Distinct approvals needed.")
    approvers: list[str] = Field(
        default_factory=list,
        description="Token names or roles allowed to decide; empty: any responder or admin.",
    )
    expires_in: Duration | None = Field(
        default=None, description="Seconds before the request expires (default from settings)."
    )
    on_timeout: Literal["reject"] = Field(
        default="reject", description="What an expired request means for the run."
    )
    reason: str = Field(default="", description="Why a human must look at this step.")


class Step(SpecModel):
    """One step of a playbook."""

    id: StepId
    action: str = Field(description="Registered action name, e.g. core.log.")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    when: str | None = Field(default=None, description="Expression; the step runs if true.")
    for_each: str | list[Any] | None = Field(
        default=None, description="Expression or list; the action runs once per ``item``."
    )
    retry: Retry | None = None
    timeout: Duration | None = Field(default=None, description="Seconds one attempt may take.")
    on_error: str = Field(
        default="fail", description="fail | continue | the id of the step to go to."
    )
    approval: Approval | None = None


class Trigger(SpecModel):
    """Which normalized alerts start this playbook; every given field must match."""

    source: list[str] = Field(default_factory=list, description="Alert sources, any of.")
    kind: list[str] = Field(default_factory=list, description="Alert kinds, any of.")
    type: str | None = Field(default=None, description="Glob on the alert's type.")
    severity_at_least: int | SeverityLabel | None = None
    account: list[str] = Field(default_factory=list)
    region: list[str] = Field(default_factory=list)
    principal_type: list[str] = Field(default_factory=list)


class Playbook(SpecModel):
    """A named list of steps with the trigger that starts it."""

    name: StepId
    description: str = ""
    trigger: Trigger | None = Field(
        default=None, description="Alerts that start the playbook; none: started by hand only."
    )
    vars: dict[str, Any] = Field(default_factory=dict, description="Initial ``vars`` values.")
    steps: list[Step] = Field(min_length=1)

    def step(self, step_id: str) -> Step:
        """Return the step called ``step_id``."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)
