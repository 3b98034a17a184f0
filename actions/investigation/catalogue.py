"""The analyst's questions (the seed's step 3), and how an answer to one is recorded.

Every question has a stable id (``event_time.off_hours``) that findings, open questions, the
verdict's reasons and the narrative's sentences refer to. A question is either answered (a
*finding*: answer, evidence, confidence, and whether it marks the activity as unusual) or left
open for the analyst with the reason why; it is never dropped.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from actions.aws.ec2_lookup import moment

Confidence = Literal["high", "medium", "low"]
# What a finding says about the activity: ``unusual`` is a reason for the verdict, ``notable``
# supports one without being one alone, ``normal`` matches the principal's usual pattern.
Signal = Literal["unusual", "notable", "normal"]

QUESTIONS: dict[str, tuple[str, str]] = {
    "event.what_happened": ("event", "What happened, when, by whom and from where?"),
    "event_time.off_hours": (
        "event_time", "Is the activity occurring off-hours for this principal?"
    ),
    "event_time.seen_at_this_hour": (
        "event_time", "Has this principal been active around this time of day before?"
    ),
    "event_name.terminated_or_stopped": (
        "event_name", "Were the instances shut down or were they terminated?"
    ),
    "event_name.cadence": (
        "event_name", "What is this principal's normal cadence for these events?"
    ),
    "source_ip.first_seen": ("source_ip", "When did activity from this IP start?"),
    "source_ip.other_principals": (
        "source_ip", "Who else within the organisation is communicating from this IP?"
    ),
    "source_ip.location": (
        "source_ip",
        "Where is this IP and who routes it; is that outside the countries this principal "
        "normally comes from?",
    ),
    "source_ip.reputation": (
        "source_ip", "What does threat intelligence (OSINT) say about this IP?"
    ),
    "user_agent.seen_before": (
        "user_agent", "Do we expect actions from this client (user agent) for this principal?"
    ),
    "principal.access": (
        "principal", "What does the principal have access to, and what is its role?"
    ),
    "principal.recent_changes": (
        "principal", "Were the principal's privileges, policies or credentials changed recently?"
    ),
    "principal.sign_in_failures": (
        "principal", "Has the principal had authentication failures before the event?"
    ),
    "principal.mfa": ("principal", "Was MFA used?"),
    "principal.threat_history": (
        "principal", "Has this principal been associated with other threat-related activity?"
    ),
    "principal.authorised": (
        "principal", "Was the principal authorised to do this (confirmed by their manager)?"
    ),
    "account.purpose": (
        "account", "What is the business purpose of this AWS account, and does the action align?"
    ),
    "instances.launched": ("instance_ids", "When were these instances first stood up?"),
    "instances.touched_before": (
        "instance_ids", "Has the principal interacted with these instances before the event?"
    ),
    "instances.stopped_before": (
        "instance_ids", "Have these instances been stopped or terminated before, and when?"
    ),
    "instances.workload": ("instance_ids", "What kind of resource runs on these instances?"),
    "instances.recent_changes": ("instance_ids", "Were there recent changes to these instances?"),
    "instances.recovery": (
        "instance_ids", "Can the instances be rebuilt from backups taken before the event?"
    ),
}

LONGEST_TEXT = 200  # characters kept of any text taken from an alert or an AWS answer


def clean(value: object, limit: int = LONGEST_TEXT) -> str:
    """Plain one-line text: control and format characters (bidi overrides…) removed, trimmed.

    Alert fields are written by whoever made the call (a user agent, a tag, a name): they are
    data, shown as text, never rendered as templates.
    """
    text = "" if value is None else str(value)
    kept = "".join(
        " " if char in "\t\n\r" else char
        for char in text
        if char in "\t\n\r" or unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co")
    )
    shown = " ".join(kept.split())
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


# An ISO-8601 time (``Z`` or an offset; naive is UTC) as an aware datetime, else None.
parse_time = moment


def stamp(moment: datetime | None) -> str | None:
    """A time as evidence shows it: ``2020-11-06T03:21:39Z``."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shown_time(moment: datetime) -> str:
    """A time as an answer says it: ``2020-11-06 03:21:39 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass
class Assessment:
    """The findings and open questions gathered so far, in question order."""

    findings: list[dict[str, Any]] = field(default_factory=list)
    open_questions: list[dict[str, Any]] = field(default_factory=list)

    def found(
        self,
        question_id: str,
        answer: str,
        evidence: dict[str, Any],
        confidence: Confidence,
        signal: Signal | None = None,
    ) -> None:
        """Record the answer to a question with the evidence behind it."""
        artifact, question = QUESTIONS[question_id]
        self.findings.append(
            {
                "id": question_id,
                "artifact": artifact,
                "question": question,
                "answer": answer,
                "evidence": evidence,
                "confidence": confidence,
                "signal": signal,
            }
        )

    def unanswered(self, question_id: str, why: str) -> None:
        """Leave a question open for the analyst, saying why it could not be answered."""
        artifact, question = QUESTIONS[question_id]
        self.open_questions.append(
            {
                "id": question_id,
                "artifact": artifact,
                "question": question,
                "why_not_answered": why,
            }
        )

    def answered(self, question_id: str) -> dict[str, Any] | None:
        """The finding that answers a question, if one was recorded."""
        return next((f for f in self.findings if f["id"] == question_id), None)


def mapping(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (enrichment outputs are read loosely:
    a playbook may pass anything)."""
    return dict(value) if isinstance(value, dict) else {}


def rows(value: object) -> list[dict[str, Any]]:
    """The JSON objects of a list (anything else: none)."""
    return [dict(row) for row in value if isinstance(row, dict)] if isinstance(value, list) else []


def count(value: object) -> int | None:
    """A count from an enrichment output (a bool is not one)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def plural(number: int, noun: str, many: str | None = None) -> str:
    """``1 instance``, ``2 instances``."""
    return f"{number} {noun if number == 1 else many or noun + 's'}"
