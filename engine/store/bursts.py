"""An alert that belongs to a run's group: the run judges it with the others, or a follow-up does.

A correlating or threshold run is a judgement of a burst. Alerts of the burst may arrive after
the run began — AWS delivers events one by one, minutes apart, out of order — and a run must
never judge, plan or act on part of a burst as if it were the whole. So an alert that joins:

- a **queued** run: it is simply added (the run sees it when it starts), and the run waits for
  the burst to go quiet again (``Settle``), at most ``at_most`` after it was queued;
- a run that is **running or waiting for approval**, none of whose approvals was granted and
  none of whose steps that change AWS has begun (``runs.acted_at``): it is added and the run
  starts over, in a new round, on every alert (``conductor.rejudged``). Its worker loses it at
  its next step; a pending approval request is superseded, and the new round's request shows
  the approvers what was added (``engine.plans.widening``);
- any other run (ended, approved, acting): a **follow-up** run of the same group and window
  starts, with every alert of that run and this one. It judges the whole burst again; what the
  first run already did is done (the actions act only on the difference), so its approval asks
  for what is left — never beyond what a human approves, never silently leaving part out.

The run is locked first: its worker's next statement, a decision and a cancel wait for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from engine import audit, conductor
from engine.playbooks import LoadedPlaybook, PlaybookInvalid, parse_playbook
from engine.spec import Settle
from engine.store import runs
from engine.store.models import Run, RunAlert
from engine.store.types import settle_clock


def settled_at(settle: Settle | None, *, queued: datetime, now: datetime) -> datetime | None:
    """When a run queued at ``queued`` may start if nothing joins it after ``now``.

    None (at once) without a quiet period; never later than ``at_most`` after ``queued``.
    """
    if settle is None or not settle.quiet:
        return None
    return min(now + timedelta(seconds=settle.quiet), queued + timedelta(seconds=settle.at_most))


def admit(
    *,
    session: Session,
    run: Run,
    alert_id: str,
    playbook: LoadedPlaybook,
    settle: Settle | None,
    details: dict[str, Any],
) -> Run:
    """Add the alert to ``run`` (starting it over if it began) or to a follow-up of it.

    ``settle`` is that of the trigger the alert matched. Returns the run the alert is now in.
    """
    run = runs.lock(session, run.id)
    now = settle_clock.now()
    if run.acted_at is not None or not conductor.takes_alerts(run.state):
        return _follow_up(session, run, alert_id, playbook, details, settle, now)
    try:
        pinned = playbook if run.playbook_hash == playbook.hash else parse_playbook(
            run.playbook_text, f"{run.playbook} (pinned in run {run.id})", pinned=True
        )
    except PlaybookInvalid:  # it can no longer start over: the playbook as it is now judges
        return _follow_up(session, run, alert_id, playbook, details, settle, now)
    runs.join_run(session=session, run=run, alert_id=alert_id, actor="system", details=details)
    if run.status == conductor.QUEUED:
        run.not_before = settled_at(settle, queued=run.created_at, now=now)
        return run
    runs.start_over(
        session=session, run=run, new_state=conductor.rejudged(pinned.spec, run.state),
        not_before=settled_at(settle, queued=run.created_at, now=now), actor="system",
        alert_id=alert_id,
    )
    return run


def _follow_up(
    session: Session,
    run: Run,
    alert_id: str,
    playbook: LoadedPlaybook,
    details: dict[str, Any],
    settle: Settle | None,
    now: datetime,
) -> Run:
    follow = runs.queue_run(
        session=session, alert_id=alert_id, playbook=playbook, mode=run.mode,
        started_by="system", at=now,
    )
    follow.state = {**follow.state, "follows": run.id}
    follow.trigger_key = run.trigger_key
    follow.window_start, follow.window_end = run.window_start, run.window_end
    follow.not_before = settled_at(settle, queued=now, now=now)
    earlier = [a for a in runs.run_alert_ids(session, run.id) if a != alert_id]
    session.add_all(RunAlert(run_id=follow.id, alert_id=a) for a in earlier)
    audit.record(
        session, actor="system", verb="run.followed_up", alert_id=alert_id, run_id=follow.id,
        details={
            **details,
            "follows": run.id,
            "because": "it ended" if run.status in conductor.TERMINAL else "it acted already",
            "alerts": len(earlier) + 1,
        },
    )
    return follow
