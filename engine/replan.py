"""Making a waiting request's plan again, to see whether it still holds before a decision."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from actions.base import ActionError, RunEnv
from core.settings import Settings
from engine import plans
from engine.alerts import template_view
from engine.store.alert_reads import as_normalized, get_alert
from engine.store.approvals import get_request, supersede
from engine.store.errors import Conflict
from engine.store.runs import get_run


def fresh_plan(
    sessions: sessionmaker[Session], request_id: str, settings: Settings
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Return (shown plan, the same plan made now) for a request whose plan calls AWS.

    None when the plan has no calls to check. The database is only read, and no transaction is
    open while the read-only AWS lookups run. Raises ``ActionError`` when the plan can no longer
    be made (its target is gone).
    """
    with sessions() as session:
        request = get_request(session, request_id)
        shown = request.plan
        if not plans.has_calls(shown):
            return None
        run = get_run(session, request.run_id)
        alert = template_view(run.alert_id, as_normalized(get_alert(session, run.alert_id)))
        run_id = run.id
    env = RunEnv(run_id=run_id, mode="dry_run", settings=settings, alert=alert)
    return shown, plans.replan(shown, env=env)


def refuse_if_moved(
    sessions: sessionmaker[Session], request_id: str, settings: Settings, *, actor: str
) -> None:
    """Before an approval: supersede the request if its plan changed, and refuse (Conflict).

    The new request shows the new plan; decisions on the old one do not carry over. A plan
    that can no longer be made at all is refused too, and the request stays as it is.
    """
    try:
        made = fresh_plan(sessions, request_id, settings)
    except ActionError as exc:
        raise Conflict(
            f"approval request {request_id}: its plan can no longer be made ({exc.code}: "
            f"{exc.message}); reject it or let it expire"
        ) from exc
    if made is None:
        return
    shown, now = made
    if plans.plan_hash(now) == plans.plan_hash(shown):
        return
    with sessions.begin() as session:
        new = supersede(session=session, request_id=request_id, plan=now, actor=actor)
        new_id, new_hash = new.id, new.plan_hash
    raise Conflict(
        f"the plan of approval request {request_id} changed since it was shown "
        f"({plans.changes(shown, now)}): review request {new_id}, plan hash {new_hash}"
    )
