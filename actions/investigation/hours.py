"""The questions about the event's time of day, judged against the principal's history.

The history (``aws.cloudtrail.principal_history``) leaves the event's own lead-up — the calls
just before it, e.g. an intruder's sign-ins — out of the baseline, and the answers say how many
calls that left out: "no precedent at this hour" never silently means "but the attack's own".
"""

from __future__ import annotations

from typing import Any

from actions.investigation.catalogue import (
    Assessment,
    Confidence,
    count,
    mapping,
    parse_time,
    plural,
    shown_time,
    stamp,
)
from actions.investigation.sources import Sources, days_text

# Fewer active hours than this is too little history to call an hour unusual with confidence.
ENOUGH_ACTIVE_HOURS = 20
SOME_ACTIVE_HOURS = 5


def off_hours(found: Assessment, src: Sources) -> None:
    """Whether the event falls outside the principal's usual hours over the window before it."""
    if src.history is None:
        found.unanswered("event_time.off_hours", src.no_history())
        return
    moment = src.event_time
    if moment is None:
        found.unanswered("event_time.off_hours", "the triggering events carry no event time")
        return
    hours = mapping(src.history.get("working_hours"))
    days = days_text(src.window_days)
    base: dict[str, Any] = {
        "event_time": stamp(moment),
        "hour": moment.hour,
        "window_days": src.window_days,
        "window_start": stamp(src.window_start),
    }
    start, end = count(hours.get("start_hour")), count(hours.get("end_hour"))
    length = count(hours.get("hours"))
    if start is None or end is None or length is None:
        events = count(src.history.get("principal_events")) or 0
        found.found(
            "event_time.off_hours",
            f"{src.artifacts.name or 'The principal'} made no calls in the {days} before the "
            f"event: there are no usual hours to compare {shown_time(moment)} with.",
            {**base, "usual_window": None, "based_on_events": events},
            "low",
            "notable",
        )
        return
    active = count(hours.get("based_on_active_hours")) or 0
    events = count(hours.get("based_on_events")) or 0
    outside = (moment.hour - start) % 24 >= length
    confidence: Confidence = (
        "high"
        if active >= ENOUGH_ACTIVE_HOURS
        else "medium"
        if active >= SOME_ACTIVE_HOURS
        else "low"
    )
    window = f"{start:02d}:00 and {end:02d}:00 UTC" if length < 24 else "all day"
    verdict = "outside" if outside else "inside"
    answer = f"{'Yes' if outside else 'No'}: {shown_time(moment)} is {verdict}"
    lead_up = _lead_up(src)
    found.found(
        "event_time.off_hours",
        f"{answer} the usual working hours of {src.artifacts.name or 'the principal'} "
        f"(between {window}), drawn from {plural(events, 'event')} over {active} active hours "
        f"in the {days} before it{_lead_up_words(lead_up) if lead_up else ''}.",
        {
            "lead_up_left_out": lead_up,
            **base,
            "usual_window": hours.get("label"),
            "usual_start_hour": start,
            "usual_end_hour": end,
            "usual_hours": length,
            "based_on_events": events,
            "based_on_active_hours": active,
            "outside": outside,
            "judged": verdict,
        },
        confidence,
        ("unusual" if active >= SOME_ACTIVE_HOURS else "notable") if outside else "normal",
    )


def seen_at_this_hour(found: Assessment, src: Sources) -> None:
    """How many of the principal's earlier calls fell in the event's hour of the day.

    Its calls just before the event (the history's ``lead_up``) are the incident's own lead-up,
    not a precedent: the history leaves them out of its activity by hour, and the answer says
    how many were left out.
    """
    if src.history is None:
        found.unanswered("event_time.seen_at_this_hour", src.no_history())
        return
    moment = src.event_time
    by_hour = src.history.get("activity_by_hour")
    if moment is None or not isinstance(by_hour, list) or len(by_hour) != 24:
        found.unanswered(
            "event_time.seen_at_this_hour", "the history has no activity by hour of the day"
        )
        return
    at_hour = count(by_hour[moment.hour]) or 0
    total = sum(count(n) or 0 for n in by_hour)
    by_day = src.history.get("active_days_by_hour")
    active_days = (
        count(by_day[moment.hour]) if isinstance(by_day, list) and len(by_day) == 24 else None
    )
    lead_up = _lead_up(src)
    days = days_text(src.window_days)
    span = f"between {moment.hour:02d}:00 and {(moment.hour + 1) % 24:02d}:00 UTC"
    if at_hour == 0:
        answer = f"No: none of its {plural(total, 'call')} in the {days} before was {span}"
    else:
        on_days = f" on {plural(active_days, 'day')}" if active_days is not None else ""
        answer = (
            f"Yes: {at_hour} of its {plural(total, 'call')} in the {days} before were "
            f"{span}{on_days}"
        )
    found.found(
        "event_time.seen_at_this_hour",
        answer + _lead_up_words(lead_up) + ".",
        {
            "hour": moment.hour,
            "events_at_this_hour": at_hour,
            "active_days_at_this_hour": active_days,
            "based_on_events": total,
            "window_days": src.window_days,
            "lead_up_left_out": lead_up,
        },
        "medium" if total else "low",
    )


def _lead_up(src: Sources) -> dict[str, Any] | None:
    """What the history left out of the baseline as the event's lead-up (None: it does not say)."""
    lead = src.history.get("lead_up") if src.history is not None else None
    if not isinstance(lead, dict) or count(lead.get("events")) is None:
        return None
    return {"events": count(lead.get("events")), "start": stamp(parse_time(lead.get("start")))}


def _lead_up_words(lead_up: dict[str, Any] | None) -> str:
    if lead_up is None:
        return " (the history does not say whether its calls just before the event are among them)"
    if not lead_up["events"]:
        return ""
    since = parse_time(lead_up["start"])
    start = f" from {shown_time(since)} on" if since is not None else " just before the event"
    return (
        f" (its {plural(lead_up['events'], 'call')}{start} are the event's own lead-up "
        "and are not counted)"
    )
