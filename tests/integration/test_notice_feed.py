"""The notice feed's place in the audit log: one worker at a time, from where it stopped, on
both backends."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from engine import audit
from engine.notice_feed import VERBS
from engine.store import notice_feed as feed
from engine.store.models import NoticeFeed
from engine.store.types import utcnow


def test_one_worker_at_a_time_follows_the_log_from_where_the_last_one_stopped(
    sessionmaker: sessionmaker[Session],
) -> None:
    with sessionmaker.begin() as session:
        assert not feed.behind(session)  # the migration starts the feed at the end of the log
        for verb in ("alert.received", "run.failed", "token.created", "approval.approved"):
            audit.record(session, actor="test", verb=verb, details={})
    with sessionmaker.begin() as session:
        assert feed.behind(session)
        start = feed.claim(session, worker="w1", lease_seconds=60)
        assert start is not None
        assert feed.claim(session, worker="w2", lease_seconds=60) is None
        events, end = feed.events_after(session, start, verbs=VERBS, limit=10)
        assert [event.verb for event in events] == ["run.failed", "approval.approved"]
        assert end == start + 4
        [first, _] = events
        assert feed.advance(session, worker="w1", to=first.id, lease_seconds=60)
        assert not feed.advance(session, worker="w2", to=end, lease_seconds=60)
    with sessionmaker.begin() as session:  # w1 died holding it: its lease lapses
        session.execute(update(NoticeFeed).values(lease_until=utcnow() - timedelta(seconds=1)))
        assert feed.claim(session, worker="w2", lease_seconds=60) == first.id
        events, end = feed.events_after(session, first.id, verbs=VERBS, limit=1)
        assert [event.verb for event in events] == ["approval.approved"] and end == events[0].id
        assert feed.advance(session, worker="w2", to=end, lease_seconds=60)
        feed.release(session, worker="w2")
        assert not feed.behind(session)
        assert feed.claim(session, worker="w1", lease_seconds=60) == end
