"""Who made a set of CloudTrail calls: callers grouped, ranked and described. Pure, no I/O.

A caller is a principal as a responder contains it: an IAM user or the root user by its ARN
(or, without one, its type, account and name), a role for every one of its sessions (an
assumed-role call belongs to the role that issued the session; the session names are listed),
an AWS service by its name. Callers are ranked by the instances their successful calls named
(what a mass termination is measured in), then by their number of calls, then by who called
first.

Each call is also shaped like the alert Riposte makes of a CloudTrail record (the same
normalizer), without the raw record, so ``investigation.assess`` reads it as a triggering event.
Every text in the output is cleaned: CloudTrail records what the caller sent (a user agent, a
session name, parameters), so it is attacker-controlled.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from actions.aws.arns import parse_arn
from actions.aws.cloudtrail_history import Event, tally
from actions.aws.cloudtrail_records import Record, event_time, iso, text, unique_records
from actions.investigation.artifacts import PRINCIPAL_KINDS
from actions.investigation.catalogue import clean
from engine.alerts import NormalizedAlert
from engine.normalize.cloudtrail import normalize_cloudtrail_record
from engine.normalize.payload import UnsupportedPayload

LISTED_CALLERS = 10
LISTED_EVENTS_TOP = 500  # the leading caller's calls, for the investigation
LISTED_EVENTS = 20  # the other callers' calls, for the responder
LISTED_VALUES = 20  # addresses, clients, keys, sessions per caller
LISTED_INSTANCES = 1000
INSTANCE_ID = re.compile(r"i-[0-9a-zA-Z]{1,40}")
# What the event views keep of the normalized alert's ``details.extra``.
EXTRA_FIELDS = ("event_source", "error_code", "error_message", "outcome", "role_session_name")


@dataclass(frozen=True)
class Caller:
    """Who made a call, as it is contained (see the module doc)."""

    key: str
    arn: str | None
    name: str | None
    type: str | None
    account: str | None
    session: str | None = None

    @classmethod
    def of(cls, alert: NormalizedAlert) -> Caller:
        """The caller of a normalized CloudTrail record."""
        principal = alert.principal
        if principal is None:
            return cls("unknown", None, None, None, alert.account)
        extra = alert.details["extra"]
        arn, session = principal.arn, None
        if principal.type == "AssumedRole":
            arn = text(extra.get("session_issuer_arn")) or _role_arn(principal.arn, principal.name)
            session = text(extra.get("role_session_name"))
        account = principal.account or alert.account
        key = arn or "|".join(str(part) for part in (principal.type, account, principal.name))
        return cls(key, arn, principal.name, principal.type, account, session)


@dataclass
class _Calls:
    """One caller's calls, in the order they were read."""

    caller: Caller
    events: list[tuple[Event, NormalizedAlert]] = field(default_factory=list)

    @property
    def first(self) -> datetime:
        return min(event.time for event, _ in self.events)

    @property
    def instance_ids(self) -> list[str]:
        """The instances its successful calls named, in call order."""
        ids = (
            i
            for _, alert in sorted(self.events, key=lambda pair: pair[0].time)
            if not alert.details["extra"].get("error_code")
            for i in alert.details["instance_ids"]
        )
        return list(dict.fromkeys(i for i in ids if INSTANCE_ID.fullmatch(i)))

    def describe(self, listed: int) -> dict[str, Any]:
        ordered = sorted(self.events, key=lambda pair: pair[0].time)
        events = [event for event, _ in ordered]
        failed = sum(1 for _, alert in ordered if alert.details["extra"].get("error_code"))
        caller = self.caller
        keys = (text(alert.principal.access_key_id) for _, alert in ordered if alert.principal)
        sessions = (text(alert.details["extra"].get("role_session_name")) for _, alert in ordered)
        return {
            "arn": _shown(caller.arn),
            "name": _shown(caller.name),
            "type": _shown(caller.type),
            "kind": PRINCIPAL_KINDS.get(caller.type or "", "unknown"),
            "account": _shown(caller.account),
            "sessions": _values(sessions),
            "calls": len(events),
            "failed_calls": failed,
            "by_event_name": dict(Counter(clean(e.name) for e in events).most_common()),
            "first_call": iso(events[0].time),
            "last_call": iso(events[-1].time),
            "access_key_ids": _values(keys),
            "source_ips": tally(events, lambda e: _shown(e.source_ip), before=None)[:LISTED_VALUES],
            "user_agents": tally(events, lambda e: _shown(e.user_agent), before=None)[
                :LISTED_VALUES
            ],
            "instance_ids": self.instance_ids[:LISTED_INSTANCES],
            "events": [event_view(alert) for _, alert in ordered[:listed]],
            "events_listed": min(listed, len(ordered)),
        }


@dataclass(frozen=True)
class Ranked:
    """The callers of the window's calls, leading caller first, and what was counted."""

    callers: list[dict[str, Any]]
    below_min_calls: int
    events: int
    unreadable: int


def rank_callers(
    records: Iterable[Record], *, start: datetime, end: datetime, min_calls: int = 1
) -> Ranked:
    """Group the records of ``[start, end]`` by caller and rank them (see the module doc).

    Each event counts once (by eventID); a record with no readable time, or that is no
    CloudTrail record, is counted in ``unreadable``.
    """
    groups: dict[str, _Calls] = {}
    counted = unreadable = 0
    for record in unique_records(records):
        moment = event_time(record)
        if moment is None:
            unreadable += 1
            continue
        if not start <= moment <= end:
            continue
        try:
            alert = normalize_cloudtrail_record(record)
        except (UnsupportedPayload, ValidationError):
            unreadable += 1
            continue
        counted += 1
        caller = Caller.of(alert)
        groups.setdefault(caller.key, _Calls(caller)).events.append((Event(moment, record), alert))
    ordered = sorted(
        groups.values(),
        key=lambda calls: (-len(calls.instance_ids), -len(calls.events), calls.first),
    )
    kept = [calls for calls in ordered if len(calls.events) >= min_calls]
    callers = [
        calls.describe(LISTED_EVENTS_TOP if rank == 0 else LISTED_EVENTS)
        for rank, calls in enumerate(kept[:LISTED_CALLERS])
    ]
    return Ranked(callers, len(ordered) - len(kept), counted, unreadable)


def event_view(alert: NormalizedAlert) -> dict[str, Any]:
    """A normalized CloudTrail record as templates see an alert, without the raw record."""
    view = alert.model_dump(mode="json", exclude={"details"})
    details = alert.details
    view["id"] = alert.dedup_key
    view["details"] = {
        "instance_ids": details["instance_ids"],
        "state_changes": details["state_changes"],
        "extra": {key: details["extra"].get(key) for key in EXTRA_FIELDS},
    }
    cleaned: dict[str, Any] = _cleaned(view, depth=0)
    return cleaned


def _cleaned(value: Any, *, depth: int) -> Any:
    if depth > 8:  # the view is built above: a few levels at most
        return None
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(k): _cleaned(v, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_cleaned(v, depth=depth + 1) for v in value]
    return value


def _shown(value: str | None) -> str | None:
    return clean(value) or None if value is not None else None


def _values(values: Iterable[str | None]) -> list[str]:
    shown = (_shown(v) for v in values)
    return list(dict.fromkeys(v for v in shown if v))[:LISTED_VALUES]


def _role_arn(session_arn: str | None, role: str | None) -> str | None:
    """``arn:aws:iam::ACC:role/R`` from ``arn:aws:sts::ACC:assumed-role/R/session``."""
    session = parse_arn(session_arn or "")
    if session is None or not role:
        return None
    return f"arn:{session.partition}:iam::{session.account}:role/{role}"
