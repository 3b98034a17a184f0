"""A run and its investigation as people read it: verdict, findings, open questions,
narrative, recommendation, steps and approvals, as lines wrapped at 100 columns.

``riposte runs show`` and the demo print these lines; like ``engine.render``, this is pure
text: alert data comes back as it is, and the surface showing it makes it safe.
"""

from __future__ import annotations

import textwrap
from typing import Any

from engine.modes import rehearsal_mark
from engine.render import parsed_time, stamp

WIDTH = 100
EVIDENCE_CHARS = 300
LISTED_ITEMS = 3


def describe_run(run: dict[str, Any]) -> list[str]:
    """Return the lines ``riposte runs show`` prints for a run as ``GET /v1/runs/{id}``
    answers it."""
    shown_as = run.get("outcome") or run["status"]  # partial: succeeded, work left undone
    lines = [
        _flat(f"{rehearsal_mark(run['mode'])}run {run['id']}: {shown_as} "
                  f"(playbook {run['playbook']}, {run['mode']})"),
        "  " + _flat(f"alert {run['alert_id']}, started by {run['started_by']}"
                         + (f", rehearsing run {run['rehearses']}" if run.get("rehearses")
                            else "")),
        "  " + _flat(f"created {stamp_of(run['created_at'])}"
                         + (f", finished {stamp_of(run['finished_at'])}"
                            if run.get("finished_at") else "")),
    ]
    if run.get("error"):
        lines.append(f"  error: {_flat(run['error'])}")
    left_undone = run.get("left_undone") or []
    if left_undone:
        lines.append(f"left undone ({len(left_undone)}):")
    for item in left_undone:
        lines += _wrapped(f"{item['step']}: {item['target']}: {item['reason']}", "  ", "    ")
    lines += _verdict(run.get("verdict"))
    findings = run.get("findings") or []
    lines.append(f"findings ({len(findings)}):" if findings else "findings: none")
    for finding in findings:
        lines += _finding(finding)
    questions = run.get("open_questions") or []
    lines.append(f"open questions ({len(questions)}):" if questions else "open questions: none")
    for question in questions:
        lines += _wrapped(f"[{question.get('id')}] {question.get('question')}", "  ", "    ")
        lines += _wrapped(f"why not answered: {question.get('why_not_answered')}", "    ")
    narrative = run.get("narrative")
    lines.append("narrative:" if narrative else "narrative: none")
    for paragraph in str(narrative or "").split("\n\n"):
        if paragraph.strip():
            lines += _wrapped(paragraph, "  ")
    recommendation = run.get("recommendation") or []
    lines.append("recommendation:" if recommendation else "recommendation: none")
    for item in recommendation:
        lines += _wrapped(str(item), "  - ", "    ")
    steps = run.get("steps") or []
    lines.append("steps:" if steps else "steps: none yet")
    for step in steps:
        undone = _left_undone(step.get("output"))
        lines.append("  " + _flat(f"{step['step_id']}: {step['action']} {step['status']}"
                                      + (f", left {undone} undone" if undone else "")
                                      + f" (attempts {step['attempts']})"))
    for approval in run.get("approvals") or []:
        lines.append(f"approval {approval['id']} of step {approval['step_id']}: "
                     f"{approval['status']} (riposte approvals show {approval['id']})")
    return lines


def _left_undone(output: Any) -> int:
    """Count the things a step's output says it left undone (each item's, for ``for_each``)."""
    outputs = output if isinstance(output, list) else [output]
    return sum(len(o.get("left_undone") or []) for o in outputs if isinstance(o, dict))


def _verdict(verdict: Any) -> list[str]:
    if not isinstance(verdict, dict):
        return ["verdict: none"]
    flag = verdict.get("unusual")
    unusual = "unusual" if flag is True else "not unusual" if flag is False else "undetermined"
    who = " ".join(str(v) for v in (verdict.get("principal_kind"), verdict.get("principal")) if v)
    lines = [_flat(f"verdict: {unusual}, severity {verdict.get('severity', '?')}"
                       + (f", principal {who}" if who else ""))]
    if verdict.get("reasons"):
        lines.append("  " + _flat(f"reasons: {', '.join(map(str, verdict['reasons']))}"))
    if verdict.get("baseline") == "missing":
        lines.append("  no baseline: the principal's usual activity could not be compared")
    return lines


def _finding(finding: dict[str, Any]) -> list[str]:
    signal = f", {finding['signal']}" if finding.get("signal") else ""
    lines = _wrapped(f"[{finding.get('id')}] {finding.get('question')}", "  ", "    ")
    lines += _wrapped(f"→ {finding.get('answer')} (confidence {finding.get('confidence')}"
                      f"{signal})", "    ", "      ")
    summary = evidence_summary(finding.get("evidence"))
    if summary:
        lines += _wrapped(f"evidence: {summary}", "    ", "      ")
    return lines


def evidence_summary(evidence: Any) -> str:
    """Say the evidence in one line: ``key=value`` pairs, long lists and objects shortened."""
    if not isinstance(evidence, dict):
        return ""
    parts = []
    for key, value in evidence.items():
        if value is None or value == [] or value == {}:
            continue
        parts.append(f"{key}={_brief(value)}")
    text = _flat(", ".join(parts))
    return text if len(text) <= EVIDENCE_CHARS else text[: EVIDENCE_CHARS - 1] + "…"


def _brief(value: Any) -> str:
    if isinstance(value, list):
        shown = ", ".join(_brief(v) for v in value[:LISTED_ITEMS])
        more = f", +{len(value) - LISTED_ITEMS}" if len(value) > LISTED_ITEMS else ""
        return f"[{shown}{more}]"
    if isinstance(value, dict):
        # Scalars first; a nested value shows as its key only.
        items = sorted(value.items(), key=lambda item: isinstance(item[1], dict | list))
        entries = [f"{k}: {'…' if isinstance(v, dict | list) else v}" for k, v in items]
        hidden = len(entries) - LISTED_ITEMS
        more = f", +{hidden}" if hidden > 0 else ""
        return "{" + ", ".join(entries[:LISTED_ITEMS]) + more + "}"
    return str(value)


def _wrapped(text: str, first: str, rest: str | None = None) -> list[str]:
    return textwrap.wrap(
        _flat(" ".join(str(text).split())),
        width=WIDTH,
        initial_indent=first,
        subsequent_indent=rest if rest is not None else first,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [first.rstrip()]


def _flat(text: Any) -> str:
    return " ".join(str(text).split())


def stamp_of(text: Any) -> str:
    """Write an ISO time as the API writes it as ``YYYY-MM-DD HH:MM:SS UTC``."""
    moment = parsed_time(text)
    return f"{stamp(moment)} UTC" if moment else str(text)
