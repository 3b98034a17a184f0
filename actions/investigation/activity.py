"""The questions about the event itself: what it was, its name, its source address and client.

Its time of day is judged in ``hours``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from actions.investigation.artifacts import DESTRUCTIVE_EVENTS, SHUTDOWN_EVENTS
from actions.investigation.catalogue import (
    Assessment,
    count,
    mapping,
    parse_time,
    plural,
    rows,
    shown_time,
    stamp,
)
from actions.investigation.sources import Sources, days_text
from actions.investigation.wording import alarm_words

# An address or client first seen this shortly before the event is new, even if "seen before".
NEW_WITHIN = timedelta(hours=24)
LISTED_ROWS = 50  # the history lists at most this many addresses / clients


def what_happened(found: Assessment, src: Sources) -> None:
    """The event in one answer: who did what to how many instances, when, from where.

    A CloudWatch alarm is said as an alarm (its name, state, metric and threshold), never as a
    call; the calls it counted are the events when the playbook found them in CloudTrail.
    """
    art = src.artifacts
    if not art.events and not art.alarms:
        found.unanswered("event.what_happened", "the run's alerts carry no event")
        return
    production = [i for i in art.instance_ids if i in _production(src)]
    evidence: dict[str, Any] = {
        "principal": art.name,
        "principal_kind": art.principal_kind,
        "arn": art.principal.get("arn"),
        "account": art.account,
        "region": art.region,
        "event_names": art.event_names,
        "events": len(art.events),
        "events_found_in_cloudtrail": art.found_events,
        "alert_sources": art.sources,
        "alarms": [alarm.as_dict() for alarm in art.alarms[:5]],
        "titles": list(dict.fromkeys(e.title for e in art.events if e.title))[:5],
        "first_event_time": stamp(art.first_time),
        "last_event_time": stamp(art.last_time),
        "source_ips": art.source_ips,
        "instances": len(art.instance_ids),
        "instance_ids": art.instance_ids[:50],
    }
    if src.instances is not None:
        evidence["production_instances"] = len(production)
    said = [alarm_words(alarm.as_dict()) for alarm in art.alarms[:3]]
    if not art.events:
        said.append("an alarm names no caller, and no call it counted was given")
        found.found("event.what_happened", _sentence(said), evidence, "high")
        return
    names = ", ".join(
        f"{plural(n, name + ' call')}" for name, n in art.event_names.items()
    ) or "events"
    answer = f"{art.name or 'an unknown principal'} ({art.principal_kind}) made {names}"
    if art.instance_ids:
        answer += f" naming {plural(len(art.instance_ids), 'instance')}"
        if src.instances is not None:
            answer += f" ({len(production)} production)"
    if art.first_time and art.last_time and art.last_time != art.first_time:
        answer += f", between {shown_time(art.first_time)} and {shown_time(art.last_time)}"
    elif art.first_time:
        answer += f", at {shown_time(art.first_time)}"
    if art.source_ips:
        answer += f", from {', '.join(art.source_ips)}"
    if art.account:
        answer += f", in account {art.account}"
    if art.found_events:
        answer = "CloudTrail shows " + answer
    said.append(answer)
    found.found("event.what_happened", _sentence(said), evidence, "high")


def _sentence(parts: list[str]) -> str:
    joined = "; ".join(parts)
    return joined[:1].upper() + joined[1:] + "."


def terminated_or_stopped(found: Assessment, src: Sources) -> None:
    """Terminated or only stopped: the event names, CloudTrail's state changes, EC2's states."""
    art = src.artifacts
    names = art.event_names
    ec2_names = {n: c for n, c in names.items() if n in DESTRUCTIVE_EVENTS + SHUTDOWN_EVENTS}
    if not ec2_names:
        found.unanswered(
            "event_name.terminated_or_stopped",
            "the triggering events are not instance stops or terminations "
            f"({', '.join(names) or 'no event name'})",
        )
        return
    terminated = sorted({
        i for e in art.events if e.name in DESTRUCTIVE_EVENTS for i in e.instance_ids
    })
    stopped = sorted({i for e in art.events if e.name in SHUTDOWN_EVENTS for i in e.instance_ids})
    transitions: dict[str, int] = {}
    for change in art.state_changes:
        key = f"{change.get('previous') or '?'} -> {change.get('current') or '?'}"
        transitions[key] = transitions.get(key, 0) + 1
    states: dict[str, int] = {}
    for instance in rows(mapping(src.instances).get("instances")):
        state = str(instance.get("state") or "unknown")
        states[state] = states.get(state, 0) + 1
    kind = "terminated" if terminated else "stopped"
    answer = (
        f"{'Terminated' if terminated else 'Stopped, not terminated'}: "
        + ", ".join(plural(n, f"{name} call") for name, n in ec2_names.items())
        + f" naming {plural(len(terminated or stopped), 'instance')}"
    )
    if transitions:
        answer += "; CloudTrail reported " + ", ".join(f"{n} {t}" for t, n in transitions.items())
    if states:
        answer += "; EC2 now shows " + ", ".join(f"{n} {s}" for s, n in states.items())
    found.found(
        "event_name.terminated_or_stopped",
        answer + ".",
        {
            "event_names": ec2_names,
            "outcome": kind,
            "terminated_instances": len(terminated),
            "stopped_instances": len(stopped),
            "state_changes": transitions,
            "current_states": states,
        },
        "high",
    )


def cadence(found: Assessment, src: Sources) -> None:
    """How often the principal made the triggering calls in the window before the event."""
    if src.history is None:
        found.unanswered("event_name.cadence", src.no_history())
        return
    names = list(src.artifacts.event_names)
    if not names:
        found.unanswered("event_name.cadence", "the triggering events carry no event name")
        return
    listed = {row.get("value"): row for row in rows(src.history.get("event_names"))}
    moment = src.event_time
    by_name: dict[str, dict[str, Any]] = {}
    for name in names:
        row = listed.get(name, {})
        in_window = count(row.get("count")) or 0
        ours = sum(
            1 for e in src.artifacts.events
            if e.name == name and e.time is not None and _in_window(src, e.time)
        )
        first = parse_time(row.get("first_seen"))
        earlier = 0
        if row.get("seen_before_alert") and first is not None and moment and first < moment:
            earlier = max(1, in_window - ours)
        by_name[name] = {
            "before_event": earlier,
            "in_window": in_window,
            "first_seen": stamp(first),
            "last_seen": row.get("last_seen"),
        }
    days = days_text(src.window_days)
    who = src.artifacts.name or "The principal"
    parts = [
        f"no {name} calls" if entry["before_event"] == 0
        else f"{entry['before_event']} {name} call(s), the first at "
        f"{shown_time(parse_time(entry['first_seen']) or datetime.min)}"
        for name, entry in by_name.items()
    ]
    never = all(entry["before_event"] == 0 for entry in by_name.values())
    found.found(
        "event_name.cadence",
        f"{who} made {' and '.join(parts)} in the {days} before the event.",
        {"by_event_name": by_name, "window_days": src.window_days,
         "listed_event_names": len(listed)},
        "medium" if len(listed) < LISTED_ROWS else "low",
        "notable" if never else "normal",
    )


def address_first_seen(found: Assessment, src: Sources) -> None:
    """When the principal first used each triggering address, and whether that is new."""
    _first_seen(found, src, "source_ip.first_seen", "source_ips", src.artifacts.source_ips, "IP")


def client_seen_before(found: Assessment, src: Sources) -> None:
    """Whether the principal used the triggering client (user agent) before the event."""
    _first_seen(
        found, src, "user_agent.seen_before", "user_agents", src.artifacts.user_agents, "client"
    )


def _first_seen(
    found: Assessment, src: Sources, question: str, key: str, values: dict[str, int], noun: str
) -> None:
    if src.history is None:
        found.unanswered(question, src.no_history())
        return
    if not values:
        found.unanswered(question, f"the triggering events name no {noun}")
        return
    listed = {row.get("value"): row for row in rows(src.history.get(key))}
    moment = src.event_time
    days = days_text(src.window_days)
    entries = []
    for value in list(values)[:5]:
        row = listed.get(value, {})
        first = parse_time(row.get("first_seen"))
        before = moment - first if first is not None and moment is not None else None
        new = before is None or before < NEW_WITHIN
        entries.append(
            {
                "value": value,
                "first_seen": stamp(first),
                "minutes_before_event": None if before is None
                else int(before.total_seconds() // 60),
                "uses_in_window": count(row.get("count")) or 0,
                "new": new,
            }
        )
    who = src.artifacts.name or "the principal"
    sentences = []
    for entry in entries:
        if entry["first_seen"] is None:
            truncated = f" (among the {noun}s listed)" if len(listed) >= LISTED_ROWS else ""
            sentences.append(
                f"{entry['value']} was not used by {who} in the {days} before{truncated}"
            )
        elif entry["minutes_before_event"] == 0:
            sentences.append(f"{entry['value']} was first used by {who} in the event itself")
        elif entry["new"]:
            sentences.append(
                f"{entry['value']} was first used by {who} at "
                f"{shown_time(parse_time(entry['first_seen']) or datetime.min)}, "
                f"{entry['minutes_before_event']} minutes before the event, and not earlier "
                f"in the {days} before"
            )
        else:
            sentences.append(
                f"{entry['value']} was used by {who} {entry['uses_in_window']} times in the "
                f"{days} before, first at "
                f"{shown_time(parse_time(entry['first_seen']) or datetime.min)}"
            )
    any_new = any(entry["new"] for entry in entries)
    found.found(
        question,
        "; ".join(sentences) + ".",
        {"values": entries, "window_days": src.window_days, "new": any_new},
        "medium" if len(listed) < LISTED_ROWS else "low",
        "notable" if any_new else "normal",
    )


def other_principals(found: Assessment, src: Sources) -> None:
    """Who else the run's events show at the event's addresses (the history is one principal's)."""
    art = src.artifacts
    ips = list(art.source_ips)
    others = sorted({
        e.principal_name for e in art.events
        if e.source_ip in ips and e.principal_name and e.principal_name != art.name
    })
    missing = (
        "the principal history covers only this principal's own calls: other principals' calls "
        f"from {', '.join(ips) or 'this address'} need an account-wide search (CloudTrail Lake, "
        "Athena over the trail, or the SIEM)"
    )
    if not others:
        found.unanswered("source_ip.other_principals", missing)
        return
    found.found(
        "source_ip.other_principals",
        f"The run's events show {', '.join(others)} also calling from {', '.join(ips)}; "
        f"{missing}.",
        {"ips": ips, "other_principals": others, "events_checked": len(art.events)},
        "low",
        "notable",
    )


def _in_window(src: Sources, moment: datetime) -> bool:
    start, end = src.window_start, src.window_end
    return (start is None or start <= moment) and (end is None or moment <= end)


def _production(src: Sources) -> set[str]:
    listed = mapping(src.instances).get("production")
    return {str(i) for i in listed} if isinstance(listed, list) else set()
