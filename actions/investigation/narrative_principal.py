"""The narrative's paragraphs about the principal: how it behaved and where it came from.

Part of the narrative of the seed's step 5 (``narrative.py``), under the same rules: every
sentence from named findings, which it lists; texts from findings cleaned; no templates.
"""

from __future__ import annotations

from typing import Any

from actions.investigation.catalogue import clean, mapping, plural, rows
from actions.investigation.location import country_name as said_country
from actions.investigation.wording import (
    Findings,
    Text,
    clock,
    listing,
    moment_text,
    number,
    texts,
    window_words,
)


def behaviour(known: Findings) -> Text:
    """Write how the principal behaved: its hours, its calls, its sign-ins and changes."""
    text = Text()
    name = known.principal()[0] or "the principal"
    hours = known.evidence("event_time.off_hours")
    if known.get("event_time.off_hours") is not None:
        days = window_words(hours.get("window_days"))
        events = number(hours.get("based_on_events"))
        if hours.get("usual_window") is None and events is not None:
            text.say(f"A historical search over the {days} before the alert found no activity by "
                     f"{name}, so there are no usual working hours to compare with.",
                     ["event_time.off_hours"])
        elif hours.get("usual_window") is not None:
            start, end = number(hours.get("usual_start_hour")), number(hours.get("usual_end_hour"))
            basis = f" ({plural(events, 'event')})" if events is not None else ""
            span = (f"between {start:02d}:00 and {end:02d}:00 UTC"
                    if start is not None and end is not None
                    else f"in the hours {clean(hours.get('usual_window'))}")
            text.say(f"Pivoting on {name} and searching its history over the {days} before the "
                     f"alert revealed its activity{basis} typically occurred {span}.",
                     ["event_time.off_hours"])
            at = clock(hours.get("event_time"))
            if hours.get("outside") is True and at:
                text.say(f"The alerting activity occurred at {at}, which is not within the "
                         f"normal working hours observed for {name}.", ["event_time.off_hours"])
            elif hours.get("outside") is False and at:
                text.say(f"The alerting activity at {at} is within those hours.",
                         ["event_time.off_hours"])
    cadence = known.evidence("event_name.cadence")
    for event_name, entry in mapping(cadence.get("by_event_name")).items():
        before = number(mapping(entry).get("before_event"))
        if before is None:
            continue
        days = window_words(cadence.get("window_days"))
        text.say(
            f"{known.subject()} had made no {clean(event_name)} calls in the {days} before."
            if before == 0 else
            f"{known.subject()} had made {before} {clean(event_name)} call(s) in the {days} "
            "before.",
            ["event_name.cadence"],
        )
    _sign_ins(known, text, name)
    _changes(known, text, name)
    return text


def _sign_ins(known: Findings, text: Text, name: str) -> None:
    failures = known.evidence("principal.sign_in_failures")
    if known.get("principal.sign_in_failures") is not None:
        count = number(failures.get("failures"))
        if count is None:
            pass
        elif count == 0:
            text.say(f"There were no failed console sign-ins by {name} in the "
                     f"{window_words(failures.get('window_days'))} before.",
                     ["principal.sign_in_failures"])
        else:
            first, last = failures.get("first_failure"), failures.get("last_failure")
            span = (f"at {clock(first)}" if first == last else
                    f"between {clock(first)} and {clock(last)}")
            sentence = (f"Pivoting on the authentication activity of {name} revealed "
                        f"{plural(count, 'failed console sign-in')} {span}")
            after = mapping(failures.get("success_after_failures"))
            if clock(after.get("time")):
                sentence += f" before a successful sign-in at {clock(after.get('time'))}"
            text.say(sentence + ".", ["principal.sign_in_failures"])
    mfa = known.evidence("principal.mfa")
    if known.get("principal.mfa") is None or mfa.get("mfa_used") is None:
        return
    last = mapping(mfa.get("last_sign_in"))
    device = mfa.get("mfa_device")
    if mfa.get("mfa_used") is True:
        sentence = "MFA was used for the session that made these calls"
    else:
        sentence = "MFA was not used for the session that made these calls"
        if last.get("mfa_used") is False and clock(last.get("time")):
            sentence += f" (the sign-in at {clock(last.get('time'))} did not use it)"
    if device is False:
        sentence += f", and {name} has no MFA device"
    text.say(sentence + ".", ["principal.mfa"])


def _changes(known: Findings, text: Text, name: str) -> None:
    changes = known.evidence("principal.recent_changes")
    if known.signal("principal.recent_changes") != "unusual":
        return
    soon = rows(changes.get("cloudtrail_changes"))
    described = []
    for change in soon[:3]:
        if not clock(change.get("time")):
            continue
        details = mapping(change.get("details"))
        what = clean(details.get("policyArn") or details.get("policyName")
                     or details.get("groupName") or details.get("accessKeyId"))
        described.append(
            f"{clean(change.get('event_name'))}{' (' + what + ')' if what else ''} by "
            f"{clean(change.get('by')) or 'an unknown caller'} at {clock(change.get('time'))}"
        )
    if described:
        text.say(f"Shortly before the alert, {name} itself was changed: {listing(described)}.",
                 ["principal.recent_changes"])


def origin(known: Findings) -> Text:
    """Write where the principal came from: its addresses, their countries, its client."""
    text = Text()
    name = known.principal()[0] or "the principal"
    where = known.evidence("source_ip.location")
    for place in rows(where.get("addresses"))[:3]:
        ip = clean(place.get("ip"))
        country = mapping(place.get("country"))
        country_name = clean(country.get("name") or country.get("iso_code"))
        organisation = clean(mapping(place.get("organisation")).get("name"))
        if place.get("owner") == "private":
            text.say(f"The source IP ({ip}) is a private address.", ["source_ip.location"])
            continue
        if not country_name:
            continue
        sentence = f"The source IP ({ip}) is located in {said_country(country_name)}"
        if organisation:
            sentence += f" and routed by {organisation}"
        outside = place.get("outside_usual_countries")
        usual = listing(said_country(n) for n in texts(where.get("usual_country_names")))
        basis = _usual_basis(where)
        if outside is True:
            sentence += f", which is outside the expected geographical region for {name}"
            sentence += f": {basis} {usual}" if usual and basis else ""
        elif outside is False:
            sentence += f", among the countries {name} usually comes from"
        text.say(sentence + ".", ["source_ip.location"])
    first = known.evidence("source_ip.first_seen")
    subject = known.subject()
    for entry in rows(first.get("values"))[:3]:
        # Only the uses before the event are told: the history's window may hold the event's.
        ip, uses = clean(entry.get("value")), number(entry.get("uses_before_event"))
        days = window_words(first.get("window_days"))
        minutes = number(entry.get("minutes_before_event"))
        if entry.get("first_seen") is None:
            text.say(f"{subject} had not used {ip} in the {days} before the alert.",
                     ["source_ip.first_seen"])
        elif entry.get("used_before_event") is False:
            text.say(f"{subject} had not used {ip} before the alerting event itself.",
                     ["source_ip.first_seen"])
        elif entry.get("new") and minutes is not None:
            text.say(f"{subject} first used {ip} at {clock(entry.get('first_seen'))}, "
                     f"{plural(minutes, 'minute')} before the alert, and never earlier in the "
                     f"{days} before.", ["source_ip.first_seen"])
        elif uses is not None:
            text.say(f"{subject} had used {ip} {plural(uses, 'time')} in the {days} before.",
                     ["source_ip.first_seen"])
        elif moment_text(entry.get("first_seen")):
            text.say(f"{subject} had used {ip} before, first on "
                     f"{moment_text(entry.get('first_seen'))}.", ["source_ip.first_seen"])
    agents = known.evidence("user_agent.seen_before")
    new_agents = [clean(e.get("value")) for e in rows(agents.get("values")) if e.get("new")]
    if new_agents:
        text.say(f"The client it used ({listing(new_agents[:2])}) was also new for {name}.",
                 ["user_agent.seen_before"])
    return text


def _usual_basis(where: dict[str, Any]) -> str:
    if where.get("usual_basis") == "configured":
        return "the countries configured for it are"
    addresses = rows(where.get("baseline_addresses"))
    days = window_words(where.get("window_days"))
    if len(addresses) == 1:
        return f"the one address it used in the {days} before resolved to"
    if addresses:
        return f"the {len(addresses)} addresses it used in the {days} before all resolved to"
    return ""
