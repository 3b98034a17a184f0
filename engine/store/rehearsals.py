"""Rehearsing a run: a dry-run copy of it, on every alert it sees, started by a responder.

The copy pins the same playbook text (and hash) and starts from the beginning: it investigates,
narrates and asks approval as the run did, and plans each change instead of making it. Its state
names the run it rehearses (``state["rehearses"]``); one audit row links the two.

The copy takes none of the run's trigger group or window: alerts of the burst that arrive later
join the run (or its follow-up), never the rehearsal — a rehearsal must not stand in for the
live run, nor be started over by the burst it only replays. Rehearse again to see them.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit
from engine.modes import DRY_RUN
from engine.playbooks import PlaybookInvalid, parse_playbook
from engine.store.errors import Conflict
from engine.store.models import Run
from engine.store.runs import get_run, join_run, queue_run, run_alert_ids


def rehearse_run(*, session: Session, run_id: str, actor: str) -> Run:
    """Queue a dry-run copy of a run, of any status, on every alert it sees; return the copy.

    Raises ``NotFound`` for no such run, ``Conflict`` when its pinned playbook no longer loads.
    """
    run = get_run(session, run_id)
    try:
        playbook = parse_playbook(run.playbook_text, f"{run.playbook} (pinned in run {run.id})",
                                  pinned=True)
    except PlaybookInvalid as exc:
        raise Conflict(
            f"run {run.id} cannot be rehearsed: the playbook {run.playbook!r} it pinned no "
            f"longer loads ({exc}); start a dry run of the current playbook instead "
            "(POST /v1/runs with mode dry_run)"
        ) from None
    alert_ids = run_alert_ids(session, run.id)
    rehearsal = queue_run(session=session, alert_id=run.alert_id, playbook=playbook,
                          mode=DRY_RUN, started_by=actor)
    rehearsal.state = {**rehearsal.state, "rehearses": run.id}
    for alert_id in alert_ids:
        if alert_id != run.alert_id:
            join_run(session=session, run=rehearsal, alert_id=alert_id, actor=actor,
                     details={"rehearses": run.id})
    audit.record(
        session, actor=actor, verb="run.rehearsal_started", alert_id=run.alert_id,
        run_id=rehearsal.id,
        details={"rehearses": run.id, "rehearsed_status": run.status,
                 "playbook_hash": run.playbook_hash, "alerts": len(alert_ids)},
    )
    return rehearsal


def run_modes(session: Session, run_ids: Iterable[str]) -> dict[str, str]:
    """Return the mode of each of these runs by id (what an approval request is shown with)."""
    wanted = sorted(set(run_ids))
    if not wanted:
        return {}
    return dict(session.execute(select(Run.id, Run.mode).where(Run.id.in_(wanted))).all())
