"""Decide, without a database, which runs a playbook's triggers make of alerts in time order.

The same decisions as ``engine.store.triggers`` (which needs the store), from the same pure
pieces (``engine.triggers``): a plain trigger starts a run per matching alert; a correlating one
folds an alert into the run of its group whose window holds its event time; a threshold one
counts the alert (or its resources) and starts one run when a window of ``within`` holds
``count`` of them, later events of the burst joining it. Every run is taken as still open (a
replay has no clock of runs ending), and an alert the store would ignore does not get here.

A playbook may hold several triggers: an alert is handled by the first that matches, in the
order written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from engine.alerts import NormalizedAlert, ProductionCheck, trigger_matches, trigger_mismatches
from engine.spec import Trigger
from engine.triggers import (
    Counted,
    Window,
    burst_window,
    correlation_key,
    counted_units,
    threshold_group,
)


def why_not_triggered(
    triggers: Sequence[Trigger], alert: NormalizedAlert, is_production: ProductionCheck | None
) -> list[str]:
    """Say why each trigger does not match (``trigger[N].field`` when there are several)."""
    reasons: list[str] = []
    for number, trigger in enumerate(triggers):
        failed = trigger_mismatches(trigger, alert, is_production=is_production)
        if len(triggers) > 1:
            failed = [reason.replace("trigger.", f"trigger[{number}].", 1) for reason in failed]
        reasons += failed
    return reasons


@dataclass
class PlannedRun:
    """A run the alerts would make: the alert that starts it and every alert it holds."""

    starter: int  # index of the alert that starts it
    alerts: list[int]  # indexes, in time order
    trigger: int  # which of the playbook's triggers (0-based)
    key: str | None = None
    window: Window | None = None


@dataclass
class Handling:
    """What one alert does to one playbook."""

    outcome: str  # started | joined | counted | not-counted | not-triggered | manual
    run: int | None = None  # index into BurstPlan.runs
    reasons: list[str] = field(default_factory=list)


@dataclass
class BurstPlan:
    """The runs of one playbook over a list of alerts, and what each alert did."""

    runs: list[PlannedRun] = field(default_factory=list)
    handling: list[Handling] = field(default_factory=list)


def plan_runs(
    triggers: Sequence[Trigger],
    alerts: Sequence[NormalizedAlert],
    *,
    is_production: ProductionCheck | None,
) -> BurstPlan:
    """Decide the runs one playbook would start over ``alerts`` (in time order)."""
    plan = BurstPlan()
    waiting: dict[tuple[int, str], list[tuple[Counted, int]]] = {}
    now = datetime.now(UTC)
    for index, alert in enumerate(alerts):
        if not triggers:
            plan.handling.append(Handling("manual", reasons=["the playbook has no trigger"]))
            continue
        matched = next(
            (n for n, t in enumerate(triggers)
             if trigger_matches(t, alert, is_production=is_production)),
            None,
        )
        if matched is None:
            reasons = why_not_triggered(triggers, alert, is_production)
            plan.handling.append(Handling("not-triggered", reasons=reasons))
            continue
        trigger, moment = triggers[matched], alert.event_time or now
        if trigger.threshold is not None:
            plan.handling.append(
                _count(plan, waiting, matched, trigger, alert, index, moment, is_production)
            )
        elif trigger.correlate is not None:
            plan.handling.append(_correlate(plan, matched, trigger, alert, index, moment))
        else:
            plan.handling.append(_start(plan, PlannedRun(index, [index], matched)))
    return plan


def _start(plan: BurstPlan, run: PlannedRun) -> Handling:
    plan.runs.append(run)
    return Handling("started", run=len(plan.runs) - 1)


def _join(plan: BurstPlan, number: int, index: int) -> Handling:
    plan.runs[number].alerts.append(index)
    return Handling("joined", run=number)


def _run_of_group(plan: BurstPlan, key: str, moment: datetime, reach: timedelta) -> int | None:
    """The latest run of the group whose window, ``reach`` wider each way, holds ``moment``.

    As in the store, a correlation group is shared by the playbook's triggers (a GuardDuty
    finding and Security Hub's copy of it fold into one run); a threshold's group key names
    its trigger, so each trigger counts its own events.
    """
    for number in range(len(plan.runs) - 1, -1, -1):
        run = plan.runs[number]
        if run.key == key and run.window is not None and (
            run.window.start - reach <= moment <= run.window.end + reach
        ):
            return number
    return None


def _correlate(
    plan: BurstPlan, matched: int, trigger: Trigger, alert: NormalizedAlert, index: int,
    moment: datetime,
) -> Handling:
    assert trigger.correlate is not None
    key = correlation_key(trigger.correlate, alert)
    if key is None:  # it lacks a field of the key: related to nothing
        return _start(plan, PlannedRun(index, [index], matched))
    number = _run_of_group(plan, key, moment, timedelta(0))
    if number is not None:
        return _join(plan, number, index)
    window = Window.around(moment, timedelta(seconds=trigger.correlate.within))
    return _start(plan, PlannedRun(index, [index], matched, key=key, window=window))


def _count(
    plan: BurstPlan,
    waiting: dict[tuple[int, str], list[tuple[Counted, int]]],
    matched: int,
    trigger: Trigger,
    alert: NormalizedAlert,
    index: int,
    moment: datetime,
    is_production: ProductionCheck | None,
) -> Handling:
    threshold = trigger.threshold
    assert threshold is not None
    units = counted_units(trigger, alert, f"alert-{index}", is_production)
    if not units:
        return Handling("not-counted", reasons=["it names no resource the threshold counts"])
    group = threshold_group(threshold, alert, trigger=matched)
    within = timedelta(seconds=threshold.within)
    fired = _run_of_group(plan, group, moment, within)
    if fired is not None:  # a later event of a burst that has fired already
        run = plan.runs[fired]
        assert run.window is not None
        run.window = Window(min(run.window.start, moment), max(run.window.end, moment))
        return _join(plan, fired, index)
    pending = waiting.setdefault((matched, group), [])
    pending += [(Counted(unit, moment), index) for unit in units]
    near = [(c, i) for c, i in pending if moment - within <= c.event_time <= moment + within]
    window = burst_window([c for c, _i in near], at=moment, count=threshold.count, within=within)
    if window is None:
        counted = len({c.unit for c, _i in near})
        return Handling("counted", reasons=[
            f"counted: {counted} of {threshold.count} within {_span(within)} so far"
        ])
    inside = [(c, i) for c, i in pending if window.start <= c.event_time <= window.end]
    members = sorted(dict.fromkeys(i for _c, i in inside))
    waiting[(matched, group)] = [entry for entry in pending if entry not in inside]
    for member in members:
        if member != index:  # counted earlier: they join the run this alert starts
            plan.handling[member] = Handling("joined", run=len(plan.runs))
    return _start(plan, PlannedRun(index, members, matched, key=group, window=window))


def _span(within: timedelta) -> str:
    seconds = int(within.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
