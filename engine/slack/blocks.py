"""What Slack shows of an approval request, in Block Kit: pure, from a :class:`RequestCard`.

A pending request's message has everything an approver needs to decide on a phone: the alert
in one line, the verdict and severity, the narrative's first sentences and the recommendation,
the planned calls grouped by step with counts, the time left, a link to the console's page,
and Approve / Reject buttons carrying the request id and the plan hash. Once the request is
settled (or superseded, cancelled, escalated elsewhere) the same message shows the outcome and
has no buttons.

Alert values are attacker-controlled: each is made one line of inert text (``plain``), escaped
for Slack (``&``, ``<``, ``>``: no mention, no forged link) and every section is ``verbatim``
(no auto-linking of what looks like a URL or a channel).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from actions.notify import plain, slack_escape, slack_text
from engine.modes import rehearsal_mark

APPROVE = "riposte.approve"
REJECT = "riposte.reject"
DECISION_VIEW = "riposte.decision"
REASON_BLOCK = "reason"
REASON_INPUT = "reason"
REASON_LIMIT = 2000  # as the API's DecisionIn.reason
SECTION_LIMIT = 3000  # Block Kit: a section's text
HEADER_LIMIT = 150  # Block Kit: a header's text
NARRATIVE_SENTENCES = 2
TARGETS_SHOWN = 3
RECOMMENDATIONS_SHOWN = 3
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

# What a message shows, by the request's status (and kind of message).
HEADLINES = {
    "pending": "Approval needed",
    "approved": "Approved",
    "rejected": "Rejected",
    "expired": "Expired",
    "superseded": "Superseded: the plan changed",
    "cancelled": "Closed: the run was cancelled",
}


@dataclass(frozen=True)
class Decided:
    """One approver's decision, as the message lists it."""

    actor: str
    decision: str
    reason: str


@dataclass(frozen=True)
class RequestCard:
    """Everything a message shows about one approval request, read at one moment."""

    request_id: str
    run_id: str
    step_id: str
    playbook: str
    mode: str
    status: str
    plan: dict[str, Any]
    plan_hash: str
    required: int
    expires_at: datetime
    on_timeout: str
    alert: dict[str, Any]
    verdict: dict[str, Any]
    decisions: list[Decided] = field(default_factory=list)
    escalated_at: datetime | None = None
    replaced_by: str | None = None  # the request that superseded this one
    replaces: str | None = None  # the request this one superseded
    changes: str | None = None  # how this request's plan differs from the one it replaces
    console_url: str | None = None


def button_value(request_id: str, plan_hash: str) -> str:
    """What a button carries: the request and the plan it shows."""
    return json.dumps({"request": request_id, "plan_hash": plan_hash}, separators=(",", ":"))


def read_button_value(value: str) -> tuple[str, str] | None:
    """The (request id, plan hash) a button carried, or None if it is not one of ours."""
    try:
        data = json.loads(value)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    request, plan_hash = data.get("request"), data.get("plan_hash")
    if not isinstance(request, str) or not isinstance(plan_hash, str):
        return None
    return request, plan_hash


def request_message(
    card: RequestCard, *, now: datetime, escalation: bool = False, note: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The text (notifications, screen readers) and blocks of a message about ``card``.

    ``escalation``: the message asking the escalation group, which keeps its buttons while the
    request waits; the first messages then say where the decision moved. ``note``: said first
    (the plan changed since the message was posted, say).
    """
    status = card.status
    decidable = status == "pending" and (escalation or card.escalated_at is None)
    headline = _headline(card, escalation=escalation)
    title = f"{rehearsal_mark(card.mode)}{headline}: {card.step_id} ({card.playbook})"
    text = slack_text(plain(title, HEADER_LIMIT) + _alert_suffix(card.alert), SECTION_LIMIT)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": plain(title, HEADER_LIMIT)}}
    ]
    if note:
        blocks.append(_section(f":warning: {slack_text(plain(note, 1000), 1100)}"))
    blocks.append(_section(_alert_text(card)))
    if status == "pending":
        blocks += _briefing_blocks(card)
    blocks += _plan_blocks(card)
    blocks.append(_context(_standing(card, now=now, escalation=escalation)))
    if decidable:
        blocks.append({
            "type": "actions",
            "block_id": "riposte.decide",
            "elements": [
                _button("Approve", APPROVE, card, style="primary"),
                _button("Reject", REJECT, card, style="danger"),
            ],
        })
    return text, blocks


def _headline(card: RequestCard, *, escalation: bool) -> str:
    if card.status == "pending" and card.escalated_at is not None:
        return "ESCALATED: approval needed" if escalation else "Escalated, still waiting"
    return HEADLINES.get(card.status, card.status.capitalize())


def _alert_suffix(alert: dict[str, Any]) -> str:
    title = plain(alert.get("title"), 200)
    return f" - {title}" if title else ""


def _alert_text(card: RequestCard) -> str:
    alert = card.alert
    label = plain(alert.get("severity_label"), 20)
    line = f"*Alert:* {_s(alert.get('title'))}" + (f" [{_s(label)}]" if label else "")
    principal = alert.get("principal") or {}
    who = principal.get("arn") or principal.get("name") if isinstance(principal, dict) else None
    where = " ".join(plain(alert.get(key), 64) for key in ("account", "region") if alert.get(key))
    parts = [line]
    if who:
        parts.append(f"*Principal:* {_s(who)}")
    if where:
        parts.append(f"*Account:* {slack_escape(where)}")
    verdict = card.verdict
    if verdict:
        unusual = verdict.get("unusual")
        said = "unusual" if unusual else ("usual" if unusual is False else "not judged")
        reasons = ", ".join(plain(r, 60) for r in verdict.get("reasons") or [])
        severity = plain(verdict.get("severity"), 20)
        parts.append(f"*Verdict:* {said}" + (f" ({slack_escape(reasons)})" if reasons else "")
                     + (f"; severity {slack_escape(severity)}" if severity else ""))
    return "\n".join(parts)


def _briefing_blocks(card: RequestCard) -> list[dict[str, Any]]:
    plan = card.plan
    lines = []
    if plan.get("reason"):
        lines.append(f"*Why:* {_s(plan['reason'], 500)}")
    briefing = plan.get("briefing") or {}
    narrative = plain(briefing.get("narrative"), 2000)
    if narrative:
        first = " ".join(_SENTENCE_END.split(narrative)[:NARRATIVE_SENTENCES])
        lines.append(f"*What happened:* {slack_escape(first[:800])}")
    recommendation = briefing.get("recommendation") or []
    shown = recommendation if isinstance(recommendation, list) else [recommendation]
    for line in shown[:RECOMMENDATIONS_SHOWN]:
        lines.append(f"*Recommended:* {_s(line, 300)}")
    widened = plan.get("widened") or {}
    if widened:
        added, gone = widened.get("added") or [], widened.get("no_longer") or []
        lines.append(f"*Replaces request {_s(widened.get('replaces'))}:* the run judged its "
                     f"burst again with the alerts that arrived since: {len(added)} call(s) "
                     f"added, {len(gone)} no longer made.")
    elif card.replaces:
        lines.append(f"*Replaces request {_s(card.replaces)}:* its plan changed before it was "
                     f"decided ({_s(card.changes or 'the plan changed', 600)}).")
    return [_section(slack_text("\n".join(lines), SECTION_LIMIT))] if lines else []


def _plan_blocks(card: RequestCard) -> list[dict[str, Any]]:
    """Each step of the plan: its action and its calls grouped by operation, with counts."""
    plan = card.plan
    parts = [(plan, False), *((sub, True) for sub in plan.get("covers") or [])]
    lines = []
    total = 0
    for part, covered in parts:
        calls = [call for calls in part.get("calls") or [] for call in calls]
        total += len(calls)
        how = "then, under this approval, " if covered else ""
        line = f"*{how}{_s(part.get('step'))}* `{_s(part.get('action'))}`"
        if part.get("unplannable"):
            line += f": cannot be planned now ({_s(part['unplannable'], 200)}), no call"
        elif not calls:
            line += ": no AWS call"
        else:
            line += "".join(f"\n  • {group}" for group in _groups(calls))
        lines.append(line)
    heading = f"*Planned calls ({total}):*" if total else "*Plan:*"
    return [_section(slack_text(heading + "\n" + "\n".join(lines), SECTION_LIMIT))]


def _groups(calls: list[dict[str, Any]]) -> list[str]:
    counts: Counter[str] = Counter()
    targets: dict[str, list[str]] = {}
    for call in calls:
        name = f"{plain(call.get('service'), 40)}:{plain(call.get('operation'), 80)}"
        counts[name] += 1
        target = plain(call.get("target"), 120)
        if target and target not in targets.setdefault(name, []):
            targets[name].append(target)
    said = []
    for name, count in counts.items():
        on = targets.get(name) or []
        where = ", ".join(on[:TARGETS_SHOWN]) + (f" and {len(on) - TARGETS_SHOWN} more"
                                                 if len(on) > TARGETS_SHOWN else "")
        said.append(f"{slack_escape(name)} × {count}" + (f" on {slack_escape(where)}"
                                                         if where else ""))
    return said


def _standing(card: RequestCard, *, now: datetime, escalation: bool) -> str:
    """Approvals so far, time left, the hash and how else to decide; or who decided."""
    approvals = [d for d in card.decisions if d.decision == "approve"]
    said = []
    for decided in card.decisions:
        verb = "approved" if decided.decision == "approve" else "rejected"
        said.append(f"{_s(decided.actor, 80)} {verb}: {_s(decided.reason, 300)}")
    lines = []
    if card.status == "pending":
        then = "approved" if card.on_timeout == "approve" else "rejected"
        lines.append(f"Approvals: {len(approvals)} of {card.required} · "
                     f"{_time_left(card.expires_at, now, then=then)}")
        if card.escalated_at is not None and not escalation:
            lines.append(f"Escalated at {card.escalated_at:%H:%M} UTC: decide in the "
                         "escalation message or in the console.")
    elif card.status == "expired":
        lines.append(f"Nobody decided before {card.expires_at:%Y-%m-%d %H:%M} UTC: the run "
                     "ended without the step.")
    elif card.status == "approved" and not approvals:
        lines.append("Approved when it expired: the playbook says on_timeout: approve.")
    elif card.status == "superseded" and card.replaced_by:
        lines.append(f"Replaced by request {_s(card.replaced_by)}, which shows the new plan.")
    lines += said
    lines.append(f"Request `{_s(card.request_id)}` · plan hash `{_s(card.plan_hash)}`")
    if card.status == "pending":
        lines.append(f"CLI: `riposte approvals approve {_s(card.request_id)} --plan-hash "
                     f"{_s(card.plan_hash)} --reason '...'`")
    if card.console_url:
        lines.append(f"<{card.console_url}|Review in Riposte>")
    return "\n".join(lines)[:SECTION_LIMIT]  # each part is escaped already


def _time_left(expires_at: datetime, now: datetime, *, then: str) -> str:
    seconds = int((expires_at - now).total_seconds())
    if seconds <= 0:
        return f"expiring now, then {then}"
    hours, rest = divmod(seconds, 3600)
    minutes = max(1, rest // 60) if not hours else rest // 60
    left = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return f"{left} left (expires {expires_at:%H:%M} UTC, then {then})"


def decision_view(
    card: RequestCard, decision: str, *, channel: str, ts: str
) -> dict[str, Any]:
    """The modal that asks for the reason; its submission decides on the plan it names."""
    calls = sum(len(calls) for calls in card.plan.get("calls") or []) + sum(
        len(calls) for sub in card.plan.get("covers") or [] for calls in sub.get("calls") or [])
    verb = "approve" if decision == "approve" else "reject"
    summary = (f"You {verb} step *{_s(card.step_id)}* of run `{_s(card.run_id)}` "
               f"({_s(card.playbook)}): {calls} planned call(s), plan hash "
               f"`{_s(card.plan_hash[:12])}…`. The reason is kept with the decision and audited.")
    if card.mode != "live":
        summary = f"{slack_escape(rehearsal_mark(card.mode))}{summary}"
    metadata = {"request": card.request_id, "plan_hash": card.plan_hash, "decision": decision,
                "channel": channel, "ts": ts}
    return {
        "type": "modal",
        "callback_id": DECISION_VIEW,
        "private_metadata": json.dumps(metadata, separators=(",", ":")),
        "title": {"type": "plain_text", "text": f"{verb.capitalize()} request"},
        "submit": {"type": "plain_text", "text": verb.capitalize()},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section(slack_text(summary, SECTION_LIMIT)),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {"type": "plain_text_input", "action_id": REASON_INPUT,
                            "multiline": True, "min_length": 1, "max_length": REASON_LIMIT},
            },
        ],
    }


def notice_view(title: str, text: str) -> dict[str, Any]:
    """A modal that only says something (no submit): the plan changed meanwhile, say."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": plain(title, 24)},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [_section(slack_text(plain(text, 2000), SECTION_LIMIT))],
    }


def text_blocks(text: str) -> list[dict[str, Any]]:
    """A multi-line notice (a run's failure or outcome) as sections, each line inert."""
    lines = [slack_escape(plain(line, 1000)) for line in text.splitlines()]
    blocks, chunk = [], ""
    for line in lines:
        if len(chunk) + len(line) + 1 > SECTION_LIMIT:
            blocks.append(_section(chunk))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        blocks.append(_section(chunk))
    return blocks[:50]


def _button(label: str, action_id: str, card: RequestCard, *, style: str) -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "style": style,
            "text": {"type": "plain_text", "text": label},
            "value": button_value(card.request_id, card.plan_hash)}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text or " ", "verbatim": True}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text, "verbatim": True}]}


def _s(value: object, limit: int = 200) -> str:
    """An attacker-controllable value as inert, escaped text."""
    return slack_escape(plain(value, limit))
