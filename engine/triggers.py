"""Correlation and threshold triggers decided without I/O: group keys, counted units, bursts.

A group (a correlation key, a threshold group) is the values an alert has for the trigger's
fields. It is stored as a SHA-256 over the trigger kind, the field names and the values, so a run
or a counted event names its group in 64 characters whatever the values hold.

Windows are in event time (when the event happened, as its source says), never in arrival time,
so events delivered late or out of order count where they belong.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.alerts import NormalizedAlert, Principal, ProductionCheck, matching_resources
from engine.spec import Correlate, Threshold, Trigger

# The alert fields a key may use: the scalar ones. Lists, details and times are no equality
# anyone groups by, and a dedup key is unique to its alert.
_NOT_KEYS = frozenset({"principal", "resources", "details", "event_time", "dedup_key"})
KEY_FIELDS: tuple[str, ...] = (
    *(name for name in NormalizedAlert.model_fields if name not in _NOT_KEYS),
    *(f"principal.{name}" for name in Principal.model_fields),
)
_PRINCIPAL = "principal."


def field_value(alert: NormalizedAlert, path: str) -> Any:
    """Return the value of one of ``KEY_FIELDS`` on an alert (None when it has none)."""
    if path not in KEY_FIELDS:
        raise KeyError(f"unknown alert field {path!r}")
    if path.startswith(_PRINCIPAL):
        return getattr(alert.principal, path.removeprefix(_PRINCIPAL)) if alert.principal else None
    return getattr(alert, path)


def correlation_key(correlate: Correlate, alert: NormalizedAlert) -> str | None:
    """Return the alert's correlation key, or None when it lacks one of the fields.

    Alerts that lack a field are not related by it: folding them together would hide
    unrelated incidents inside one run, so each starts its own.
    """
    if any(field_value(alert, path) is None for path in correlate.by):
        return None
    return _group_key("correlate", correlate.by, alert)


def threshold_group(threshold: Threshold, alert: NormalizedAlert, *, trigger: int = 0) -> str:
    """Return the alert's threshold group; events lacking a field form a group of their own.

    Counting them together can only make the trigger fire sooner, never hide an event.
    ``trigger`` is the threshold trigger's place in its playbook's list: each counts its own
    events to its own count. (Correlation keys are not per trigger: alerts with equal values of
    the same fields are related whichever trigger took them, and fold into one run.)
    """
    return _group_key("threshold", threshold.group_by, alert, trigger)


def _group_key(kind: str, fields: Sequence[str], alert: NormalizedAlert, trigger: int = 0) -> str:
    values = {path: field_value(alert, path) for path in fields}
    # The first trigger's groups are keyed as before a playbook could have several, so windows
    # open across an upgrade go on.
    parts: list[Any] = [kind, values] if trigger == 0 else [kind, values, trigger]
    body = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(body.encode()).hexdigest()


def counted_units(
    trigger: Trigger, alert: NormalizedAlert, alert_id: str, is_production: ProductionCheck | None
) -> list[str]:
    """Return what the alert adds to its threshold count: itself, or the resources it names.

    With ``count_resources`` these are the distinct resources that pass the trigger's
    ``resources`` filter (all of the alert's without one); an alert naming none adds nothing.
    A resource named by two events of one window counts once.
    """
    assert trigger.threshold is not None
    if not trigger.threshold.count_resources:
        return [alert_id]
    resources = (
        alert.resources
        if trigger.resources is None
        else matching_resources(trigger.resources, alert, is_production)
    )
    return list(dict.fromkeys(f"{r.type}:{r.id}" for r in resources))


@dataclass(frozen=True)
class Window:
    """A span of event time, both ends included."""

    start: datetime
    end: datetime

    @classmethod
    def around(cls, moment: datetime, within: timedelta) -> Window:
        """Return the window reaching ``within`` either side of ``moment``."""
        return cls(moment - within, moment + within)


@dataclass(frozen=True)
class Counted:
    """One unit of a threshold count (an event or a resource) at its event time."""

    unit: str
    event_time: datetime


def burst_window(
    counted: Iterable[Counted], *, at: datetime, count: int, within: timedelta
) -> Window | None:
    """Return the earliest window ``within`` long that holds ``at`` and ``count`` units.

    ``counted`` are the group's events not yet part of a firing, the one at ``at`` included.
    Only windows holding ``at`` can have reached the count just now: every other window was
    checked when its own events arrived. Distinct units count once per window.
    """
    events = sorted(counted, key=lambda c: c.event_time)
    starts = sorted({c.event_time for c in events if at - within <= c.event_time <= at})
    for start in starts:
        end = start + within
        units = {c.unit for c in events if start <= c.event_time <= end}
        if len(units) >= count:
            return Window(start, end)
    return None
