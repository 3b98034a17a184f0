"""What every action is: an input model, permissions, ``plan`` and ``run``."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

P = TypeVar("P", bound=BaseModel)


class ActionInput(BaseModel):
    """Base of every action's input model: unknown parameters are an error, not ignored.

    A template that is a single expression yields a native value, so a number meant for a
    text parameter is accepted as its text.
    """

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class ActionError(Exception):
    """A step failure with a code a playbook can match in ``retry.on`` and ``on_error``."""

    def __init__(self, code: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable


class PlannedCall(BaseModel):
    """One call an action would make: the operation, its arguments and its target."""

    service: str
    operation: str
    params: dict[str, Any] = {}
    target: str = ""


@dataclass
class ActionContext:
    """What an action may know about the step it runs in."""

    run_id: str
    step_id: str
    mode: str
    attempt: int = 1
    cancelled: threading.Event = field(default_factory=threading.Event)
    vars_update: dict[str, Any] = field(default_factory=dict)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("riposte.action"))

    @property
    def dry_run(self) -> bool:
        return self.mode == "dry_run"

    def set_vars(self, values: dict[str, Any]) -> None:
        """Put values into the run's context, visible to later steps as ``vars``."""
        self.vars_update.update(values)


class Action(Generic[P]):
    """Base class of every action; subclasses are registered with ``@register``."""

    name: ClassVar[str]
    Input: type[P]
    permissions: ClassVar[tuple[str, ...]] = ()
    mutating: ClassVar[bool] = False

    def plan(self, ctx: ActionContext, params: P) -> list[PlannedCall]:
        """Return the calls ``run`` would make, doing only read-only lookups."""
        return []

    def run(self, ctx: ActionContext, params: P) -> Any:
        """Carry the action out and return its output (JSON-serialisable)."""
        raise NotImplementedError
