"""A large delivery is committed in batches, so it never holds the audit chain for long.

The audit chain's tail row is locked from a transaction's first event to its COMMIT, and every
other write waits for it (on SQLite the whole database is). Once a batch is committed, another
writer must find the tail free at once, and the next batch must not have begun: the lock is
held for one batch at most, whatever the delivery's size. The bound is proven by this
structure; bench/ingest_lock.py measures what it means in time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine import audit
from engine.store.alerts import ALERTS_PER_TRANSACTION, ingest_delivery
from engine.store.db import make_engine
from engine.store.models import Alert
from tests.integration.engine_helpers import make_alert

BATCH = ALERTS_PER_TRANSACTION


@pytest.fixture
def other_writer(db_url: str) -> Iterator[Engine]:
    """A second engine: another process's writer, as far as the database can tell."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def _tail_free_now(engine: Engine) -> bool:
    """Take the audit chain's tail lock without waiting (and let go of it); say if it was free."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            return bool(connection.execute(text(
                "SELECT hash FROM audit_chain WHERE id = 1 FOR UPDATE SKIP LOCKED"
            )).all())
    # SQLite's one write lock, asked for without the engine's 30 s busy timeout.
    raw = sqlite3.connect(str(engine.url.database), timeout=0, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        if "database is locked" in str(exc):
            return False
        raise
    finally:
        raw.close()


def test_a_large_delivery_commits_in_batches_and_frees_the_audit_chain_between_them(
    sessionmaker: sessionmaker[Session], other_writer: Engine
) -> None:
    # The probe itself: it sees the tail locked while a transaction that appended is open.
    with sessionmaker.begin() as session:
        audit.record(session, actor="tester", verb="test.appended")
        assert not _tail_free_now(other_writer)
    assert _tail_free_now(other_writer)

    total = 2 * BATCH + 7
    alerts = [make_alert(dedup_key=f"key-{n}") for n in range(total)]
    seen: list[tuple[int, bool]] = []

    def observe(_session: Session) -> None:
        with other_writer.connect() as connection:
            stored = connection.execute(select(func.count()).select_from(Alert)).scalar_one()
        seen.append((stored, _tail_free_now(other_writer)))

    with sessionmaker() as session:
        event.listen(session, "after_commit", observe)
        results = ingest_delivery(session=session, alerts=alerts, playbooks={}, endpoint="test",
                                  body_sha256="0" * 64, body_bytes=0, actor="sensor")

    assert len(results) == total and not any(r.duplicate for r in results)
    # After each COMMIT: one more batch stored, the next not begun, the tail free for others.
    assert seen == [(BATCH, True), (2 * BATCH, True), (total, True)]
    with sessionmaker() as session:
        report = audit.verify(session)
    assert report.ok and report.checked == total + 1, report


def test_a_delivery_of_one_batch_or_less_is_all_or_nothing(
    sessionmaker: sessionmaker[Session],
) -> None:
    alerts = [make_alert(dedup_key=f"key-{n}") for n in range(BATCH)]
    commits: list[int] = []
    with sessionmaker() as session:
        event.listen(session, "after_commit", lambda _s: commits.append(1))
        ingest_delivery(session=session, alerts=alerts, playbooks={}, endpoint="test",
                        body_sha256="0" * 64, body_bytes=0, actor="sensor")
    assert commits == [1]
