"""The narrative of the seed's step 5, written from the findings only.

Every sentence is built from the evidence of named findings and lists their ids; a finding
that is absent leaves its sentences out rather than guessing. Texts from findings are cleaned
(no control or format characters): they came from alerts, which attackers write. Nothing here
is a template: the values are placed in fixed English sentences by Python.
"""

from __future__ import annotations

from typing import Any

from actions.investigation.assess import SEVERITIES
from actions.investigation.catalogue import clean, mapping, plural, rows
from actions.investigation.narrative_principal import behaviour, origin
from actions.investigation.recommendation import recommend
from actions.investigation.wording import (
    Findings,
    Text,
    alarm_words,
    capitalised,
    clock,
    day,
    listing,
    moment_text,
    number,
    same_day,
    texts,
    window_words,
)

# Who raised the alert, as the narrative names it (by the normalized alert's source).
SOURCE_NAMES = {
    "cloudtrail": "AWS CloudTrail",
    "eventbridge": "an EventBridge event",
    "guardduty": "Amazon GuardDuty",
    "securityhub": "AWS Security Hub",
    "cloudwatch": "a CloudWatch alarm",
    "sns": "an SNS notification",
}
FINDING_SOURCES = ("guardduty", "securityhub")
# Why each kind of unusual finding matters, as the verdict sentence lists them.
REASON_WORDS = {
    "event_time.off_hours": "outside its usual working hours",
    "source_ip.location": "from a country outside its usual ones",
    "principal.mfa": "without MFA",
    "principal.sign_in_failures": "after repeated failed sign-ins",
    "principal.recent_changes": "right after a change to its permissions or credentials",
}
NORMAL_WORDS = {
    "event_time.off_hours": "within its usual working hours",
    "source_ip.location": "from its usual countries",
    "principal.mfa": "with MFA",
    "principal.sign_in_failures": "with no failed sign-ins",
    "source_ip.first_seen": "from an address it uses",
    "principal.recent_changes": "with no recent change to its permissions",
}


def narrate(findings: object, open_questions: object, verdict: object) -> dict[str, Any]:
    """Write the narrative and the recommendation; each sentence names its findings."""
    known = Findings.of(findings, open_questions, verdict)
    paragraphs = [
        _what_happened(known),
        behaviour(known),
        origin(known),
        _targets(known),
        _conclusion(known),
    ]
    recommendation = recommend(known)
    narrative = "\n\n".join(
        " ".join(s["text"] for s in paragraph.sentences)
        for paragraph in paragraphs if paragraph.sentences
    )
    return {
        "narrative": narrative,
        "recommendation": [s["text"] for s in recommendation.sentences],
        "sentences": [s for p in [*paragraphs, recommendation] for s in p.sentences],
    }


def _what_happened(known: Findings) -> Text:
    text = Text()
    what = known.evidence("event.what_happened")
    outcome = known.evidence("event_name.terminated_or_stopped")
    if known.get("event.what_happened") is None:
        return text
    ids = ["event.what_happened"]
    alarms = rows(what.get("alarms"))
    for alarm in alarms[:2]:
        text.say(capitalised(alarm_words(alarm)) + ".", ids)
    if alarms and not number(what.get("events")):
        text.say("An alarm names no caller: who made the calls it counted is not known from it.",
                 ids)
        return text
    first, last = what.get("first_event_time"), what.get("last_event_time")
    when = moment_text(first)
    if when and last and last != first and clock(last):
        when = (f"{day(first)} between {clock(first)} and {clock(last)}" if same_day(first, last)
                else f"{when} and {moment_text(last)}")
    deed = _deed(known, what, outcome)
    if outcome:
        ids.append("event_name.terminated_or_stopped")
    opening = f"On {when}, " if when else ""
    sources = list(mapping(what.get("alert_sources")))
    reporter = SOURCE_NAMES.get(sources[0], "an alert") if len(sources) == 1 else "alerts"
    if number(what.get("events_found_in_cloudtrail")):
        sentence = f"{opening}CloudTrail recorded {known.who()} {deed}"
    elif sources and sources[0] in FINDING_SOURCES and len(sources) == 1:
        titles = texts(what.get("titles"))
        about = f" ({titles[0]})" if titles else ""
        sentence = f"{opening}{reporter} reported a finding{about} about {known.who()}"
        if deed.startswith("making "):
            deed = ""
        sentence += f", {deed}" if deed else ""
    elif reporter in SOURCE_NAMES.values():
        sentence = f"{opening}{reporter} alerted to {known.who()} {deed}"
    else:
        sentence = f"{opening}{reporter} flagged {known.who()} {deed}"
    account = clean(what.get("account"))
    if account:
        sentence += f" in the AWS account {account}"
    region = clean(what.get("region"))
    # It opens with "On …" or with who reported it ("an alert", "AWS CloudTrail"): English.
    text.say(capitalised(sentence) + (f", region {region}." if region else "."), ids)
    if outcome.get("outcome") == "terminated" and known.verdict.get("unusual") is not False:
        text.say(
            "An attacker may terminate instances as a data destruction attack designed to "
            "disrupt the company's operations: a terminated instance is gone, and its root "
            "volume usually with it.",
            ["event_name.terminated_or_stopped"],
        )
    elif outcome.get("outcome") == "stopped":
        text.say(
            "The instances were stopped, not terminated: their volumes remain and they can be "
            "started again, but what they serve is down meanwhile.",
            ["event_name.terminated_or_stopped"],
        )
    return text


def _deed(known: Findings, what: dict[str, Any], outcome: dict[str, Any]) -> str:
    instances = number(what.get("instances")) or 0
    production = number(what.get("production_instances"))
    if production is not None and instances and production == instances:
        things = plural(instances, "production instance")
    elif production:
        things = f"{plural(instances, 'instance')}, {production} of them production,"
    else:
        things = plural(instances, "instance")
    verb = {"terminated": "terminating", "stopped": "stopping"}.get(str(outcome.get("outcome")))
    if verb and instances:
        return f"{verb} {things}"
    names = mapping(what.get("event_names"))
    calls = listing(
        f"{number(n)} {clean(name)}" if number(n) is not None else clean(name)
        for name, n in names.items()
    )
    return f"making {calls} call(s)" + (f" naming {things}" if instances else "")


def _targets(known: Findings) -> Text:
    text = Text()
    launched = known.evidence("instances.launched")
    stopped = known.evidence("instances.stopped_before")
    if known.get("instances.launched") is not None:
        earliest, latest = launched.get("earliest"), launched.get("latest")
        span = (f"on {day(earliest)}" if same_day(earliest, latest)
                else f"between {day(earliest)} and {day(latest)}")
        text.say(f"The instances were first stood up {span}.", ["instances.launched"])
    if known.get("instances.stopped_before") is not None:
        listed = stopped.get("stopped_or_terminated")
        checked = number(stopped.get("instances_checked"))
        them = "the instances" if checked is None else f"the {plural(checked, 'instance')}"
        days = window_words(stopped.get("window_days"))
        if listed == {}:
            text.say(f"A historical search on {them} showed none had been stopped or "
                     f"terminated in the {days} before.", ["instances.stopped_before"])
        elif isinstance(listed, dict) and listed:
            text.say(f"{len(listed)} of {them} had been stopped or terminated in the {days} "
                     f"before ({listing(list(listed)[:3])}).", ["instances.stopped_before"])
    touched = known.evidence("instances.touched_before")
    if known.get("instances.touched_before") is not None:
        hits = touched.get("touched")
        days = window_words(touched.get("window_days"))
        if hits == {}:
            text.say(f"{known.subject()} had not interacted with them in the {days} before "
                     "the alert.", ["instances.touched_before"])
        elif isinstance(hits, dict) and hits:
            text.say(f"{known.subject()} had interacted with {len(hits)} of them in the "
                     f"{days} before the alert.", ["instances.touched_before"])
    work = known.evidence("instances.workload")
    if known.get("instances.workload") is not None:
        workloads = texts(work.get("workloads"))[:3]
        images = texts(work.get("images"))[:3]
        if workloads or images:
            sentence = "They run " + (listing(workloads) if workloads else "software")
            if images:
                sentence += f", launched from the image {listing(images)}"
            text.say(sentence + ".", ["instances.workload"])
    purpose = known.evidence("account.purpose")
    if known.get("account.purpose") is not None:
        account = clean(purpose.get("account"))
        if purpose.get("listed"):
            owner = clean(purpose.get("owner"))
            environment = clean(purpose.get("environment"))
            sentence = f"The AWS account {account} is {clean(purpose.get('name')) or 'listed'}"
            sentence += f", a {environment} account" if environment else ""
            sentence += f" owned by {owner}" if owner else ""
            text.say(sentence + ".", ["account.purpose"])
        elif purpose.get("listed") is False and account:
            text.say(f"The AWS account {account} is an unknown account: it is not in Riposte's "
                     "account registry, so its business purpose is not known.",
                     ["account.purpose"])
    return text


def _conclusion(known: Findings) -> Text:
    text = Text()
    name = known.principal()[0] or "the principal"
    verdict = known.verdict
    reasons = known.verdict_ids("reasons")
    if reasons:
        why = listing(REASON_WORDS.get(r, clean(known.by_id[r].get("question"))) for r in reasons)
        text.say(f"This activity is unusual for {name}: it came {why}.", reasons)

    elif verdict.get("baseline") == "missing" and verdict.get("unusual"):
        text.say(f"There is no history of {name} to compare this activity with, so Riposte "
                 "cannot say it matches a usual pattern.", ["event_time.off_hours"])
    elif verdict.get("unusual") is False:
        normal = [n for n in known.verdict_ids("normal") if n in NORMAL_WORDS]
        how = listing(NORMAL_WORDS[n] for n in normal)
        text.say(f"The activity matches {name}'s usual pattern" + (f": {how}." if how else "."),
                 normal)
    severity = clean(verdict.get("severity"))
    if severity in SEVERITIES and text.sentences:
        text.say(f"Riposte rates it {severity}.", text.sentences[-1]["findings"])
    partial = [i for i in known.by_id if mapping(known.evidence(i).get("unread_sources"))]
    if partial:
        unread = list(mapping(known.evidence(partial[0]).get("unread_sources")))
        text.say(f"The history of {name} may be incomplete: the CloudTrail "
                 f"{'sources' if len(unread) > 1 else 'source'} {listing(unread)} could not "
                 "be read.", partial)
    return text

