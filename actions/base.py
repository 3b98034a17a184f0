"""What every action is: an input model, the IAM grants it needs, ``plan`` and ``run``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from actions.aws.clients import AwsClients, ClientHook
from actions.errors import ActionError
from core.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from actions.grants import Grant

# ActionError is part of what every action is; it lives in actions.errors so that the client
# factory can raise it without importing this module (which builds that factory).
__all__ = [
    "Action",
    "ActionContext",
    "ActionError",
    "ActionInput",
    "PlannedCall",
    "RunEnv",
]

P = TypeVar("P", bound=BaseModel)


class ActionInput(BaseModel):
    """Base of every action's input model: unknown parameters are an error, not ignored.

    A template that is a single expression yields a native value, so a number meant for a
    text parameter is accepted as its text.
    """

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class PlannedCall(BaseModel):
    """One call an action would make: the operation, its arguments and its target."""

    service: str
    operation: str
    params: dict[str, Any] = {}
    target: str = ""
    volatile: list[str] = Field(
        default=[],
        description="Parameters only known when the call is made (e.g. 'now' in a policy); "
        "left out of the plan hash an approval binds.",
    )


@dataclass
class RunEnv:
    """What the steps of one run share: settings, the alert, AWS clients, cached lookups."""

    run_id: str
    mode: str
    settings: Settings = field(default_factory=get_settings)
    alert: Mapping[str, Any] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)
    # Read-only database access for enrichments that read what Riposte stored (none: rehearsal).
    sessions: sessionmaker[Session] | None = None
    # Sees every AWS client the run makes (``riposte replay``'s cassettes); none: nothing does.
    aws_hook: ClientHook | None = None

    @cached_property
    def aws(self) -> AwsClients:
        return AwsClients(self.settings, dry_run=self.mode == "dry_run", run_id=self.run_id,
                          hook=self.aws_hook)


@dataclass
class ActionContext:
    """What an action may know about the step it runs in."""

    run_id: str
    step_id: str
    mode: str
    env: RunEnv | None = None
    attempt: int = 1
    cancelled: threading.Event = field(default_factory=threading.Event)
    vars_update: dict[str, Any] = field(default_factory=dict)
    left_undone: list[dict[str, str]] = field(default_factory=list)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("riposte.action"))

    def __post_init__(self) -> None:
        if self.env is None:
            self.env = RunEnv(run_id=self.run_id, mode=self.mode)

    @property
    def dry_run(self) -> bool:
        return self.mode == "dry_run"

    @property
    def run_env(self) -> RunEnv:
        assert self.env is not None  # set by __post_init__
        return self.env

    @property
    def settings(self) -> Settings:
        return self.run_env.settings

    @property
    def alert(self) -> Mapping[str, Any]:
        """The run's alert as templates see it (``alert.account``, ``alert.region``, …)."""
        return self.run_env.alert

    @property
    def aws(self) -> AwsClients:
        """The run's AWS client factory (guarded against changes in dry-run)."""
        return self.run_env.aws

    @property
    def cache(self) -> dict[str, Any]:
        """Lookups cached for the rest of the run (enrichment results)."""
        return self.run_env.cache

    def set_vars(self, values: dict[str, Any]) -> None:
        """Put values into the run's context, visible to later steps as ``vars``."""
        self.vars_update.update(values)

    def leave_undone(self, target: str, reason: str) -> None:
        """Say that part of the work was not done: on ``target``, for ``reason`` (why, in words).

        The step still succeeds (what it could do is done, and later steps conditioned on it
        run), but its output and record carry ``left_undone`` and a run that ends succeeded is
        shown as ``partial``. Said while planning too, so a dry run shows the same.
        """
        self.left_undone.append({"target": target, "reason": reason})


class Action(Generic[P]):
    """Base class of every action; subclasses are registered with ``@register``."""

    name: ClassVar[str]
    Input: type[P]
    # The IAM statements the action needs: actions on scoped resources (actions/policy.py).
    grants: ClassVar[tuple[Grant, ...]] = ()
    # The IAM actions alone, derived from ``grants`` (an action may still declare only these:
    # the policy then grants them on "*").
    permissions: ClassVar[tuple[str, ...]] = ()
    mutating: ClassVar[bool] = False
    reversible: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "grants" in cls.__dict__:
            if "permissions" in cls.__dict__:
                raise TypeError(f"{cls.__name__}: declare grants, not permissions as well")
            cls.permissions = tuple(dict.fromkeys(a for g in cls.grants for a in g.actions))

    def plan(self, ctx: ActionContext, params: P) -> list[PlannedCall]:
        """Return the calls ``run`` would make, doing only read-only lookups."""
        return []

    def run(self, ctx: ActionContext, params: P) -> Any:
        """Carry the action out and return its output (JSON-serialisable).

        A mutating action returns a mapping whose ``undo`` key holds what it changed, exactly
        what ``undo`` needs to put it back (and nothing it found already in place).
        """
        raise NotImplementedError

    def plan_undo(self, ctx: ActionContext, undo: dict[str, Any]) -> list[PlannedCall]:
        """Return the calls ``undo`` would make for the recorded ``undo`` data."""
        raise ActionError("NotReversible", f"{self.name} cannot be undone", retryable=False)

    def undo(self, ctx: ActionContext, undo: dict[str, Any]) -> Any:
        """Put back what ``run`` changed, from the ``undo`` data it returned."""
        raise ActionError("NotReversible", f"{self.name} cannot be undone", retryable=False)
