"""What a message about an approval request shows, read from the database at one moment."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.settings import Settings
from engine import plans
from engine.alerts import template_view
from engine.slack.blocks import Decided, RequestCard
from engine.store.alert_reads import as_normalized, get_alert
from engine.store.approvals import SUPERSEDED, get_request
from engine.store.deciders import decisions
from engine.store.models import ApprovalRequest, Run


def console_link(settings: Settings, request_id: str) -> str | None:
    """The console's page of a request, when Riposte knows its public address."""
    if not settings.public_url:
        return None
    return f"{settings.public_url.rstrip('/')}/ui/approvals/{request_id}"


def read_card(session: Session, request_id: str, settings: Settings) -> RequestCard:
    """Read what a message shows about a request (raise ``NotFound`` if there is none)."""
    request = get_request(session, request_id)
    run = session.get(Run, request.run_id)
    assert run is not None
    alert = template_view(run.alert_id, as_normalized(get_alert(session, run.alert_id)))
    verdict = run.state.get("vars", {}).get("verdict")
    replaces = predecessor(session, request)
    return RequestCard(
        request_id=request.id, run_id=run.id, step_id=request.step_id, playbook=run.playbook,
        mode=run.mode, status=request.status, plan=request.plan, plan_hash=request.plan_hash,
        required=request.required, expires_at=request.expires_at,
        on_timeout=request.on_timeout, alert=alert,
        verdict=verdict if isinstance(verdict, dict) else {},
        decisions=[Decided(actor=d.actor, decision=d.decision, reason=d.reason)
                   for d in decisions(session, request.id)],
        escalated_at=request.escalated_at,
        replaced_by=successor_id(session, request) if request.status == SUPERSEDED else None,
        replaces=replaces.id if replaces is not None else None,
        changes=plans.changes(replaces.plan, request.plan) if replaces is not None else None,
        console_url=console_link(settings, request.id),
    )


def successor(session: Session, request: ApprovalRequest) -> ApprovalRequest | None:
    """The request of the same run and step opened after ``request``, the newest."""
    query = (
        select(ApprovalRequest)
        .where(ApprovalRequest.run_id == request.run_id,
               ApprovalRequest.step_id == request.step_id,
               ApprovalRequest.id != request.id,
               ApprovalRequest.created_at >= request.created_at)
        .order_by(ApprovalRequest.created_at.desc(), ApprovalRequest.id.desc())
    )
    return session.execute(query.limit(1)).scalars().first()


def successor_id(session: Session, request: ApprovalRequest) -> str | None:
    """The id of :func:`successor`, if there is one."""
    found = successor(session, request)
    return found.id if found is not None else None


def predecessor(session: Session, request: ApprovalRequest) -> ApprovalRequest | None:
    """The superseded request of the same run and step that ``request`` replaced, if any."""
    query = (
        select(ApprovalRequest)
        .where(ApprovalRequest.run_id == request.run_id,
               ApprovalRequest.step_id == request.step_id,
               ApprovalRequest.id != request.id,
               ApprovalRequest.status == SUPERSEDED,
               ApprovalRequest.created_at <= request.created_at)
        .order_by(ApprovalRequest.created_at.desc(), ApprovalRequest.id.desc())
    )
    return session.execute(query.limit(1)).scalars().first()

