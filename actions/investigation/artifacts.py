"""The artifacts of the seed's step 2, extracted from the triggering events.

From each alert (as templates see it: ``alert`` / ``alerts``): the event time and name, the
source IP, the user agent, the principal (user name, ARN, access key, account), the account, the
region, the instance ids and the state changes CloudTrail reported (``running`` →
``shutting-down``). Every text is cleaned: alert fields are written by whoever made the call.

A CloudWatch alarm is not an event of that kind: it is a metric crossing a threshold, and names
no caller. It is kept apart as an :class:`Alarm` (name, state, metric, threshold). The calls an
alarm counted can be given as ``events`` — CloudTrail records found by
``aws.cloudtrail.find_callers``, shaped like alerts — and are then the triggering events; their
principal is the one judged when the run's alert names none.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from actions.investigation.catalogue import clean, parse_time, stamp

# How CloudTrail's userIdentity.type reads as the kind of principal a playbook contains.
PRINCIPAL_KINDS = {
    "IAMUser": "user",
    "AssumedRole": "role",
    "Role": "role",
    "Root": "root",
    "FederatedUser": "federated",
    "SAMLUser": "federated",
    "WebIdentityUser": "federated",
    "IdentityCenterUser": "identity-center",
    "AWSService": "service",
    "AWSAccount": "account",
}
DESTRUCTIVE_EVENTS = ("TerminateInstances", "DeleteInstances")
SHUTDOWN_EVENTS = ("StopInstances", "RebootInstances")


@dataclass(frozen=True)
class Event:
    """One triggering event, as the alert described it."""

    time: datetime | None
    name: str | None
    source_ip: str | None
    user_agent: str | None
    mfa_used: bool | None
    instance_ids: tuple[str, ...]
    state_changes: tuple[dict[str, str | None], ...]
    principal_name: str | None
    source: str | None = None  # cloudtrail, guardduty, securityhub, cloudwatch, generic…
    title: str | None = None
    severity_label: str | None = None  # as the alert's source rated it
    found: bool = False  # found in CloudTrail by the playbook, not delivered as an alert


@dataclass(frozen=True)
class Alarm:
    """A CloudWatch alarm's state change, as the alert described it."""

    name: str | None
    state: str | None
    previous_state: str | None
    time: datetime | None
    metrics: tuple[str, ...]
    threshold: float | None
    comparison: str | None
    reason: str | None
    severity_label: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "previous_state": self.previous_state,
            "time": stamp(self.time),
            "metrics": list(self.metrics),
            "threshold": self.threshold,
            "comparison": self.comparison,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Artifacts:
    """What the triggering events say, gathered over every alert of the run."""

    principal: dict[str, str | None]
    principal_kind: str
    account: str | None
    region: str | None
    events: tuple[Event, ...] = field(default=())
    alarms: tuple[Alarm, ...] = field(default=())

    @property
    def times(self) -> list[datetime]:
        return sorted(e.time for e in self.events if e.time is not None)

    @property
    def first_time(self) -> datetime | None:
        return self.times[0] if self.times else None

    @property
    def last_time(self) -> datetime | None:
        return self.times[-1] if self.times else None

    @property
    def event_names(self) -> dict[str, int]:
        counts = Counter(e.name for e in self.events if e.name)
        return dict(counts.most_common())

    @property
    def source_ips(self) -> dict[str, int]:
        counts = Counter(e.source_ip for e in self.events if e.source_ip)
        return dict(counts.most_common())

    @property
    def user_agents(self) -> dict[str, int]:
        counts = Counter(e.user_agent for e in self.events if e.user_agent)
        return dict(counts.most_common())

    @property
    def sources(self) -> dict[str, int]:
        """The sources of the run's alerts: its events' (not those found) and its alarms'."""
        delivered = [e.source for e in self.events if not e.found]
        counts = Counter(s for s in [*delivered, *["cloudwatch"] * len(self.alarms)] if s)
        return dict(counts.most_common())

    @property
    def found_events(self) -> int:
        """How many of the events were found in CloudTrail rather than delivered as alerts."""
        return sum(1 for e in self.events if e.found)

    @property
    def instance_ids(self) -> list[str]:
        return list(dict.fromkeys(i for e in self.events for i in e.instance_ids))

    @property
    def state_changes(self) -> list[dict[str, str | None]]:
        return [change for e in self.events for change in e.state_changes]

    @property
    def name(self) -> str | None:
        return self.principal.get("name")

    def as_dict(self) -> dict[str, Any]:
        """The artifacts as the step's output lists them (the seed's step 2)."""
        return {
            "event_time": stamp(self.first_time),
            "last_event_time": stamp(self.last_time),
            "event_names": self.event_names,
            "source_ips": self.source_ips,
            "user_agents": self.user_agents,
            "user_name": self.principal.get("name"),
            "principal_type": self.principal.get("type"),
            "principal_kind": self.principal_kind,
            "arn": self.principal.get("arn"),
            "access_key_id": self.principal.get("access_key_id"),
            "account": self.account,
            "region": self.region,
            "instance_ids": self.instance_ids,
            "state_changes": self.state_changes,
            "events": len(self.events),
            "events_found_in_cloudtrail": self.found_events,
            "alarms": [a.as_dict() for a in self.alarms],
        }


def extract(
    alert: Mapping[str, Any],
    alerts: Iterable[Mapping[str, Any]] = (),
    events: Iterable[Mapping[str, Any]] = (),
) -> Artifacts:
    """The artifacts of the run's alerts (deduplicated) and of the ``events`` found for them.

    ``events`` are alert-shaped CloudTrail events a playbook found (e.g. the calls an alarm
    counted); an alert that is one of them counts once. When the run's alert names no
    principal, the events' most frequent one is the principal judged.
    """
    seen: set[str] = set()
    delivered: list[Mapping[str, Any]] = []
    found: list[Mapping[str, Any]] = []
    for one, into in [*((a, delivered) for a in [alert, *alerts]), *((e, found) for e in events)]:
        if not isinstance(one, Mapping):
            continue
        key = clean(one.get("dedup_key") or one.get("id") or "") or str(id(one))
        if key in seen:
            continue
        seen.add(key)
        into.append(one)
    principal = _principal(alert)
    if not any(principal.values()) and found:
        principal = _most_frequent_principal(found)
    kind = PRINCIPAL_KINDS.get(principal.get("type") or "", "unknown")
    account = _text(alert.get("account")) or principal.get("account")
    region = _text(alert.get("region"))
    alarms = tuple(_alarm(one) for one in delivered if _is_alarm(one))
    every = [
        *(_event(one) for one in delivered if not _is_alarm(one) and _is_event(one)),
        *(replace(_event(one), found=True) for one in found if _is_event(one)),
    ]
    return Artifacts(principal, kind, account, region, tuple(every), alarms)


def _is_event(alert: Mapping[str, Any]) -> bool:
    return any(alert.get(key) for key in ("event_time", "event_name", "source_ip", "resources"))


def _is_alarm(alert: Mapping[str, Any]) -> bool:
    # Riposte's normalizers give the source ``cloudwatch`` to alarm state changes only.
    return alert.get("source") == "cloudwatch"


def _alarm(alert: Mapping[str, Any]) -> Alarm:
    details = alert.get("details")
    extra = details.get("extra") if isinstance(details, Mapping) else None
    extra = extra if isinstance(extra, Mapping) else {}
    listed = extra.get("metrics")
    metrics = [_text(m) for m in listed] if isinstance(listed, list) else []
    given = extra.get("threshold")
    numeric = isinstance(given, int | float) and not isinstance(given, bool)
    threshold = float(given) if numeric and isinstance(given, int | float) else None
    return Alarm(
        name=_text(alert.get("type")) or _text(alert.get("event_name")),
        state=_text(extra.get("state")),
        previous_state=_text(extra.get("previous_state")),
        time=parse_time(alert.get("event_time")),
        metrics=tuple(m for m in metrics if m)[:5],
        threshold=threshold,
        comparison=_text(extra.get("comparison")),
        reason=_text(extra.get("reason")),
        severity_label=_text(alert.get("severity_label")),
    )


def _most_frequent_principal(events: list[Mapping[str, Any]]) -> dict[str, str | None]:
    principals = [_principal(e) for e in events]
    counts = Counter(key for p in principals if (key := p.get("arn") or p.get("name")))
    if not counts:
        return _principal({})
    wanted = counts.most_common(1)[0][0]
    return next(p for p in principals if (p.get("arn") or p.get("name")) == wanted)


def _event(alert: Mapping[str, Any]) -> Event:
    details = alert.get("details") if isinstance(alert.get("details"), Mapping) else {}
    assert isinstance(details, Mapping)
    ids = [
        _text(r.get("id"))
        for r in alert.get("resources") or []
        if isinstance(r, Mapping) and r.get("type") == "AwsEc2Instance"
    ]
    listed = details.get("instance_ids")
    ids += [_text(i) for i in listed] if isinstance(listed, list) else []
    changes = []
    for change in details.get("state_changes") or []:
        if isinstance(change, Mapping):
            changes.append(
                {
                    "instance_id": _text(change.get("instance_id")),
                    "previous": _text(change.get("previous")),
                    "current": _text(change.get("current")),
                }
            )
    principal = alert.get("principal")
    mfa = alert.get("mfa_used")
    return Event(
        time=parse_time(alert.get("event_time")),
        name=_text(alert.get("event_name")),
        source_ip=_text(alert.get("source_ip")),
        user_agent=_text(alert.get("user_agent")),
        mfa_used=mfa if isinstance(mfa, bool) else None,
        instance_ids=tuple(dict.fromkeys(i for i in ids if i)),
        state_changes=tuple(changes),
        principal_name=_text(principal.get("name")) if isinstance(principal, Mapping) else None,
        source=_text(alert.get("source")),
        title=_text(alert.get("title")),
        severity_label=_text(alert.get("severity_label")),
    )


def _principal(alert: Mapping[str, Any]) -> dict[str, str | None]:
    given = alert.get("principal")
    principal = given if isinstance(given, Mapping) else {}
    return {
        key: _text(principal.get(key))
        for key in ("type", "name", "arn", "access_key_id", "account")
    }


def _text(value: object) -> str | None:
    if value is None:
        return None
    return clean(value) or None
