"""Gather what a set of playbooks needs from AWS: one rule per distinct pattern, the alarms.

Two playbooks whose triggers need the same event pattern share one rule (its description names
both): EventBridge delivers each matching event once per rule, and Riposte matches every
playbook against each alert it stores, so a second identical rule would only deliver twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.spec import Playbook, Trigger
from engine.wiring.globs import example_of, literal
from engine.wiring.patterns import CLOUDTRAIL_CALLS, trigger_routes

# The seed's condition, where a playbook taking alarms does not say it in its vars.
DEFAULT_ALARM_THRESHOLD = 20
ALARM_PERIOD_SECONDS = 300
ALARM_NAME_LEAD = "riposte-"


@dataclass
class Rule:
    """One EventBridge rule: its pattern and the playbooks that need it."""

    pattern: dict[str, Any]
    playbooks: list[str] = field(default_factory=list)
    loose: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """The pattern in one canonical spelling: equal keys are one rule."""
        return json.dumps(self.pattern, sort_keys=True, separators=(",", ":"))

    @property
    def digest(self) -> str:
        """A short stable name for the pattern (part of the rule's logical id)."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:8]

    @property
    def description(self) -> str:
        """What the rule is for, within EventBridge's 512 characters."""
        text = "Riposte: events for playbook(s) " + ", ".join(self.playbooks) + "."
        if self.loose:
            text += (" A superset: Riposte's own trigger matching still filters on "
                     + "; ".join(self.loose) + ".")
        return text if len(text) <= 512 else text[:509] + "..."


@dataclass(frozen=True)
class CountingAlarm:
    """A CloudWatch alarm on a count of CloudTrail calls, for a playbook triggered by it.

    ``calls`` are the playbook's ``vars.event_names`` (what the alarm's metric filter counts);
    the alarm's name matches the trigger's ``type`` glob.
    """

    playbooks: tuple[str, ...]
    alarm_name: str
    calls: tuple[str, ...]
    threshold: int
    period_seconds: int = ALARM_PERIOD_SECONDS

    @property
    def metric_name(self) -> str:
        """The metric the filter writes, e.g. ``TerminateInstancesCount``."""
        return "".join(self.calls) + "Count"

    @property
    def filter_pattern(self) -> str:
        """The CloudWatch Logs filter pattern counting these calls in a trail's log group."""
        terms = []
        for name in self.calls:
            call = CLOUDTRAIL_CALLS.get(name)
            term = f'$.eventName = "{name}"'
            if call is not None:
                term = f'($.eventSource = "{call.event_source}") && ({term})'
            terms.append(f"({term})")
        return "{ " + " || ".join(terms) + " }"


@dataclass
class Wiring:
    """Everything the loaded playbooks need from AWS, and what no AWS wiring brings them."""

    playbooks: list[str]
    rules: list[Rule]
    alarm_playbooks: list[str]
    alarms: list[CountingAlarm]
    notes: list[str]


def wiring_of(playbooks: Iterable[Playbook]) -> Wiring:
    """Return the rules and alarms the playbooks' triggers need (one rule per pattern)."""
    books = sorted(playbooks, key=lambda book: book.name)
    rules: dict[str, Rule] = {}
    alarm_playbooks: list[str] = []
    alarms: dict[str, CountingAlarm] = {}
    notes: list[str] = []
    for book in books:
        if not book.triggers:
            notes.append(f"playbook {book.name}: no trigger (started by hand only): no rule")
            continue
        for index, trigger in enumerate(book.triggers):
            # A playbook's triggers are told apart in notes only when it has several.
            who = f"playbook {book.name}" + (
                f" trigger {index + 1}" if len(book.triggers) > 1 else "")
            found = trigger_routes(trigger)
            routed = bool(found.routes or found.alarms)
            notes += [f"{who}: {'not routed' if routed else 'no rule'}: {why}"
                      for why in found.unrouted]
            for route in found.routes:
                rule = Rule(pattern=route.pattern)
                rule = rules.setdefault(rule.key, rule)
                if book.name not in rule.playbooks:  # two of its triggers may need one pattern
                    rule.playbooks.append(book.name)
                rule.loose += [item for item in route.loose if item not in rule.loose]
            if found.alarms:
                if book.name not in alarm_playbooks:
                    alarm_playbooks.append(book.name)
                _add_alarm(alarms, _counting_alarm(book, trigger, who, notes), book, who, notes)
            if not routed and not found.unrouted:
                notes.append(f"{who}: no rule: nothing in AWS can start it")
    return Wiring(
        playbooks=[book.name for book in books],
        rules=sorted(rules.values(), key=lambda rule: (rule.playbooks[0], rule.key)),
        alarm_playbooks=alarm_playbooks,
        alarms=list(alarms.values()),
        notes=notes,
    )


def _add_alarm(
    alarms: dict[str, CountingAlarm], alarm: CountingAlarm | None, book: Playbook, who: str,
    notes: list[str],
) -> None:
    """Add a playbook trigger's alarm, sharing one of that name that counts the same calls."""
    if alarm is None:
        return
    known = alarms.get(alarm.alarm_name)
    if known is not None and known.calls != alarm.calls:
        notes.append(f"{who}: alarm {alarm.alarm_name} already counts "
                     f"{', '.join(known.calls)} for {', '.join(known.playbooks)}")
        return
    if known is not None:  # one alarm for both, the lower threshold
        playbooks = known.playbooks if book.name in known.playbooks else (
            *known.playbooks, book.name)
        alarm = CountingAlarm(playbooks, alarm.alarm_name, alarm.calls,
                              min(known.threshold, alarm.threshold))
    alarms[alarm.alarm_name] = alarm


def _counting_alarm(
    book: Playbook, trigger: Trigger, who: str, notes: list[str]
) -> CountingAlarm | None:
    """The alarm a playbook's ``vars.event_names`` describe for one of its triggers, or None
    (noted) if it names none."""
    calls = book.vars.get("event_names")
    if not (isinstance(calls, list) and calls and all(isinstance(c, str) for c in calls)):
        notes.append(
            f"{who}: takes CloudWatch alarms; no vars.event_names says what to "
            "count, so no alarm is generated: point your alarm's action at the hub's topic"
        )
        return None
    glob = trigger.type
    if glob is None:  # any alarm name matches
        name: str | None = ALARM_NAME_LEAD + "-".join(calls)
    else:
        name = literal(glob) or example_of(glob, lead=ALARM_NAME_LEAD)
    if name is None:
        notes.append(f"{who}: no alarm name matches type {glob!r}: no alarm")
        return None
    threshold = book.vars.get("threshold")
    return CountingAlarm(
        playbooks=(book.name,),
        alarm_name=name,
        calls=tuple(calls),
        threshold=threshold if isinstance(threshold, int) and threshold > 0
        else DEFAULT_ALARM_THRESHOLD,
    )
