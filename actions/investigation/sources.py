"""What an assessment reads: the artifacts and the enrichment outputs a playbook passed in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from actions.investigation.artifacts import Artifacts
from actions.investigation.catalogue import Assessment, clean, mapping, parse_time

HISTORY_ACTION = "aws.cloudtrail.principal_history"
PRINCIPAL_ACTION = "aws.iam.describe_principal"
INSTANCES_ACTION = "aws.ec2.describe_instances"
# The questions answered (or left open) from the principal's CloudTrail history: when one of
# its sources could not be read, their answers may miss that source's events.
FROM_HISTORY = (
    "event_time.off_hours",
    "event_time.seen_at_this_hour",
    "event_name.cadence",
    "source_ip.first_seen",
    "source_ip.location",
    "user_agent.seen_before",
    "principal.recent_changes",
    "principal.sign_in_failures",
    "principal.mfa",
    "instances.touched_before",
    "instances.stopped_before",
    "instances.recent_changes",
)


@dataclass(frozen=True)
class Sources:
    """The artifacts, and each enrichment output (None: the playbook gave none)."""

    artifacts: Artifacts
    history: dict[str, Any] | None = None
    principal: dict[str, Any] | None = None
    instances: dict[str, Any] | None = None
    # geo.lookup_ip answers by address, and why addresses could not be looked up (if so).
    geo: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    geo_error: str | None = None
    usual_countries: list[str] | None = None
    accounts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def window_start(self) -> datetime | None:
        return parse_time(mapping(mapping(self.history).get("window")).get("start"))

    @property
    def window_end(self) -> datetime | None:
        return parse_time(mapping(mapping(self.history).get("window")).get("end"))

    @property
    def window_days(self) -> float | None:
        """How many days of history were read (7 by default)."""
        start, end = self.window_start, self.window_end
        if start is None or end is None:
            return None
        return round((end - start).total_seconds() / 86_400, 2)

    @property
    def event_time(self) -> datetime | None:
        """The time judged: the first triggering event, else the one the history judged."""
        judged = parse_time(mapping(mapping(self.history).get("alert_event")).get("time"))
        return self.artifacts.first_time or judged

    @property
    def unread_sources(self) -> dict[str, str]:
        """The CloudTrail sources the history could not read, each with why (the history's
        ``failed``); none when every source was read or there is no history."""
        failed = mapping(mapping(self.history).get("failed"))
        return {clean(name): clean(why) for name, why in failed.items()}

    def no_history(self) -> str:
        return f"no principal history was given (the output of {HISTORY_ACTION})"

    def no_principal(self) -> str:
        return f"no description of the principal was given (the output of {PRINCIPAL_ACTION})"

    def no_instances(self) -> str:
        return f"no description of the instances was given (the output of {INSTANCES_ACTION})"


def days_text(days: float | None) -> str:
    """``7 days`` (as a window's length reads in an answer)."""
    if days is None:
        return "the window"
    shown = f"{days:g}"
    return f"{shown} day" if shown == "1" else f"{shown} days"


def say_unread_sources(found: Assessment, src: Sources) -> None:
    """Say, in each answer drawn from the history, which CloudTrail sources it could not read.

    The history is read from what the other sources gave; an analyst must still know that,
    e.g., the attacker's latest sign-ins may be missing when ``ingested`` was not read. The
    evidence gets ``unread_sources`` (source: why), the answer or the reason a sentence.
    """
    unread = src.unread_sources
    if not unread:
        return
    said = (f"the CloudTrail source{'s' if len(unread) > 1 else ''} {', '.join(unread)} "
            "could not be read")
    for finding in found.findings:
        if finding["id"] in FROM_HISTORY:
            finding["evidence"]["unread_sources"] = unread
            finding["answer"] += f" The history may be incomplete: {said}."
    for question in found.open_questions:
        if question["id"] in FROM_HISTORY:
            question["unread_sources"] = unread
            question["why_not_answered"] += f"; {said}"
