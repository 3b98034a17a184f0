"""``riposte runs show``: a run's investigation as the HTTP API gives it, for a terminal.

It prints the verdict, every finding (question → answer, confidence, evidence in brief), the
open questions with why they are open, the narrative and the recommendation, then the steps.
Alert data reaches the terminal only as printable text (no control or bidi characters).
"""

from __future__ import annotations

import json
import textwrap
from typing import Annotated, Any

import typer

from engine.modes import mode_label, rehearsal_mark

# The API client of `riposte approvals`: one way to reach the API.
from riposte.approvals_cli import TokenOption, api_client, quoted
from riposte.terminal import one_line, print_table, shown, when

runs_app = typer.Typer(
    help="Runs and their investigation, through the HTTP API at RIPOSTE_API_URL with "
    "RIPOSTE_TOKEN.",
    no_args_is_help=True,
)

RunId = Annotated[str, typer.Argument(help="The run's id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the run as the API answers it.")]
WIDTH = 100
EVIDENCE_CHARS = 300
LISTED_ITEMS = 3


@runs_app.command("show")
def show(run_id: RunId, as_json: AsJson = False, token: TokenOption = None) -> None:
    """Show a run: its verdict, findings, open questions, narrative, recommendation and steps."""
    with api_client(token) as api:
        run = api.get(f"/v1/runs/{quoted(run_id)}")
    if as_json:
        typer.echo(json.dumps(run, indent=2, ensure_ascii=True))
        return
    for line in describe_run(run):
        typer.echo(line)


@runs_app.command("list")
def list_runs(
    status: Annotated[str | None, typer.Option(help="Only runs of this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
    token: TokenOption = None,
) -> None:
    """List runs, newest first: id, outcome (partial: succeeded, work left undone), playbook."""
    query = f"limit={limit}" + (f"&status={quoted(status)}" if status else "")
    with api_client(token) as api:
        runs = api.get(f"/v1/runs?{query}")["runs"]
    if not runs:
        typer.echo("no run" + (f" is {one_line(status)}" if status else ""))
        return
    rows = [("ID", "OUTCOME", "PLAYBOOK", "MODE", "CREATED", "LEFT UNDONE")] + [
        (run["id"], one_line(run.get("outcome") or run["status"]), one_line(run["playbook"]),
         one_line(mode_label(run["mode"])), when(run["created_at"]),
         str(len(run.get("left_undone") or [])))
        for run in runs
    ]
    print_table(rows)


@runs_app.command("rehearse")
def rehearse(run_id: RunId, token: TokenOption = None) -> None:
    """Rehearse a run: a dry-run copy on every alert it sees; nothing will change in AWS."""
    with api_client(token) as api:
        rehearsal = api.post(f"/v1/runs/{quoted(run_id)}/rehearse", {})
    typer.echo(one_line(
        f"{rehearsal_mark(rehearsal['mode'])}run {rehearsal['id']} rehearses run {run_id} on "
        f"{len(rehearsal['alert_ids'])} alert(s) with playbook {rehearsal['playbook']}: "
        f"{rehearsal['status']}"
    ))
    typer.echo(f"Follow it: riposte runs show {rehearsal['id']}")


def describe_run(run: dict[str, Any]) -> list[str]:
    """The lines ``riposte runs show`` prints for a run as ``GET /v1/runs/{id}`` answers it."""
    shown_as = run.get("outcome") or run["status"]  # partial: succeeded, work left undone
    lines = [
        one_line(f"{rehearsal_mark(run['mode'])}run {run['id']}: {shown_as} "
                  f"(playbook {run['playbook']}, {run['mode']})"),
        "  " + one_line(f"alert {run['alert_id']}, started by {run['started_by']}"
                         + (f", rehearsing run {run['rehearses']}" if run.get("rehearses")
                            else "")),
        "  " + one_line(f"created {when(run['created_at'])}"
                         + (f", finished {when(run['finished_at'])}"
                            if run.get("finished_at") else "")),
    ]
    if run.get("error"):
        lines.append(f"  error: {one_line(run['error'])}")
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
        lines.append("  " + one_line(f"{step['step_id']}: {step['action']} {step['status']}"
                                      + (f", left {undone} undone" if undone else "")
                                      + f" (attempts {step['attempts']})"))
    return lines


def _left_undone(output: Any) -> int:
    """How many things a step's output says it left undone (each item's, for ``for_each``)."""
    outputs = output if isinstance(output, list) else [output]
    return sum(len(o.get("left_undone") or []) for o in outputs if isinstance(o, dict))


def _verdict(verdict: Any) -> list[str]:
    if not isinstance(verdict, dict):
        return ["verdict: none"]
    flag = verdict.get("unusual")
    unusual = "unusual" if flag is True else "not unusual" if flag is False else "undetermined"
    who = " ".join(str(v) for v in (verdict.get("principal_kind"), verdict.get("principal")) if v)
    lines = [one_line(f"verdict: {unusual}, severity {verdict.get('severity', '?')}"
                       + (f", principal {who}" if who else ""))]
    if verdict.get("reasons"):
        lines.append("  " + one_line(f"reasons: {', '.join(map(str, verdict['reasons']))}"))
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
    """The evidence in one line: ``key=value`` pairs, long lists and objects shortened."""
    if not isinstance(evidence, dict):
        return ""
    parts = []
    for key, value in evidence.items():
        if value is None or value == [] or value == {}:
            continue
        parts.append(f"{key}={_brief(value)}")
    text = one_line(", ".join(parts))
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
        shown(" ".join(str(text).split())),
        width=WIDTH,
        initial_indent=first,
        subsequent_indent=rest if rest is not None else first,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [first.rstrip()]
