"""The questions about the event itself: what it was, its name, its source address and client.

Its time of day is judged in ``hours``.
"""

from __future__ import annotations

from datetime import timedelta
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
from actions.investigation.wording import alarm_words, capitalised

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
    found.found("event.what_happened", _sentence(said, art.name), evidence, "high")


def _sentence(parts: list[str], name: str | None = None) -> str:
    """The parts as one sentence: a capital first letter, unless it opens with the principal's
    name, which keeps IAM's spelling (``kestrel.ops``, not ``Kestrel.ops``)."""
    joined = "; ".join(parts)
    return (joined if name and joined.startswith(name) else capitalised(joined)) + "."


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
    tallied = rows(src.history.get("event_names"))
    listed = {row.get("value"): row for row in tallied}
    moment = src.event_time
    by_name: dict[str, dict[str, Any]] = {}
    for name in names:
        row = listed.get(name, {})
        first = parse_time(row.get("first_seen"))
        by_name[name] = {
            "before_event": calls_before_event(row, tallied, src),
            "in_window": count(row.get("count")) or 0,
            "first_seen": None if first is None or (moment is not None and first >= moment)
            else stamp(first),
            "last_seen": row.get("last_seen"),
        }
    days = days_text(src.window_days)
    who = src.artifacts.name or "The principal"
    parts = []
    for name, entry in by_name.items():
        first_at = _said_time(entry["first_seen"])
        if entry["before_event"] == 0:
            parts.append(f"no {name} calls")
        elif entry["before_event"] is None:
            parts.append(f"{name} calls, the first at {first_at} (how many is not known: the "
                         f"history's {entry['in_window']} include calls at or after the event)")
        else:
            parts.append(f"{entry['before_event']} {name} call(s), the first at {first_at}")
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
    tallied = rows(src.history.get(key))
    listed = {row.get("value"): row for row in tallied}
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
                "used_before_event": before is not None and before > timedelta(0),
                "minutes_before_event": None if before is None
                else int(before.total_seconds() // 60),
                "uses_in_window": count(row.get("count")) or 0,
                "uses_before_event": calls_before_event(row, tallied, src),
                "new": new,
            }
        )
    who = src.artifacts.name or "the principal"
    sentences = []
    for entry in entries:
        first_at = _said_time(entry["first_seen"])
        if entry["first_seen"] is None:
            truncated = f" (among the {noun}s listed)" if len(listed) >= LISTED_ROWS else ""
            sentences.append(
                f"{entry['value']} was not used by {who} in the {days} before{truncated}"
            )
        elif not entry["used_before_event"]:
            sentences.append(f"{entry['value']} was first used by {who} in the event itself")
        elif entry["new"]:
            sentences.append(
                f"{entry['value']} was first used by {who} at {first_at}, "
                f"{entry['minutes_before_event']} minutes before the event, and not earlier "
                f"in the {days} before"
            )
        elif entry["uses_before_event"] is None:
            sentences.append(
                f"{entry['value']} was used by {who} before the event, first at {first_at} "
                f"(how many times is not known: the history's {entry['uses_in_window']} uses "
                "include calls at or after the event)"
            )
        else:
            sentences.append(
                f"{entry['value']} was used by {who} {entry['uses_before_event']} times in the "
                f"{days} before, first at {first_at}"
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


def calls_before_event(
    row: dict[str, Any], tally: list[dict[str, Any]], src: Sources
) -> int | None:
    """How many of the calls a history tally counts for one value came before the event.

    The history counts every call of its window, whose end may be the event's own time (the
    triggering call is then counted when a source already holds it) or later (the burst is
    counted too); none of those is "before". A value last seen before the event: all its calls.
    First seen at or after it: none. Else its count less its calls at or after the event,
    known when the history's totals say how many of the principal's calls those are (see
    :func:`calls_at_or_after_event`) and they are all this value's: there is one, or this value
    is the only one the tally shows since the event and the tally lists every call. Otherwise
    None: the number is not known, and is not to be said.
    """
    moment = src.event_time
    in_window = count(row.get("count")) or 0
    first, last = parse_time(row.get("first_seen")), parse_time(row.get("last_seen"))
    if in_window == 0:
        return 0
    if moment is None or first is None or last is None:
        return None
    if last < moment:
        return in_window
    if first >= moment:
        return 0
    after = calls_at_or_after_event(src)
    if after is None or after < 1:
        return None
    since = [r for r in tally if (t := parse_time(r.get("last_seen"))) and t >= moment]
    lists_every_call = sum(count(r.get("count")) or 0 for r in tally) == count(
        mapping(src.history).get("principal_events"))
    if after == 1 or (len(since) == 1 and lists_every_call):
        return max(in_window - after, 0)
    return None


def calls_at_or_after_event(src: Sources) -> int | None:
    """How many of the principal's calls in the history's window were at or after the event.

    The history splits the principal's calls of the window into its baseline (counted by hour
    of the day), its lead-up (the calls just before the event) and the rest, at or after the
    event; None when it judged another time than the event's, or does not give the figures.
    """
    history = mapping(src.history)
    judged = parse_time(mapping(history.get("alert_event")).get("time"))
    by_hour = history.get("activity_by_hour")
    total = count(history.get("principal_events"))
    lead_up = count(mapping(history.get("lead_up")).get("events"))
    if judged is None or judged != src.event_time or total is None or lead_up is None:
        return None
    if not isinstance(by_hour, list) or any(count(n) is None for n in by_hour):
        return None
    after = total - sum(count(n) or 0 for n in by_hour) - lead_up
    return after if after >= 0 else None


def _said_time(value: object) -> str:
    moment = parse_time(value)
    return "an unknown time" if moment is None else shown_time(moment)


def _production(src: Sources) -> set[str]:
    listed = mapping(src.instances).get("production")
    return {str(i) for i in listed} if isinstance(listed, list) else set()
