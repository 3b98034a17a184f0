"""Counted threshold events are pruned once no window can need them, without changing outcomes.

Events are counted through ``ingest_alert`` with a threshold playbook, as the API does. "Received
two days ago" is written into the alert's ``first_seen``, as if that time had passed; pruning
"two days from now" passes that moment to ``prune_threshold_events``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.playbooks import parse_playbook
from engine.spec import Threshold
from engine.store.alerts import IngestResult, ingest_alert
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import Alert, Run, ThresholdEvent
from engine.store.triggers import (
    LATE_MARGIN,
    LONGEST_WINDOW,
    PRUNE_BATCHES_PER_PASS,
    prune_threshold_events,
)
from engine.store.types import utcnow
from engine.worker import Worker
from tests.integration.engine_helpers import make_alert, worker

T0 = datetime(2020, 11, 6, 3, 21, 39, tzinfo=UTC)
ROBOMAN = "arn:aws:iam::0123456789:user/Development/Roboman1"

BURST = parse_playbook("""
name: burst
trigger:
  kind: [terminate]
  threshold: {count: 3, within: 5m, group_by: principal.arn}
steps:
  - {id: note, action: core.log, with: {message: "{{ alerts | length }}"}}
""")


def count(sessions: sessionmaker[Session], at: datetime, *, arn: str = ROBOMAN) -> IngestResult:
    """Ingest one TerminateInstances event by ``arn`` at event time ``at``."""
    alert = make_alert(kind="terminate", event_time=at.isoformat(), principal={"arn": arn})
    with sessions.begin() as session:
        return ingest_alert(
            session=session, alert=alert, playbooks={"burst": BURST},
            endpoint="test", body_sha256="0" * 64, body_bytes=0, actor="tester",
        )


def received_long_ago(sessions: sessionmaker[Session], *results: IngestResult) -> None:
    """As if these alerts had arrived two days ago (more than LATE_MARGIN)."""
    with sessions.begin() as session:
        session.execute(
            update(Alert)
            .where(Alert.id.in_([r.alert_id for r in results]))
            .values(first_seen=utcnow() - 2 * LATE_MARGIN)
        )


def counted_alerts(sessions: sessionmaker[Session]) -> set[str]:
    """The alerts whose counted events are still stored."""
    with sessions() as session:
        return set(session.execute(select(ThresholdEvent.alert_id)).scalars())


def stored(sessions: sessionmaker[Session], model: type[Alert] | type[Run]) -> int:
    with sessions() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def prune_all(sessions: sessionmaker[Session], now: datetime) -> int:
    """Prune until nothing is left to prune at ``now``; return how many events went."""
    total = 0
    while True:
        with sessions.begin() as session:
            deleted = prune_threshold_events(session=session, now=now)
        if not deleted:
            return total
        total += deleted


def old_events(sessions: sessionmaker[Session], n: int) -> set[str]:
    """Store ``n`` counted events no window can need: 40 days old, received two days ago.

    Written directly (one alert and one counted event each) so a test can have thousands.
    """
    event_time, received = utcnow() - timedelta(days=40), utcnow() - 2 * LATE_MARGIN
    alerts = [
        Alert(source="generic", kind="terminate", title="t", severity=50,
              severity_label="MEDIUM", event_time=event_time, first_seen=received,
              last_seen=received)
        for _ in range(n)
    ]
    with sessions.begin() as session:
        session.add_all(alerts)
        session.flush()
        session.add_all(
            ThresholdEvent(playbook="burst", group_key="0" * 64, alert_id=a.id, unit=a.id,
                           event_time=event_time)
            for a in alerts
        )
    return {a.id for a in alerts}


# ---------------------------------------------------------------------------------------------
# What goes and what stays


def test_the_longest_window_is_the_one_playbooks_may_have() -> None:
    seconds = LONGEST_WINDOW.total_seconds()
    assert Threshold.model_validate({"count": 1, "within": seconds}).within == seconds
    with pytest.raises(ValidationError):
        Threshold.model_validate({"count": 1, "within": seconds + 1})


def test_a_housekeeping_pass_prunes_only_events_no_window_can_need(
    sessionmaker: sessionmaker[Session],
) -> None:
    now = utcnow()
    # One group each, below the count: nothing fires, every event waits.
    expired = [count(sessionmaker, now - timedelta(days=40), arn=f"old-{n}") for n in range(2)]
    at_the_margin = count(sessionmaker, now - LONGEST_WINDOW - LATE_MARGIN + timedelta(hours=1),
                          arn="margin")
    recent = count(sessionmaker, now - timedelta(days=10), arn="recent")
    received_long_ago(sessionmaker, *expired, at_the_margin, recent)
    # 40 days old but received just now: a replay whose events must still count together.
    replayed = count(sessionmaker, now - timedelta(days=40), arn="replay")
    alerts_before = stored(sessionmaker, Alert)

    worker(sessionmaker).housekeeping()

    assert counted_alerts(sessionmaker) == {
        at_the_margin.alert_id, recent.alert_id, replayed.alert_id
    }
    assert stored(sessionmaker, Alert) == alerts_before  # the alerts themselves stay
    assert stored(sessionmaker, Run) == 0


def test_a_fired_window_keeps_its_run_after_its_events_are_pruned(
    sessionmaker: sessionmaker[Session],
) -> None:
    first = [count(sessionmaker, T0 + timedelta(minutes=m)) for m in (0, 1, 2)]
    [run_id] = first[-1].run_ids
    assert prune_all(sessionmaker, now=utcnow() + 2 * LATE_MARGIN) == 3
    assert counted_alerts(sessionmaker) == set()

    # The same events delivered again (new deliveries, not repeats): without the run's window
    # they would count from nothing and fire a second time. They join the run instead.
    again = [count(sessionmaker, T0 + timedelta(minutes=m)) for m in (0, 1, 2)]
    assert [(r.run_ids, r.joined_run_ids) for r in again] == [([], [run_id])] * 3
    assert stored(sessionmaker, Run) == 1

    # After the window, counting goes on as before: a new burst fires a new run.
    later = [count(sessionmaker, T0 + timedelta(minutes=m)) for m in (20, 21, 22)]
    assert [r.run_ids for r in later[:2]] == [[], []]
    [second_run] = later[-1].run_ids
    assert second_run != run_id


def test_old_events_received_together_count_together(
    sessionmaker: sessionmaker[Session],
) -> None:
    # The seed demo and the tests replay records from 2020: pruning between them changes nothing.
    waiting = [count(sessionmaker, T0 + timedelta(minutes=m)) for m in (0, 1)]
    worker(sessionmaker).housekeeping()
    assert counted_alerts(sessionmaker) == {r.alert_id for r in waiting}

    [run_id] = count(sessionmaker, T0 + timedelta(minutes=2)).run_ids
    with sessionmaker() as session:
        assert session.get(Run, run_id) is not None


def test_an_event_a_month_late_counts_only_the_events_still_kept(
    sessionmaker: sessionmaker[Session],
) -> None:
    # The documented cost: two events of 2020, received long ago, are pruned; a third of the
    # same minutes arriving now no longer completes the count (without pruning, it would).
    received_long_ago(sessionmaker, *(count(sessionmaker, T0 + timedelta(minutes=m))
                                      for m in (0, 1)))
    assert prune_all(sessionmaker, now=utcnow()) == 2

    assert count(sessionmaker, T0 + timedelta(minutes=2)).run_ids == []
    assert stored(sessionmaker, Run) == 0


# ---------------------------------------------------------------------------------------------
# Batches and cadence


def test_one_statement_prunes_at_most_one_batch(sessionmaker: sessionmaker[Session]) -> None:
    old_events(sessionmaker, 25)

    with sessionmaker.begin() as session:
        assert prune_threshold_events(session=session, batch=10) == 10
    assert len(counted_alerts(sessionmaker)) == 15

    # A worker's pass goes on batch after batch until one comes back short.
    worker(sessionmaker, prune_batch=10).housekeeping()
    assert counted_alerts(sessionmaker) == set()


def test_a_backlog_is_pruned_at_every_pass_then_once_per_interval(
    sessionmaker: sessionmaker[Session],
) -> None:
    per_pass = PRUNE_BATCHES_PER_PASS
    old_events(sessionmaker, 2 * per_pass + 2)
    w = worker(sessionmaker, prune_batch=1, prune_every=3600.0)

    left = []
    for _ in range(3):
        w._last_housekeeping = 0.0  # the next second
        w.housekeeping()
        left.append(len(counted_alerts(sessionmaker)))
    assert left == [per_pass + 2, 2, 0]

    # Caught up: the next pruning waits for prune_every, however often housekeeping runs.
    newly_old = old_events(sessionmaker, 3)
    w._last_housekeeping = 0.0
    w.housekeeping()
    assert counted_alerts(sessionmaker) == newly_old


# ---------------------------------------------------------------------------------------------
# Several workers at once


@pytest.fixture
def pg_sessions(pg_url: str) -> Iterator[list[sessionmaker[Session]]]:
    """Three session factories on one fresh PostgreSQL database, as three processes have."""
    engines = [make_engine(pg_url) for _ in range(3)]
    try:
        yield [make_sessionmaker(engine) for engine in engines]
    finally:
        for engine in engines:
            engine.dispose()


def test_workers_pruning_at_once_while_a_burst_is_counted_do_not_collide(
    pg_sessions: list[sessionmaker[Session]],
) -> None:
    setup, *workers_sessions = pg_sessions
    # Every pass prunes (prune_every=0) up to PRUNE_BATCHES_PER_PASS batches of 100 per worker:
    # one worker alone would need three passes.
    old_events(setup, 3 * PRUNE_BATCHES_PER_PASS * 100)
    passes = 4
    workers = [worker(s, name=f"w{n}", prune_batch=100, prune_every=0.0)
               for n, s in enumerate(workers_sessions)]
    barrier = threading.Barrier(len(workers) + 1)
    burst_start = utcnow() - timedelta(minutes=10)

    def prune(w: Worker) -> None:
        for _ in range(passes):
            barrier.wait()
            w._last_housekeeping = 0.0
            w.housekeeping()

    def ingest() -> list[IngestResult]:
        results = []
        for m in range(passes):
            barrier.wait()
            results.append(count(setup, burst_start + timedelta(minutes=m)))
        return results

    with ThreadPoolExecutor(len(workers) + 1) as pool:
        pruning = [pool.submit(prune, w) for w in workers]
        burst = pool.submit(ingest)
        for future in pruning:
            future.result()
        results = burst.result()

    assert counted_alerts(setup) == {r.alert_id for r in results}
    assert [len(r.run_ids) for r in results] == [0, 0, 1, 0]
    assert results[-1].joined_run_ids == results[2].run_ids
