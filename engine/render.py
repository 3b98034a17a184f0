"""Runs, alerts and approval plans as people read them: pure text, shared by every surface.

The CLI, the demo, the console and the notices show the same things the same way: a plan
grouped by step and by operation with counts, each call's target first and its parameters
folded; one-line summaries; durations in words; list rows for a table. Nothing here does I/O
nor knows a terminal or HTML: text from alerts comes back as it is, and each surface makes it
safe its own way (``riposte.terminal`` escapes controls, the console's templates escape HTML).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import humanize

from engine import plans
from engine.modes import mode_label


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
    """Arrange a plan for reading: the approved step, then each step it covers; in each, the
    calls grouped by operation (nothing left out: the plan is what the approver approves)."""
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


PARAMS_CHARS = 160


def plan_lines(plan: dict[str, Any], *, targets_shown: int | None = None) -> list[str]:
    """Return the plan as indented lines: per step its call count, per operation its count, then the
    targets (with what tells calls on one target apart); parameters stay folded.

    A step without calls shows its parameters (that is all it will do) in brief. With
    ``targets_shown``, each operation lists that many targets and counts the others.
    """
    view = plan_view(plan)
    lines = [f"{count(len(view.steps), 'step')}, {count(view.call_count, 'call')}"]
    for step in view.steps:
        covered = ", covered by this approval" if step.covered else ""
        head = f"  step {step.step} ({step.action}{covered})"
        if step.unplannable:
            lines.append(f"{head}: cannot be planned now ({step.unplannable}): no call")
        elif not step.groups:
            lines.append(f"{head}: no call; parameters: {brief_json(step.params)}")
        else:
            lines.append(f"{head}: {count(step.call_count, 'call')}")
        for group in step.groups:
            lines.append(f"    {group.name} × {len(group.calls)}")
            targets = _targets(group)
            lines += [f"      {target}" for target in targets[:targets_shown]]
            if targets_shown is not None and len(targets) > targets_shown:
                lines.append(f"      … and {len(targets) - targets_shown} more")
    return lines


def _targets(group: CallGroup) -> list[str]:
    shown = []
    for call in group.calls:
        telling = " ".join(f"{name}={value}" for name, value in call.telling)
        shown.append(" ".join(part for part in (call.target or "(no target)", telling) if part))
    return shown


def plan_summary(plan: dict[str, Any]) -> str:
    """Say in one line what a plan would do: per step, its action and its calls by operation,
    or its parameters; the steps it covers follow in order (``…; then step …``)."""
    return "; then ".join(_step_summary(step) for step in plan_view(plan).steps)


def _step_summary(step: StepPlanView) -> str:
    head = f"step {step.step}: {step.action}"
    if step.groups:
        groups = ", ".join(_group_summary(group) for group in step.groups)
        return f"{head}, {count(step.call_count, 'call')}: {groups}"
    if step.unplannable:
        return f"{head}, approved for no call (cannot be planned now: {step.unplannable})"
    return f"{head} with {brief_json(step.params if step.params is not None else {})}"


def _group_summary(group: CallGroup) -> str:
    targets = sorted({call.target for call in group.calls if call.target})
    on = f" on {targets[0]}" if len(targets) == 1 else (
        f" on {len(targets)} targets" if targets else "")
    times = f" × {len(group.calls)}" if len(group.calls) > 1 else ""
    return f"{group.name}{times}{on}"


def brief_json(value: Any, chars: int = PARAMS_CHARS) -> str:
    """Return ``value`` as compact JSON, cut to ``chars`` characters with an ellipsis."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= chars else text[: chars - 1] + "…"


def count(number: int, noun: str) -> str:
    """Return a number and its noun: ``1 call``, ``3 calls``."""
    return f"{number} {noun}" + ("" if number == 1 else "s")


def duration(delta: timedelta) -> str:
    """Say a span in words, to the second: ``1 minute and 5 seconds``."""
    return humanize.precisedelta(abs(delta), minimum_unit="seconds", format="%0.0f")


def time_left(expires_at: datetime, now: datetime) -> str:
    """Say how long until ``expires_at``: ``12 minutes and 3 seconds left``, or ``expired``."""
    left = expires_at - now
    if left <= timedelta(0):
        return f"expired {duration(left)} ago"
    return f"{duration(left)} left"


def took(started: datetime, finished: datetime | None) -> str:
    """Say how long a run took, in words: ``a minute``; ``-`` while it has not finished."""
    return humanize.naturaldelta(finished - started) if finished is not None else "-"


def stamp(moment: datetime | None) -> str:
    """Write a moment as ``YYYY-MM-DD HH:MM:SS`` in UTC; ``-`` for none."""
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment is not None else "-"


def parsed_time(text: Any) -> datetime | None:
    """Read an ISO 8601 time as the API writes it; None when there is none or it does not read."""
    try:
        return datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


Rows = list[tuple[str, ...]]
RUN_HEADER = ("ID", "OUTCOME", "PLAYBOOK", "MODE", "CREATED (UTC)", "TOOK", "LEFT UNDONE")
ALERT_HEADER = ("ID", "SEVERITY", "SOURCE", "TITLE", "PRINCIPAL", "LAST SEEN (UTC)", "SEEN")
TITLE_CHARS = 48


def run_rows(runs: Iterable[dict[str, Any]]) -> Rows:
    """Return the table rows of runs as ``GET /v1/runs`` lists them, the header first.

    The outcome is the run's status, or ``partial`` when it succeeded with work left undone.
    """
    rows: Rows = [RUN_HEADER]
    for run in runs:
        created = parsed_time(run.get("created_at"))
        finished = parsed_time(run.get("finished_at"))
        rows.append((
            str(run["id"]), str(run.get("outcome") or run["status"]), str(run["playbook"]),
            mode_label(str(run["mode"])), stamp(created),
            took(created, finished) if created else "-",
            str(len(run.get("left_undone") or [])),
        ))
    return rows


def alert_rows(alerts: Iterable[dict[str, Any]]) -> Rows:
    """Return the table rows of alerts as ``GET /v1/alerts`` lists them, the header first."""
    rows: Rows = [ALERT_HEADER]
    for alert in alerts:
        rows.append((
            str(alert["id"]), f"{alert['severity_label']} {alert['severity']}",
            f"{alert['source']}/{alert['kind']}", cut(str(alert["title"]), TITLE_CHARS),
            principal_name(alert.get("principal")) or "-",
            stamp(parsed_time(alert.get("last_seen"))), str(alert.get("occurrences", 1)),
        ))
    return rows


def principal_name(principal: Any) -> str:
    """Name whom an alert names: the principal's name, else its ARN, else its access key."""
    if not isinstance(principal, dict):
        return ""
    for key in ("name", "arn", "access_key_id"):
        if principal.get(key):
            return str(principal[key])
    return ""


def cut(text: str, chars: int) -> str:
    """Return ``text`` on one line, at most ``chars`` characters (an ellipsis says it was cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[: chars - 1] + "…"


def undo_lines(entries: Sequence[dict[str, Any]]) -> list[str]:
    """Say what a rollback would do, newest change first: each change undone, or why it cannot be
    (the entries of ``engine.rollback.undo_entries``)."""
    lines = []
    for entry in entries:
        step = entry["step"] if entry.get("item") is None else f"{entry['step']}[{entry['item']}]"
        if "undo" in entry:
            lines.append(f"  undo   {step} ({entry['action']}): {brief_json(entry['undo'])}")
        else:
            lines.append(f"  keep   {step} ({entry['action']}): {entry.get('why_not')}")
    return lines
