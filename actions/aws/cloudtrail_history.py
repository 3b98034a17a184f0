"""What a principal's CloudTrail history says: hours, addresses, sign-ins, changes. Pure, no I/O.

**Baseline.** The principal's own calls *before* the alert's event time are its baseline: the
activity by hour and the working hours are computed from them only, so the alert's event is
judged against what came before it, never against itself. Nor against its own lead-up: the
calls of the ``lead_up`` (default one hour) just before the event — an intruder signing in and
looking around minutes before the terminations — are left out of the baseline, or a night
attack would find "precedent" at its own hour in its own sign-ins. They are counted in
``lead_up`` (how many, from when, by hour of the day) so a reader sees what was left out. The
address, user-agent and region tallies count every call of the principal in the window, and say
of each value whether it was seen before the alert (a new address is one that was not).

**Working hours.** Each hour of a day in which the principal made at least one call counts
once (an *active hour*): one burst — a script, or an intruder's session — weighs as one hour of
one day, not as its hundreds of calls. The working hours are the smallest span of consecutive
hours of the day (UTC, wrapping past midnight, so a night shift is one span) holding at least
``coverage`` (default 90 %) of the baseline's active hours; among spans of that length, the one
holding the most, then the earliest. The alert's event is *outside* when its hour is not in the
span. ``based_on_events`` and ``based_on_active_hours`` say how much history the span was drawn
from: a playbook should not trust a span drawn from a handful.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from actions.aws.cloudtrail_records import (
    PrincipalRef,
    Record,
    caller,
    event_time,
    iso,
    mentions,
    section,
    text,
    unique_records,
)

DEFAULT_COVERAGE = 0.9
# The calls this shortly before the judged event are its lead-up, not the principal's baseline.
LEAD_UP = timedelta(hours=1)
TOP = 50  # longest list of values (addresses, agents, …) an output carries
RECENT = 20  # events listed per resource
LISTED = 100  # sign-ins and changes listed, newest first
# Request parameters worth showing for a change (never a policy document: long, and not needed).
CHANGE_FIELDS = (
    "policyArn", "policyName", "groupName", "accessKeyId", "status", "serialNumber",
    "permissionsBoundary", "userName", "roleName",
)


@dataclass(frozen=True)
class Event:
    """One record with the fields the summaries read."""

    time: datetime
    record: Record

    @property
    def name(self) -> str | None:
        return text(self.record.get("eventName"))

    @property
    def source_ip(self) -> str | None:
        return text(self.record.get("sourceIPAddress"))

    @property
    def user_agent(self) -> str | None:
        return text(self.record.get("userAgent"))

    @property
    def region(self) -> str | None:
        return text(self.record.get("awsRegion"))

    @property
    def error_code(self) -> str | None:
        return text(self.record.get("errorCode"))


@dataclass(frozen=True)
class WorkingHours:
    """A span of hours of the day: ``hours`` hours from ``start`` (UTC), wrapping at 24.

    ``inside`` of the ``total`` counts it was drawn from fall in it.
    """

    start: int
    hours: int
    inside: int
    total: int
    threshold: float

    @property
    def end(self) -> int:
        """The hour the span ends at (exclusive)."""
        return (self.start + self.hours) % 24

    def contains(self, hour: int) -> bool:
        return (hour - self.start) % 24 < self.hours

    def describe(self, events_by_hour: Sequence[int]) -> dict[str, Any]:
        label = "all day" if self.hours == 24 else f"{self.start:02d}:00-{self.end:02d}:00 UTC"
        return {
            "start_hour": self.start,
            "end_hour": self.end,
            "hours": self.hours,
            "label": label,
            "coverage": round(self.inside / self.total, 4),
            "threshold": self.threshold,
            "based_on_active_hours": self.total,
            "based_on_events": sum(events_by_hour),
            "events_inside": sum(n for h, n in enumerate(events_by_hour) if self.contains(h)),
        }


def hour_histogram(times: Iterable[datetime]) -> list[int]:
    """Count the times by hour of the day (UTC): 24 counts, hour 0 first."""
    counts = [0] * 24
    for moment in times:
        counts[moment.hour] += 1
    return counts


def active_hours(times: Iterable[datetime]) -> list[int]:
    """Count, for each hour of the day (UTC), the days with at least one of the times in it."""
    cells = {(moment.date(), moment.hour) for moment in times}
    counts = [0] * 24
    for _, hour in cells:
        counts[hour] += 1
    return counts


def working_hours(
    histogram: Sequence[int], coverage: float = DEFAULT_COVERAGE
) -> WorkingHours | None:
    """The smallest span of hours holding at least ``coverage`` of the counts (None: no counts)."""
    total = sum(histogram)
    if total == 0:
        return None
    # Rounded first: 0.9 * 10 is 9.000000000000002 in floating point, and needs 9, not 10.
    needed = max(1, math.ceil(round(coverage * total, 9)))
    for length in range(1, 25):
        best: tuple[int, int] | None = None  # (events inside, start)
        for start in range(24):
            inside = sum(histogram[(start + i) % 24] for i in range(length))
            if inside >= needed and (best is None or inside > best[0]):
                best = (inside, start)
        if best is not None:
            return WorkingHours(best[1], length, best[0], total, coverage)
    raise AssertionError("24 hours hold every event")  # pragma: no cover


def tally(
    events: Iterable[Event],
    value_of: Callable[[Event], str | None],
    *,
    before: datetime | None,
) -> list[dict[str, Any]]:
    """Count each value ``value_of(event)`` with its first and last time, most frequent first.

    With ``before`` (the alert's event time), each value also says whether it was seen before.
    """
    counts: Counter[str] = Counter()
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    for event in events:
        value = value_of(event)
        if value is None:
            continue
        counts[value] += 1
        first[value] = min(first.get(value, event.time), event.time)
        last[value] = max(last.get(value, event.time), event.time)
    rows = []
    for value, count in sorted(counts.items(), key=lambda item: (-item[1], first[item[0]])):
        row: dict[str, Any] = {
            "value": value,
            "count": count,
            "first_seen": iso(first[value]),
            "last_seen": iso(last[value]),
        }
        if before is not None:
            row["seen_before_alert"] = first[value] < before
        rows.append(row)
    return rows[:TOP]


def sign_in_summary(events: Sequence[Event]) -> dict[str, Any]:
    """Console sign-ins: successes and failures, MFA used or not, each sign-in newest first."""
    listed = []
    for event in sorted(events, key=lambda e: e.time, reverse=True):
        if event.name != "ConsoleLogin":
            continue
        outcome = text(section(event.record, "responseElements").get("ConsoleLogin"))
        if outcome is None:
            outcome = "Failure" if event.error_code or event.record.get("errorMessage") else None
        mfa = text(section(event.record, "additionalEventData").get("MFAUsed"))
        listed.append(
            {
                "time": iso(event.time),
                "outcome": outcome,
                "mfa_used": None if mfa is None else mfa.lower() == "yes",
                "source_ip": event.source_ip,
                "error_message": text(event.record.get("errorMessage")),
            }
        )
    successes = [s for s in listed if s["outcome"] == "Success"]
    failures = [s for s in listed if s["outcome"] == "Failure"]
    return {
        "successes": len(successes),
        "failures": len(failures),
        "successes_with_mfa": sum(1 for s in successes if s["mfa_used"] is True),
        "successes_without_mfa": sum(1 for s in successes if s["mfa_used"] is False),
        "last_success": successes[0]["time"] if successes else None,
        "last_failure": failures[0]["time"] if failures else None,
        "sign_ins": listed[:LISTED],
    }


def principal_changes(events: Sequence[Event], principal: PrincipalRef) -> list[dict[str, Any]]:
    """IAM changes to the principal itself (policies, keys, password, MFA), newest first."""
    changes = []
    for event in sorted(events, key=lambda e: e.time, reverse=True):
        category = principal.targeted(event.record)
        if category is None:
            continue
        request = section(event.record, "requestParameters")
        details = {key: request[key] for key in CHANGE_FIELDS if isinstance(request.get(key), str)}
        created = section(section(event.record, "responseElements"), "accessKey")
        if isinstance(created.get("accessKeyId"), str):
            details["accessKeyId"] = created["accessKeyId"]
        changes.append(
            {
                "time": iso(event.time),
                "event_name": event.name,
                "category": category,
                "by": caller(event.record),
                "source_ip": event.source_ip,
                "succeeded": event.error_code is None,
                "error_code": event.error_code,
                "details": details,
            }
        )
    return changes[:LISTED]


def resource_history(
    events: Sequence[Event], resource_id: str, *, before: datetime | None
) -> dict[str, Any]:
    """Every event naming a resource, whoever made it: counts by event name, the latest ones."""
    naming = sorted((e for e in events if mentions(e.record, resource_id)), key=lambda e: e.time)
    names = Counter(e.name or "?" for e in naming)
    return {
        "events": len(naming),
        "before_alert": None if before is None else sum(1 for e in naming if e.time < before),
        "by_event_name": dict(sorted(names.items(), key=lambda item: (-item[1], item[0]))),
        "first_seen": iso(naming[0].time) if naming else None,
        "last_seen": iso(naming[-1].time) if naming else None,
        "recent": [
            {
                "time": iso(e.time),
                "event_name": e.name,
                "by": caller(e.record),
                "source_ip": e.source_ip,
                "error_code": e.error_code,
            }
            for e in reversed(naming[-RECENT:])
        ],
    }


def summarize(
    records: Iterable[Record],
    *,
    principal: PrincipalRef,
    start: datetime,
    end: datetime,
    alert_time: datetime | None,
    resource_ids: Sequence[str] = (),
    coverage: float = DEFAULT_COVERAGE,
    lead_up: timedelta = LEAD_UP,
) -> dict[str, Any]:
    """Summarize the records of ``[start, end]`` for a principal and resources (see module doc)."""
    events = []
    unreadable = 0
    for record in unique_records(records):
        moment = event_time(record)
        if moment is None:
            unreadable += 1
        elif start <= moment <= end:
            events.append(Event(moment, record))
    events.sort(key=lambda e: e.time)
    own = [e for e in events if principal.acted(e.record)]
    lead_up_start = None if alert_time is None else alert_time - lead_up
    baseline = [e for e in own if lead_up_start is None or e.time < lead_up_start]
    leading = [
        e for e in own
        if lead_up_start is not None and alert_time is not None
        and lead_up_start <= e.time < alert_time
    ]
    histogram = hour_histogram(e.time for e in baseline)
    active = active_hours(e.time for e in baseline)
    window = working_hours(active, coverage)
    judged = None
    if alert_time is not None:
        judged = {
            "time": iso(alert_time),
            "hour": alert_time.hour,
            "outside_working_hours": None if window is None else not window.contains(
                alert_time.hour
            ),
            "based_on_events": len(baseline),
        }
    errors = Counter(e.error_code for e in own if e.error_code)
    return {
        "events": len(events),
        "principal_events": len(own),
        "unreadable_records": unreadable,
        "activity_by_hour": histogram,
        "active_days_by_hour": active,
        "working_hours": window.describe(histogram) if window else None,
        "alert_event": judged,
        "lead_up": None if lead_up_start is None else {
            "start": iso(lead_up_start),
            "end": iso(alert_time),
            "events": len(leading),
            "by_hour": {
                str(hour): n for hour, n in enumerate(hour_histogram(e.time for e in leading)) if n
            },
        },
        "source_ips": tally(own, lambda e: e.source_ip, before=alert_time),
        "user_agents": tally(own, lambda e: e.user_agent, before=alert_time),
        "regions": tally(own, lambda e: e.region, before=alert_time),
        "event_names": tally(own, lambda e: e.name, before=alert_time),
        "errors": dict(errors.most_common(TOP)),
        "console_sign_ins": sign_in_summary(own),
        "principal_changes": principal_changes(events, principal),
        "resources": {
            rid: resource_history(events, rid, before=alert_time) for rid in resource_ids
        },
    }
