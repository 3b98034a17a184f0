"""The artifacts of the seed's step 2, extracted from the triggering events.

From each alert (as templates see it: ``alert`` / ``alerts``): the event time and name, the
source IP, the user agent, the principal (user name, ARN, access key, account), the account, the
region, the instance ids and the state changes CloudTrail reported (``running`` →
``shutting-down``). Every text is cleaned: alert fields are written by whoever made the call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Artifacts:
    """What the triggering events say, gathered over every alert of the run."""

    principal: dict[str, str | None]
    principal_kind: str
    account: str | None
    region: str | None
    events: tuple[Event, ...] = field(default=())

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
        counts = Counter(e.source for e in self.events if e.source)
        return dict(counts.most_common())

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
        }


def extract(alert: Mapping[str, Any], alerts: Iterable[Mapping[str, Any]] = ()) -> Artifacts:
    """The artifacts of the run's alert and of every other alert of the run (deduplicated)."""
    seen: set[str] = set()
    every: list[Mapping[str, Any]] = []
    for one in [alert, *alerts]:
        if not isinstance(one, Mapping):
            continue
        key = clean(one.get("id") or one.get("dedup_key") or "") or str(id(one))
        if key in seen:
            continue
        seen.add(key)
        every.append(one)
    principal = _principal(alert)
    kind = PRINCIPAL_KINDS.get(principal.get("type") or "", "unknown")
    account = _text(alert.get("account")) or principal.get("account")
    region = _text(alert.get("region"))
    events = tuple(_event(one) for one in every if _is_event(one))
    return Artifacts(principal, kind, account, region, events)


def _is_event(alert: Mapping[str, Any]) -> bool:
    return any(alert.get(key) for key in ("event_time", "event_name", "source_ip", "resources"))


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
