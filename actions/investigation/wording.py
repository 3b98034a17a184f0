"""What the narrative and the recommendation share: findings by id, and how values read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from actions.investigation.catalogue import clean, count, mapping, parse_time, rows

# How an alarm's ComparisonOperator reads before its threshold.
COMPARISON_WORDS = {
    "GreaterThanOrEqualToThreshold": "alarming at or above",
    "GreaterThanThreshold": "alarming above",
    "LessThanThreshold": "alarming below",
    "LessThanOrEqualToThreshold": "alarming at or below",
}
KIND_WORDS = {
    "user": "the user",
    "role": "the role",
    "root": "the root user",
    "federated": "the federated user",
    "identity-center": "the Identity Center user",
    "service": "the AWS service",
    "account": "the account",
}


@dataclass
class Findings:
    """The findings by id, read loosely: a playbook passes them in, they may be partial."""

    by_id: dict[str, dict[str, Any]]
    open_questions: list[dict[str, Any]]
    verdict: dict[str, Any]

    @classmethod
    def of(cls, findings: object, open_questions: object, verdict: object) -> Findings:
        by_id = {}
        for finding in rows(findings):
            finding_id = clean(finding.get("id"))
            if finding_id and finding_id not in by_id:
                by_id[finding_id] = finding
        return cls(by_id, rows(open_questions), mapping(verdict))

    def get(self, finding_id: str) -> dict[str, Any] | None:
        return self.by_id.get(finding_id)

    def evidence(self, finding_id: str) -> dict[str, Any]:
        return mapping(mapping(self.by_id.get(finding_id)).get("evidence"))

    def signal(self, finding_id: str) -> str | None:
        signal = mapping(self.by_id.get(finding_id)).get("signal")
        return signal if isinstance(signal, str) else None

    def verdict_ids(self, key: str) -> list[str]:
        """The finding ids the verdict lists under ``key`` that are among the findings."""
        return [i for i in texts(self.verdict.get(key)) if i in self.by_id]

    def principal(self) -> tuple[str | None, str | None]:
        """The principal's name and kind as the findings give them (None: they do not)."""
        what = self.evidence("event.what_happened")
        access = self.evidence("principal.access")
        name = clean(what.get("principal")) or clean(access.get("name")) or None
        kind = clean(what.get("principal_kind")) or clean(access.get("type")) or None
        return name, kind

    def subject(self) -> str:
        """The principal opening a sentence: its name as IAM spells it (``kestrel.ops``, never
        ``Kestrel.ops``), else ``The principal``."""
        return self.principal()[0] or "The principal"

    def who(self) -> str:
        """``the user Roboman1``, or ``the principal`` when no finding names it."""
        name, kind = self.principal()
        if not name:
            return "the principal"
        return f"{KIND_WORDS.get(kind or '', 'the principal')} {name}"


@dataclass
class Text:
    """Sentences, each with the ids of the findings it was written from."""

    sentences: list[dict[str, Any]] = field(default_factory=list)
    # The ids a sentence may name (None: any): a recommendation rests on what was found.
    known: set[str] | None = None

    def say(self, text: str, ids: Iterable[str], part: str = "narrative") -> None:
        """Add a sentence as written: its first letter is never changed here, since a sentence
        may open with a name or an id (``kestrel.ops``, ``i-0abc``) that keeps AWS's spelling;
        one that opens with an English word is written :func:`capitalised`."""
        shown = clean(text, 2000)
        if shown:
            named = [i for i in dict.fromkeys(ids) if self.known is None or i in self.known]
            self.sentences.append({"text": shown, "findings": named, "part": part})


def capitalised(text: str) -> str:
    """``text`` with its first letter upper-case: for a sentence opening with an English word
    (``the CloudWatch alarm …``), never one opening with a name or an id."""
    return text[:1].upper() + text[1:]


def texts(value: object) -> list[str]:
    """The non-empty texts of a list (anything else: none), cleaned."""
    if not isinstance(value, list):
        return []
    return [shown for item in value if isinstance(item, str | int) and (shown := clean(item))]


def day(value: object) -> str | None:
    """``6 November 2020`` from an ISO time; None when it is not one."""
    moment = parse_time(value)
    return None if moment is None else f"{moment.day} {moment:%B %Y}"


def clock(value: object) -> str | None:
    """``03:21:39 UTC`` from an ISO time."""
    moment = parse_time(value)
    return None if moment is None else f"{moment:%H:%M:%S} UTC"


def moment_text(value: object) -> str | None:
    """``6 November 2020 at 03:21:39 UTC``."""
    moment = parse_time(value)
    return None if moment is None else f"{day(value)} at {clock(value)}"


def same_day(first: object, second: object) -> bool:
    a, b = parse_time(first), parse_time(second)
    return a is not None and b is not None and a.date() == b.date()


def number(value: object) -> int | None:
    return count(value)


def listing(values: Iterable[object]) -> str:
    """``a, b and c``."""
    shown = [clean(v) for v in values if clean(v)]
    if len(shown) <= 1:
        return "".join(shown)
    return f"{', '.join(shown[:-1])} and {shown[-1]}"



def alarm_words(alarm: Mapping[str, Any]) -> str:
    """``the CloudWatch alarm X went into ALARM on … (metric M, alarming at or above 20)``.

    From an alarm as the artifacts list it (name, state, time, metrics, threshold, comparison).
    """
    said = f"the CloudWatch alarm {clean(alarm.get('name')) or '(unnamed)'}"
    state = clean(alarm.get("state"))
    said += f" went into {state}" if state else " changed state"
    when = moment_text(alarm.get("time"))
    said += f" on {when}" if when else ""
    measure = [f"metric {listing(texts(alarm.get('metrics')))}"] if texts(alarm.get("metrics")) \
        else []
    threshold = alarm.get("threshold")
    if isinstance(threshold, int | float) and not isinstance(threshold, bool):
        bound = COMPARISON_WORDS.get(clean(alarm.get("comparison")), "threshold")
        measure.append(f"{bound} {threshold:g}")
    return said + (f" ({', '.join(measure)})" if measure else "")


def window_words(value: object) -> str:
    """Write a window's length: ``7 days``, ``1 day``; ``days`` when it is not a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:g} day" if value == 1 else f"{value:g} days"
    return "days"
