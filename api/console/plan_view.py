"""An approval's plan as people read it: every call of every step it covers, grouped.

Nothing of the plan is left out — it is what the approver approves, and what the hash covers
— but it is arranged for a phone: the step the approval is for, then each step it covers;
in each, the calls grouped by operation with how many there are, each call's target first and
its parameters folded; a step with no call shows its parameters. The plan's JSON, exactly as
hashed, is on the page too, folded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine import plans


@dataclass
class CallView:
    """One planned call: its target, its parameters, those only known when it is made.

    ``telling`` are the short parameters that tell it apart from the other calls of its group
    (``AccessKeyId=AKIA…`` when every call targets the same user), shown beside its target.
    """

    target: str
    params: Any
    volatile: list[str]
    item: int  # which parameter set of a for_each step (1-based)
    telling: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class CallGroup:
    """The calls of one operation in a step (``ec2:RunInstances`` × 22)."""

    service: str
    operation: str
    calls: list[CallView] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"


@dataclass(frozen=True)
class StepPlanView:
    """One step of a plan: the approved one (``covered`` False) or one it covers."""

    step: str
    action: str
    covered: bool
    params: Any
    groups: list[CallGroup]
    items: int  # parameter sets (a for_each step has several)
    unplannable: str | None

    @property
    def call_count(self) -> int:
        return sum(len(group.calls) for group in self.groups)


@dataclass(frozen=True)
class PlanView:
    """A whole plan: why, the investigation's briefing, each step, and what it replaces."""

    reason: str | None
    briefing: dict[str, Any]
    steps: list[StepPlanView]
    widened: dict[str, Any] | None

    @property
    def call_count(self) -> int:
        return sum(step.call_count for step in self.steps)


def plan_view(plan: dict[str, Any]) -> PlanView:
    """Arrange ``plan`` for reading (see the module's docstring)."""
    parts = [(plan, False), *((sub, True) for sub in plan.get("covers") or []
                              if isinstance(sub, dict))]
    briefing = plan.get("briefing")
    widened = plan.get("widened")
    return PlanView(
        reason=str(plan["reason"]) if plan.get("reason") else None,
        briefing=briefing if isinstance(briefing, dict) else {},
        steps=[_step(part, covered) for part, covered in parts],
        widened=widened if isinstance(widened, dict) else None,
    )


def _step(part: dict[str, Any], covered: bool) -> StepPlanView:
    call_lists = part.get("calls") if isinstance(part.get("calls"), list) else []
    groups: dict[tuple[str, str], CallGroup] = {}
    for item, calls in enumerate(call_lists or [], start=1):
        for call in calls if isinstance(calls, list) else [calls]:
            if not isinstance(call, dict):
                continue
            key = (str(call.get("service", "?")), str(call.get("operation", "?")))
            group = groups.setdefault(key, CallGroup(service=key[0], operation=key[1]))
            volatile = call.get("volatile")
            group.calls.append(CallView(
                target=str(call.get("target") or ""), params=call.get("params", {}),
                volatile=[str(v) for v in volatile] if isinstance(volatile, list) else [],
                item=item,
            ))
    for group in groups.values():
        _tell_apart(group.calls)
    unplannable = part.get("unplannable")
    return StepPlanView(
        step=str(part.get("step", "?")), action=str(part.get("action", "?")), covered=covered,
        params=part.get("params"), groups=list(groups.values()), items=len(call_lists or []),
        unplannable=str(unplannable) if unplannable else None,
    )


TELLING_PARAMETERS = 3
TELLING_CHARS = 80


def _tell_apart(group: list[CallView]) -> None:
    """Set ``telling`` on the calls whose target another call of the group shares: the short
    scalar parameters whose value varies among them (the target says enough for the others)."""
    targets = [call.target for call in group]
    calls = [call for call in group if targets.count(call.target) > 1]
    if len(calls) < 2:
        return
    params = [call.params if isinstance(call.params, dict) else {} for call in calls]
    names = sorted({name for given in params for name in given})
    varying = [
        name for name in names
        if all(_short(given.get(name)) for given in params)
        and len({str(given.get(name)) for given in params}) > 1
    ][:TELLING_PARAMETERS]
    for call, given in zip(calls, params, strict=True):
        call.telling = [(name, str(given.get(name))) for name in varying]


def _short(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and len(str(value)) <= TELLING_CHARS


@dataclass(frozen=True)
class PlanChange:
    """How a request's plan differs from the plan a person reviewed (a refused decision)."""

    summary: str
    added: list[str]
    no_longer: list[str]


def plan_change(old: dict[str, Any], new: dict[str, Any]) -> PlanChange:
    """Say how ``new`` differs from ``old``: in one line, and call by call."""
    widened = plans.widening(old, new)
    return PlanChange(summary=plans.changes(old, new), added=widened["added"],
                      no_longer=widened["no_longer"])
