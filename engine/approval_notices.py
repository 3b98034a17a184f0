"""Telling approvers: a request opened, or a request waits too long (escalation).

Messages go out through the same registered actions a playbook uses (``aws.sns.publish`` for a
topic ARN, ``notify.webhook`` for a URL), always live: they are Riposte's own messages to its
operators, not changes to the account under investigation, so a dry-run run's approvals are
announced too, their subject and text starting with the rehearsal mark (``engine.modes``). A
target that cannot be reached is audited and never stops the run: the request stays open and
decidable through the API.

Alert values are attacker-controlled; they enter the text as plain text only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.orm import Session

from actions import registry
from actions.base import ActionContext, ActionError, RunEnv
from actions.notify import plain
from core.settings import Settings
from engine.modes import DRY_RUN, rehearsal_mark
from engine.store.models import ApprovalRequest, Run

log = logging.getLogger("riposte.approvals")
MAX_CALLS_SHOWN = 15


@dataclass(frozen=True)
class Notice:
    """What a message about one approval request needs, read while the request is at hand."""

    request_id: str
    run_id: str
    step_id: str
    playbook: str
    mode: str  # live, or dry_run: a rehearsal (engine.modes)
    plan: dict[str, Any]
    plan_hash: str
    required: int
    expires_at: datetime
    escalate_to: list[str]

    @classmethod
    def of(cls, session: Session, request: ApprovalRequest) -> Notice:
        run = session.get(Run, request.run_id)
        assert run is not None
        return cls(
            request_id=request.id, run_id=run.id, step_id=request.step_id,
            playbook=run.playbook, mode=run.mode, plan=request.plan,
            plan_hash=request.plan_hash, required=request.required,
            expires_at=request.expires_at, escalate_to=list(request.escalate_to or []),
        )


def opened(
    notice: Notice, *, alert: Mapping[str, Any], settings: Settings,
    replaces: tuple[str, str] | None = None,
) -> tuple[str, str]:
    """Subject and text announcing a new request (a rehearsal's say so first).

    ``replaces``: the request it superseded because its plan changed, and how it changed.
    """
    subject = (f"{rehearsal_mark(notice.mode)}Riposte: approval needed for {notice.step_id} "
               f"({notice.playbook})")
    headline = subject
    if replaces is not None:
        headline += (f"\nReplaces request {replaces[0]}: its plan changed before it was decided "
                     f"({plain(replaces[1], 600)}); decide on this one.")
    return subject, message(notice, alert=alert, settings=settings, headline=headline)


def escalated(notice: Notice, *, settings: Settings) -> tuple[str, str]:
    """Subject and text telling the escalation group a request is still undecided."""
    subject = (f"{rehearsal_mark(notice.mode)}Riposte: ESCALATED - approval of "
               f"{notice.step_id} ({notice.playbook}) waits")
    return subject, message(notice, alert={}, settings=settings, headline=subject)


def message(
    notice: Notice, *, alert: Mapping[str, Any], settings: Settings, headline: str
) -> str:
    """The text approvers read: what happened, what will be done, the hash, how to decide."""
    plan = notice.plan
    lines = [headline, ""]
    if notice.mode == DRY_RUN:
        lines.append("This run is a rehearsal: the calls below are planned, never made; "
                     "approving lets the rehearsal go on and changes nothing in AWS.")
    if alert:
        lines.append(f"Alert: {plain(alert.get('title'))} [{plain(alert.get('severity_label'))}]")
        principal = alert.get("principal") or {}
        who = plain(principal.get("arn") or principal.get("name"))
        if who:
            lines.append(f"Principal: {who}")
        if alert.get("account"):
            lines.append(f"Account: {plain(alert.get('account'))} {plain(alert.get('region'))}")
    if plan.get("reason"):
        lines.append(f"Why: {plain(plan['reason'])}")
    lines += _widened_text(plan.get("widened"))
    briefing = plan.get("briefing") or {}
    if briefing.get("narrative"):
        lines += ["", plain(briefing["narrative"], 2000), ""]
    recommendation = briefing.get("recommendation") or []
    for line in recommendation if isinstance(recommendation, list) else [recommendation]:
        lines.append(f"Recommended: {plain(line, 300)}")
    lines.append(f"Step {plain(notice.step_id)} will run {plain(plan.get('action'))}:")
    lines += _calls_text(plan)
    for covered in plan.get("covers", []):
        lines.append(
            f"Then, under this approval, step {plain(covered['step'])} will run "
            f"{plain(covered['action'])}:"
        )
        lines += _calls_text(covered)
    request = notice.request_id
    lines += [
        "",
        f"Approvals needed: {notice.required}; expires {notice.expires_at:%Y-%m-%d %H:%M} UTC",
        f"Plan hash: {notice.plan_hash}",
        f"Decide: riposte approvals approve {request} --plan-hash {notice.plan_hash} "
        "--reason '...'  (or reject)",
        f"   or: POST /v1/approvals/{request}/decision "
        f'{{"decision": "approve", "plan_hash": "{notice.plan_hash}", "reason": "..."}}',
    ]
    if settings.public_url:
        # The console's page of the request: readable in a browser, with its Approve form.
        lines.append(f"Review: {settings.public_url.rstrip('/')}/ui/approvals/{request}")
    return "\n".join(lines)


def _widened_text(widened: dict[str, Any] | None) -> list[str]:
    """What a request that replaces another adds: said before the plan, where it is seen."""
    if not widened:
        return []
    added, gone = widened.get("added") or [], widened.get("no_longer") or []
    lines = [f"Replaces request {plain(widened.get('replaces'))}: the run judged its burst "
             f"again with the alerts that arrived since; {len(added)} call(s) added, "
             f"{len(gone)} no longer made."]
    shown = ", ".join(plain(call, 120) for call in added[:MAX_CALLS_SHOWN])
    if added:
        lines.append(f"Added: {shown}" + (" ..." if len(added) > MAX_CALLS_SHOWN else ""))
    return lines


def _calls_text(plan: dict[str, Any]) -> list[str]:
    calls = [call for calls in plan.get("calls", []) for call in calls]
    lines = []
    for call in calls[:MAX_CALLS_SHOWN]:
        target = f" on {plain(call.get('target'))}" if call.get("target") else ""
        lines.append(f"  - {plain(call.get('service'))}:{plain(call.get('operation'))}{target}")
    if len(calls) > MAX_CALLS_SHOWN:
        lines.append(f"  ... and {len(calls) - MAX_CALLS_SHOWN} more calls")
    if plan.get("unplannable"):
        lines.append(f"  cannot be planned now ({plain(plan['unplannable'], 300)}): no call")
    elif not calls:
        lines.append(f"  parameters: {plain(plan.get('params'), 300)}")
    return lines


def send(
    targets: list[str], *, subject: str, text: str, settings: Settings, run_id: str
) -> tuple[list[str], list[str]]:
    """Deliver ``text`` to each target; return the targets reached and those that failed.

    A webhook URL is a secret: only its host appears in what is returned (and audited).
    """
    sent: list[str] = []
    failed: list[str] = []
    env = RunEnv(run_id=run_id, mode="live", settings=settings)
    for target in targets:
        if target.startswith("arn:"):
            name, params, shown = "aws.sns.publish", {
                "topic_arn": target, "subject": subject[:99], "message": text
            }, target
        else:
            name, params, shown = "notify.webhook", {"url": target, "text": text}, _shown(target)
        action = registry.get(name)()
        ctx = ActionContext(run_id=run_id, step_id="approval-notice", mode="live", env=env)
        try:
            action.run(ctx, action.Input.model_validate(params))
        except (ActionError, ValueError) as exc:
            reason = exc.message if isinstance(exc, ActionError) else "invalid target"
            log.warning("could not notify %s: %s", shown, reason)
            failed.append(f"{shown}: {reason}")
        else:
            sent.append(shown)
    return sent, failed


def _shown(url: str) -> str:
    # A webhook URL is a secret (its path is the credential): show where it points only.
    parsed = httpx.URL(url)
    return f"{parsed.host}:{parsed.port}" if parsed.port else parsed.host
