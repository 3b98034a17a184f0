"""The whole assessment, pure: findings, open questions and the verdict (the seed's steps 2-4).

**Verdict.** The activity is *unusual* when a finding says so (``signal: unusual``: outside the
usual hours, from outside the usual countries, without MFA, after failed sign-ins, just after a
change to the principal) — or when there is no baseline to compare it with (no history, or no
earlier activity), since nothing then shows it is usual. *Notable* findings (a new address or
client, a first termination) do not make it unusual alone, but raise the severity of one that
is. The severity is scored: 1 for a destructive event (a termination), 1 per unusual finding,
1 with no baseline, 1 when notable findings back unusual ones; 0 INFORMATIONAL, 1 LOW,
2 MEDIUM, 3 HIGH, 4 and above CRITICAL — and never below the alert source's own rating (a
GuardDuty HIGH stays HIGH). So a termination by a principal acting as it always does (daytime,
usual country, MFA) is LOW.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actions.investigation import activity, hours, identity, instances, location
from actions.investigation.artifacts import DESTRUCTIVE_EVENTS
from actions.investigation.catalogue import Assessment
from actions.investigation.sources import Sources, say_unread_sources

SEVERITIES = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
QUESTION_ORDER = (
    activity.what_happened,
    hours.off_hours,
    hours.seen_at_this_hour,
    activity.terminated_or_stopped,
    activity.cadence,
    activity.address_first_seen,
    activity.other_principals,
    location.location,
    activity.client_seen_before,
    identity.access,
    identity.recent_changes,
    identity.sign_in_failures,
    identity.mfa,
    identity.account_purpose,
    instances.launched,
    instances.touched_before,
    instances.stopped_before,
    instances.workload,
    instances.recent_changes,
    instances.recovery,
)


def assess(src: Sources) -> dict[str, Any]:
    """Answer every question the sources can answer; leave the others open, saying why."""
    found = Assessment()
    for question in QUESTION_ORDER:
        question(found, src)
    say_unread_sources(found, src)
    who = src.artifacts.name or "the principal"
    found.unanswered(
        "source_ip.reputation",
        "Riposte has no threat-intelligence feed: vet "
        f"{', '.join(src.artifacts.source_ips) or 'the address'} in the OSINT sources the team "
        "uses (e.g. VirusTotal, AbuseIPDB, SANS ISC)",
    )
    found.unanswered(
        "principal.threat_history",
        f"Riposte does not search other detections for {who}: check the SIEM and the GuardDuty "
        "and Security Hub findings of the account",
    )
    owner = _owner(src)
    found.unanswered(
        "principal.authorised",
        f"only a person can confirm it: {who}'s manager"
        + (f" or the account owner ({owner})" if owner else " or the account's owner"),
    )
    return {
        "artifacts": src.artifacts.as_dict(),
        "findings": found.findings,
        "open_questions": found.open_questions,
        "verdict": verdict(found, src),
    }


def verdict(found: Assessment, src: Sources) -> dict[str, Any]:
    """Unusual or not, why (finding ids), how severe, and what kind of principal to contain."""
    artifacts = src.artifacts
    kind = artifacts.principal_kind
    described = (src.principal or {}).get("type")
    if kind == "unknown" and described in ("user", "role"):
        kind = str(described)  # the alert did not say; IAM did
    reasons = [f["id"] for f in found.findings if f.get("signal") == "unusual"]
    notable = [f["id"] for f in found.findings if f.get("signal") == "notable"]
    normal = [f["id"] for f in found.findings if f.get("signal") == "normal"]
    hours = found.answered("event_time.off_hours")
    baseline = hours is not None and hours["evidence"].get("usual_window") is not None
    destructive = any(name in DESTRUCTIVE_EVENTS for name in artifacts.event_names)
    score = int(destructive) + len(reasons) + int(not baseline) + int(bool(reasons and notable))
    # Never below what the alert's source said (GuardDuty rates its findings; CloudTrail not).
    labels = [*(e.severity_label for e in artifacts.events),
              *(a.severity_label for a in artifacts.alarms)]
    rated = [SEVERITIES.index(label) for label in labels if label in SEVERITIES]
    score = max([score, *rated])
    return {
        "unusual": bool(reasons) or not baseline,
        "reasons": reasons,
        "notable": notable,
        "normal": normal,
        "baseline": "compared" if baseline else "missing",
        "destructive": destructive,
        "severity": SEVERITIES[min(score, len(SEVERITIES) - 1)],
        "principal_kind": kind,
        "principal": artifacts.name or (src.principal or {}).get("name"),
    }


def _owner(src: Sources) -> str | None:
    entry = src.accounts.get(src.artifacts.account or "")
    owner = entry.get("owner") if isinstance(entry, Mapping) else None
    return str(owner) if owner else None
