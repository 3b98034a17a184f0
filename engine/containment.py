"""Time to contain, by playbook: each milestone of a run observed when it is reached.

**Contained.** A run has contained its alert when it ended succeeded (wholly, or ``partial``:
some of the work left undone) after at least one step whose action changes AWS (an action
declared ``mutating``: isolate an instance, disable a user, revoke sessions…) succeeded. The
moment of containment is when the last such step of the run's final round finished. Only live
runs started by an alert (by a trigger, as ``system``) count: a dry run or rehearsal changes
nothing, and a run started by hand or a rollback does not measure the response to an alert.

Milestones, each a ``riposte_containment_stage_seconds{playbook, stage}`` observation of the
time since the previous one, made when it is reached and once its change is committed:

==================== ======================================= =================================
stage                from                                    observed
==================== ======================================= =================================
queued               the alert received                      the run is queued (API)
started              the run queued                          its first step begins (worker)
approval_requested   the first step began                    an approval is requested (worker)
approval_decided     the request opened                      a person's decision settles it
contained            the last approval granted, else the     the run ends contained (worker)
                     first step
==================== ======================================= =================================

and ``riposte_time_to_contain_seconds{playbook}``: from the alert received to contained.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from actions import registry
from engine.event_log import on_commit
from engine.metrics import CONTAINMENT_STAGE, TIME_TO_CONTAIN
from engine.store import timeline
from engine.store.models import ApprovalRequest, Run
from engine.store.types import utcnow

QUEUED = "queued"
STARTED = "started"
APPROVAL_REQUESTED = "approval_requested"
APPROVAL_DECIDED = "approval_decided"
CONTAINED = "contained"
STAGES = (QUEUED, STARTED, APPROVAL_REQUESTED, APPROVAL_DECIDED, CONTAINED)


def counts(run: Run) -> bool:
    """Tell whether ``run`` is measured: a live run started by an alert's trigger."""
    return run.mode == "live" and run.started_by == "system"


def observe(playbook: str, stage: str, since: datetime | None, until: datetime) -> None:
    """Observe that ``stage`` of a run of ``playbook`` took from ``since`` to ``until``."""
    if since is not None:
        CONTAINMENT_STAGE.labels(playbook, stage).observe(
            max(0.0, (until - since).total_seconds()))


def queued(session: Session, run: Run) -> None:
    """Observe, once committed, the time from ``run``'s alert to the run queued."""
    if not counts(run):
        return
    received = timeline.alert_received_at(session, run.alert_id)
    playbook, at = run.playbook, run.created_at or utcnow()
    on_commit(session, lambda: observe(playbook, QUEUED, received, at))


def approval_requested(session: Session, run: Run, request: ApprovalRequest) -> None:
    """Observe, once committed, the time from the run's first step to ``request``."""
    if not counts(run):
        return
    # An approval guarding the first step comes before any journal row: no time between them.
    began = timeline.first_step_at(session, run.id) or request.created_at
    playbook, at = run.playbook, request.created_at
    on_commit(session, lambda: observe(playbook, APPROVAL_REQUESTED, began, at))


def approval_decided(session: Session, run: Run, request: ApprovalRequest) -> None:
    """Observe, once committed, how long ``request`` waited for the decision that settled it."""
    if counts(run) and request.decided_at is not None:
        playbook, opened, decided = run.playbook, request.created_at, request.decided_at
        on_commit(session, lambda: observe(playbook, APPROVAL_DECIDED, opened, decided))


def contained_at(succeeded: list[tuple[str, datetime]]) -> datetime | None:
    """Return when the last step that changes AWS finished, of those that succeeded."""
    moments = [finished for action, finished in succeeded if _mutating(action)]
    return max(moments) if moments else None


def ended(session: Session, run: Run, round: int) -> None:
    """Observe, once committed, ``contained`` and time to contain if the run contained."""
    if not counts(run) or run.status != "succeeded":
        return
    moments = timeline.run_timeline(session, run.id, round)
    contained = contained_at(moments.succeeded)
    if contained is None:
        return
    since = moments.last_approved_at or moments.first_step_at
    received = timeline.alert_received_at(session, run.alert_id)
    playbook = run.playbook

    def observe_all() -> None:
        observe(playbook, CONTAINED, since, contained)
        if received is not None:
            TIME_TO_CONTAIN.labels(playbook).observe(
                max(0.0, (contained - received).total_seconds()))

    on_commit(session, observe_all)


def _mutating(action: str) -> bool:
    try:
        return registry.get(action).mutating
    except KeyError:  # an action no longer registered: it cannot be told to change AWS
        return False
