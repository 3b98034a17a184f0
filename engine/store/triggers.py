"""What a stored alert does to each playbook whose trigger matches: start, join, or count.

A playbook may have several triggers: the first one the alert matches decides, so the alert
starts, joins or is counted towards one run of the playbook at most. Which trigger it was (its
place in the playbook's list) is in the audit details of the run it started or joined.

- a plain trigger queues a run;
- a correlating trigger joins the open run of the same group whose window holds the alert's
  event time, or starts one whose window reaches ``within`` either side of it;
- a threshold trigger counts the alert (or the resources it names) in its group; when a window
  of ``within`` holds ``count`` of them, one run starts, every counted alert joins it, and later
  events of the window join it too instead of counting again.

Each group is decided by one transaction at a time: PostgreSQL serialises them on an advisory
lock per playbook and group; SQLite has a single writer already.

Counted events are kept only while a window may still need them: the workers' housekeeping
deletes older ones in batches (``prune_threshold_events``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from engine import audit, conductor
from engine.alerts import MatchedTrigger, NormalizedAlert, ProductionCheck, matching_trigger
from engine.playbooks import LoadedPlaybook
from engine.store.bursts import admit, settled_at
from engine.store.models import Alert, Run, ThresholdEvent
from engine.store.runs import join_run, queue_run
from engine.store.types import settle_clock, utcnow
from engine.triggers import (
    Counted,
    Window,
    burst_window,
    correlation_key,
    counted_units,
    threshold_group,
)

# pg_advisory_xact_lock(int, int): its own key space, apart from the audit chain's bigint key.
_GROUP_LOCK_SPACE = 0x52495054
_LOCK_GROUP = text("SELECT pg_advisory_xact_lock(:space, :key)")

# The longest threshold window (engine.spec.Window): no counted event is read for another
# further apart in event time.
LONGEST_WINDOW = timedelta(days=30)
# How late an event may arrive after its event time, and how long events received together go
# on counting against each other whatever their event times, before pruning can matter.
LATE_MARGIN = timedelta(days=1)
# Counted events deleted by one statement (a short transaction, whatever the backlog), and at
# most so many statements per housekeeping pass (a worker's loop is not held up for long).
PRUNE_BATCH = 2_000
PRUNE_BATCHES_PER_PASS = 5


@dataclass
class Triggered:
    """The runs an alert started and the runs it joined instead."""

    started: list[str] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)


def apply_triggers(
    *,
    session: Session,
    alert_id: str,
    alert: NormalizedAlert,
    received_at: datetime,
    playbooks: Mapping[str, LoadedPlaybook],
    is_production: ProductionCheck | None,
    default_mode: str = "live",
) -> Triggered:
    """Start, join or count the stored alert for every playbook whose trigger matches it.

    Windows use the alert's event time, or ``received_at`` when its source gives none. Runs
    start in their playbook's ``mode``, else in ``default_mode`` (RIPOSTE_DEFAULT_MODE).
    """
    moment = alert.event_time or received_at
    outcome = Triggered()
    # One order for every transaction, so two of them never wait for each other's group locks.
    for name in sorted(playbooks):
        playbook = playbooks[name]
        matched = matching_trigger(playbook.spec.triggers, alert, is_production=is_production)
        if matched is None:
            continue
        playbook = _in_mode(playbook, default_mode)
        if matched.trigger.threshold is not None:
            _count(session, playbook, matched, alert_id, alert, moment, is_production, outcome)
        elif matched.trigger.correlate is not None:
            _correlate(session, playbook, matched, alert_id, alert, moment, outcome)
        else:
            outcome.started.append(_start(session, playbook, matched, alert_id).id)
    return outcome


def _in_mode(playbook: LoadedPlaybook, default_mode: str) -> LoadedPlaybook:
    """The playbook with its runs' mode decided: its own, else the default (text, hash kept)."""
    if playbook.spec.mode is not None:
        return playbook
    spec = playbook.spec.model_copy(update={"mode": default_mode})
    return replace(playbook, spec=spec)


def _start(
    session: Session, playbook: LoadedPlaybook, matched: MatchedTrigger, alert_id: str
) -> Run:
    """Queue a run of the playbook in its mode, settling as the matched trigger says."""
    now = settle_clock.now()
    run = queue_run(session=session, alert_id=alert_id, playbook=playbook,
                    mode=playbook.spec.mode or "live", started_by="system", at=now,
                    trigger=matched.index)
    run.not_before = settled_at(matched.trigger.settle, queued=now, now=now)
    return run


def _admit(
    session: Session, playbook: LoadedPlaybook, matched: MatchedTrigger, run: Run,
    alert_id: str, details: dict[str, Any], outcome: Triggered,
) -> Run:
    """The alert belongs to ``run``'s group and window: it joins it, or a follow-up of it."""
    admitted = admit(session=session, run=run, alert_id=alert_id, playbook=playbook,
                     settle=matched.trigger.settle,
                     details={**details, "trigger": matched.index})
    (outcome.joined if admitted.id == run.id else outcome.started).append(admitted.id)
    return admitted


def _correlate(
    session: Session,
    playbook: LoadedPlaybook,
    matched: MatchedTrigger,
    alert_id: str,
    alert: NormalizedAlert,
    moment: datetime,
    outcome: Triggered,
) -> None:
    correlate = matched.trigger.correlate
    assert correlate is not None
    key = correlation_key(correlate, alert)
    if key is None:  # it lacks a field of the key: related to nothing
        outcome.started.append(_start(session, playbook, matched, alert_id).id)
        return
    name = playbook.spec.name
    _lock_group(session, name, key)
    run = _run_of_group(session, name, key, moment, open_only=True)
    if run is not None:
        _admit(session, playbook, matched, run, alert_id, {"by": correlate.by}, outcome)
        return
    run = _start(session, playbook, matched, alert_id)
    _own_window(run, key, Window.around(moment, timedelta(seconds=correlate.within)))
    outcome.started.append(run.id)


def _count(
    session: Session,
    playbook: LoadedPlaybook,
    matched: MatchedTrigger,
    alert_id: str,
    alert: NormalizedAlert,
    moment: datetime,
    is_production: ProductionCheck | None,
    outcome: Triggered,
) -> None:
    threshold = matched.trigger.threshold
    assert threshold is not None
    units = counted_units(matched.trigger, alert, alert_id, is_production)
    if not units:  # counting resources, and it names none that count
        return
    name = playbook.spec.name
    group = threshold_group(threshold, alert, trigger=matched.index)
    within = timedelta(seconds=threshold.within)
    _lock_group(session, name, group)
    # A burst that goes on past its window stays one burst while its events keep coming less
    # than ``within`` apart: an event that close to a fired window joins it (and widens it).
    fired = _run_of_group(session, name, group, moment, open_only=False, reach=within)
    for unit in units:
        session.add(ThresholdEvent(playbook=name, group_key=group, alert_id=alert_id, unit=unit,
                                   event_time=moment, run_id=fired.id if fired else None))
    if fired is not None:  # a later event of a burst that has fired already
        admitted = _admit(session, playbook, matched, fired, alert_id,
                          {"threshold": "later event of the burst that fired"}, outcome)
        assert admitted.window_start is not None and admitted.window_end is not None
        admitted.window_start = min(admitted.window_start, moment)
        admitted.window_end = max(admitted.window_end, moment)
        return
    session.flush()
    waiting = session.execute(
        select(ThresholdEvent).where(
            ThresholdEvent.playbook == name,
            ThresholdEvent.group_key == group,
            ThresholdEvent.run_id.is_(None),
            ThresholdEvent.event_time.between(moment - within, moment + within),
        )
    ).scalars().all()
    window = burst_window(
        [Counted(e.unit, e.event_time) for e in waiting],
        at=moment, count=threshold.count, within=within,
    )
    if window is None:
        return
    run = _start(session, playbook, matched, alert_id)
    _own_window(run, group, window)
    counted = [e for e in waiting if window.start <= e.event_time <= window.end]
    session.execute(
        update(ThresholdEvent)
        .where(ThresholdEvent.id.in_([e.id for e in counted]))
        .values(run_id=run.id)
        .execution_options(synchronize_session=False)
    )
    others = dict.fromkeys(e.alert_id for e in counted if e.alert_id != alert_id)
    for other in others:
        join_run(session=session, run=run, alert_id=other, actor="system",
                 details={"threshold": "counted in the window that fired",
                          "trigger": matched.index})
    audit.record(
        session, actor="system", verb="threshold.reached", alert_id=alert_id, run_id=run.id,
        details={
            "playbook": name,
            "trigger": matched.index,
            "counted": len({e.unit for e in counted}),
            "count": threshold.count,
            "alerts": len(others) + 1,
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
        },
    )
    outcome.started.append(run.id)


def _own_window(run: Run, key: str, window: Window) -> None:
    run.trigger_key = key
    run.window_start = window.start
    run.window_end = window.end


def _run_of_group(
    session: Session,
    playbook: str,
    key: str,
    moment: datetime,
    *,
    open_only: bool,
    reach: timedelta = timedelta(0),
) -> Run | None:
    """Return the latest run of the group whose window, ``reach`` wider each way, holds
    ``moment``."""
    query = select(Run).where(
        Run.playbook == playbook,
        Run.trigger_key == key,
        Run.window_start <= moment + reach,
        Run.window_end >= moment - reach,
    )
    if open_only:
        query = query.where(Run.status.not_in(sorted(conductor.TERMINAL)))
    # A follow-up shares its run's window: the newest run of the group is the one to join.
    latest = query.order_by(Run.window_start.desc(), Run.created_at.desc(), Run.id.desc())
    return session.execute(latest.limit(1)).scalars().first()


def _lock_group(session: Session, playbook: str, key: str) -> None:
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return  # SQLite: the transaction already holds the only write lock (BEGIN IMMEDIATE)
    digest = hashlib.sha256(f"{playbook}\0{key}".encode()).digest()
    # Two groups sharing these 32 bits only queue behind each other; they never mix.
    connection.execute(
        _LOCK_GROUP, {"space": _GROUP_LOCK_SPACE, "key": int.from_bytes(digest[:4], signed=True)}
    )


def prune_threshold_events(
    *, session: Session, now: datetime | None = None, batch: int = PRUNE_BATCH
) -> int:
    """Delete up to ``batch`` counted events no window can need any more; return how many.

    A counted event goes once its event time is more than ``LONGEST_WINDOW + LATE_MARGIN``
    before ``now`` (default: the present) **and** its alert was received more than
    ``LATE_MARGIN`` before ``now``. Why that changes no trigger's outcome:

    - A counted event is read only by ``_count``, for a new event of its group at most
      ``within`` (30 days at most) away in event time, and only while it waits (``run_id`` is
      null): an event counted by a firing is never read again.
    - So an event arriving at most ``LATE_MARGIN`` after its event time (CloudTrail delivers in
      minutes) reads no row older than ``now - LONGEST_WINDOW - LATE_MARGIN``: none deleted.
    - Events received within ``LATE_MARGIN`` of each other count against each other whatever
      their event times: a backlog or a replay of old records (the seed demo, the tests) counts
      as it would without pruning.
    - Whether a window fired is not in these rows: it is the run's ``trigger_key`` and window,
      and runs are never deleted. ``_count`` looks for that run first, so a later event inside
      a fired window joins its run however many of the window's rows are gone: pruning never
      lets a window fire twice.

    What can change: an event received more than ``(LONGEST_WINDOW - within) + LATE_MARGIN``
    after its event time (a month for a five-minute window, a day for a 30-day one) counts only
    the events of its window still kept: those received within ``LATE_MARGIN`` before it and
    those less than 31 days old. Its burst may then start a run on a later event, or none; the
    alerts are still stored and listed, only not counted. What it misses happened more than a
    month ago: history to investigate, not an attack to contain now on today's resources.

    Events with a future event time stay until it is that far past. On PostgreSQL the rows are
    taken ``FOR UPDATE SKIP LOCKED``: workers pruning at once split them, and none waits for
    another or for an ingest marking rows of a firing; SQLite has one writer.
    """
    now = now or utcnow()
    expired = (
        select(ThresholdEvent.id)
        .join(Alert, Alert.id == ThresholdEvent.alert_id)
        .where(
            ThresholdEvent.event_time < now - LONGEST_WINDOW - LATE_MARGIN,
            Alert.first_seen < now - LATE_MARGIN,
        )
        # Oldest first, along the event time index: a scan of the expired rows only.
        .order_by(ThresholdEvent.event_time)
        .limit(batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        expired = expired.with_for_update(of=ThresholdEvent, skip_locked=True)
    # Two statements, not DELETE … IN (SELECT …): PostgreSQL would scan the whole table for the
    # ids; given them, it takes each by its primary key. The rows are locked (SQLite: the
    # database is) until the transaction ends.
    ids = session.execute(expired).scalars().all()
    if ids:
        session.execute(
            delete(ThresholdEvent)
            .where(ThresholdEvent.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
    return len(ids)
