"""The recommendation of the seed's step 5: contain, revoke, relaunch, and whom to ask.

Written from the verdict and the findings only. When the activity is unusual (or cannot be
shown to be usual) it recommends containing the principal the way Riposte can (disable a
user, revoke a role's sessions), revoking its keys, and relaunching terminated instances from
backups taken before the event; when it matches the principal's usual pattern it recommends no
containment, only a confirmation. Either way it names whom to confirm with: the account's owner
from the registry, else the principal's manager.
"""

from __future__ import annotations

from actions.investigation.catalogue import clean, plural
from actions.investigation.wording import Findings, Text, listing, number, texts

# Open questions only a person can answer (the others need an input the playbook can add).
HUMAN_QUESTIONS = ("principal.authorised", "source_ip.reputation", "principal.threat_history")


def recommend(known: Findings) -> Text:
    """The recommendation's sentences, each naming the findings it rests on."""
    text = Text(known=set(known.by_id))
    name, kind = known.principal()
    name = name or "the principal"
    who = known.who()
    purpose = known.evidence("account.purpose")
    owner = clean(purpose.get("owner"))
    confirmer = (f"the account owner ({owner})" if owner else f"{name}'s manager")
    confirm_ids = ["account.purpose"] if owner else []
    what = known.evidence("event.what_happened")
    outcome = known.evidence("event_name.terminated_or_stopped")
    instances = number(what.get("instances")) or 0
    deed = {"terminated": "terminate", "stopped": "stop"}.get(str(outcome.get("outcome")))
    action = f"{deed} these {plural(instances, 'instance')}" if deed and instances else "act"
    verdict = known.verdict
    reasons = known.verdict_ids("reasons")
    if verdict.get("unusual") is not True:
        normal = known.verdict_ids("normal")
        text.say(f"No containment is recommended: the activity matches {name}'s usual pattern.",
                 normal, "recommendation")
        text.say(f"Confirm with {confirmer} that {name} was meant to {action}.",
                 [*confirm_ids, "event.what_happened"], "recommendation")
        return text
    basis = [*reasons, "event.what_happened"]
    if kind == "user":
        text.say(f"We recommend temporarily disabling {who} (deny all actions, deactivate its "
                 f"access keys, remove its console password) until {confirmer} confirms that "
                 f"{name} was authorised to {action}.", [*basis, *confirm_ids], "recommendation")
    elif kind == "role":
        text.say(f"We recommend revoking the active sessions of {who} (deny every session "
                 f"issued before now) until {confirmer} confirms that it was meant to {action}.",
                 [*basis, *confirm_ids], "recommendation")
    else:
        text.say(f"Contain {who} by hand (Riposte contains IAM users and roles only) until "
                 f"{confirmer} confirms that it was meant to {action}.",
                 [*basis, *confirm_ids], "recommendation")
    if deed == "terminate":
        recovery = known.evidence("instances.recovery")
        ready = number(recovery.get("recoverable"))
        sentence = ("If the terminations were not authorised, launch replacement EC2 instances "
                    "from the Amazon EBS snapshots or Amazon Machine Images taken before the "
                    "event")
        ids = ["event_name.terminated_or_stopped"]
        described = number(recovery.get("described"))
        if ready is not None and described is not None:
            sentence += f" ({ready} of the {plural(described, 'described instance')} have one)"
            ids.append("instances.recovery")
        text.say(sentence + ".", ids, "recommendation")
    if kind == "user":
        access = known.evidence("principal.access")
        keys = texts(access.get("active_access_keys"))
        shown = f" ({listing(keys[:3])})" if keys else ""
        text.say(f"Revoke the existing access keys of {name}{shown} and rotate its credentials "
                 "while a deeper investigation establishes the true origin of these events.",
                 [*basis, *(["principal.access"] if keys else [])], "recommendation")
    account = clean(purpose.get("account"))
    if not owner and account and purpose.get("listed") is not None:
        text.say(f"Add the account {account} to the account registry (RIPOSTE_ACCOUNTS) with its "
                 "owner, so the next investigation knows whom to ask.", ["account.purpose"],
                 "recommendation")
    human = [q for q in known.open_questions
             if q.get("id") in HUMAN_QUESTIONS and clean(q.get("question"))]
    if human:
        questions = " ".join(clean(q.get("question")) for q in human)
        text.say(f"Before closing, answer the open questions listed with the findings, first of "
                 f"all: {questions}", [], "recommendation")
    return text

