"""The audit chain under concurrent writers, on SQLite and PostgreSQL, and its one-row tail.

Writers append through ``engine.audit.record`` only; the tail row (``audit_chain``) orders them.
Whatever interleaving the database picks, ``verify`` must find every committed event chained to
the one before it, and none of the rolled-back ones.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, NoResultFound
from sqlalchemy.orm import Session, sessionmaker

from engine import audit
from engine.store.alerts import ingest_delivery
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import Alert, AuditChain, AuditEvent, Delivery
from tests.integration.engine_helpers import make_alert

WRITERS = 8
EVENTS_PER_WRITER = 25


class _Undone(Exception):
    """Raised inside a transaction to roll it back."""


def test_concurrent_writers_leave_one_intact_chain_without_rolled_back_events(
    sessionmaker: sessionmaker[Session],
) -> None:
    barrier = threading.Barrier(WRITERS)

    def write(writer: int) -> None:
        barrier.wait()
        for n in range(EVENTS_PER_WRITER):
            try:
                with sessionmaker.begin() as session:
                    audit.record(session, actor=f"writer-{writer}", verb="test.appended",
                                 details={"n": n})
                    # Every fifth transaction appends twice, then changes its mind.
                    if n % 5 == 4:
                        audit.record(session, actor=f"writer-{writer}", verb="test.undone")
                        raise _Undone
            except _Undone:
                pass

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(write, range(WRITERS)))

    with sessionmaker() as session:
        report = audit.verify(session)
        verbs = Counter(session.execute(select(AuditEvent.verb)).scalars())
        newest = session.execute(
            select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
        ).scalar_one()
        tail = session.get(AuditChain, 1)
    kept = WRITERS * EVENTS_PER_WRITER * 4 // 5
    assert report.ok, report
    assert report.checked == kept
    assert verbs == {"test.appended": kept}
    assert tail is not None and tail.hash == newest


def test_parallel_new_alerts_and_repeats_keep_the_chain_whole(
    sessionmaker: sessionmaker[Session],
) -> None:
    # On PostgreSQL a lone new alert is stored and audited by one self-committing statement,
    # a repeat by a transaction: both kinds of writer take turns at the tail here.
    keys = [f"key-{n % 10}" for n in range(60)]
    barrier = threading.Barrier(len(keys))

    def deliver(key: str) -> None:
        barrier.wait()
        with sessionmaker() as session:
            ingest_delivery(session=session, alerts=[make_alert(dedup_key=key)], playbooks={},
                            endpoint="test", body_sha256="0" * 64, body_bytes=0, actor="sensor")

    with ThreadPoolExecutor(len(keys)) as pool:
        list(pool.map(deliver, keys))

    with sessionmaker() as session:
        report = audit.verify(session)
        occurrences = dict(session.execute(select(Alert.dedup_key, Alert.occurrences)).all())
        outcomes = Counter(session.execute(select(Delivery.outcome)).scalars())
        verbs = Counter(session.execute(select(AuditEvent.verb)).scalars())
    assert report.ok, report
    assert occurrences == {f"key-{n}": 6 for n in range(10)}
    assert outcomes == {"accepted": 10, "duplicate": 50}
    assert verbs == {"alert.received": 10, "alert.repeated": 50}


def test_the_database_computes_the_hash_verify_recomputes(
    sessionmaker: sessionmaker[Session],
) -> None:
    # Names, ids and details with quotes, backslashes, non-ASCII and nesting: the head of the
    # hashed text is JSON written by Python, the rest is appended by the database.
    details = {"quote": 'say "hi"', "path": "C:\\temp", "city": "Zürich", "nested": [1, 2.5, None],
               "token": "rip_secret"}
    with sessionmaker.begin() as session:
        audit.record(session, actor='o\'brien "the" admin', verb="test.odd", alert_id="a-1",
                     run_id="r-1", step_id="step \u2603", details=details)
        audit.record(session, actor="system", verb="test.plain")
    with sessionmaker() as session:
        first = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().first()
        assert audit.verify(session).ok
    assert first is not None and first.details["token"] == "***"
    assert first.hash == audit.row_hash(first)


def test_the_tail_starts_at_the_genesis_hash(sessionmaker: sessionmaker[Session]) -> None:
    with sessionmaker.begin() as session:
        audit.record(session, actor="system", verb="test.first")
    with sessionmaker() as session:
        first = session.execute(select(AuditEvent)).scalar_one()
    assert first.prev_hash == audit.GENESIS


def test_without_its_tail_row_the_chain_refuses_to_grow(sqlite_url: str) -> None:
    # On PostgreSQL a trigger refuses to delete the row (test_postgres_keeps_the_tail_row).
    engine = make_engine(sqlite_url)
    try:
        sessions = make_sessionmaker(engine)
        with sessions.begin() as session:
            session.execute(text("DELETE FROM audit_chain"))
        with pytest.raises(NoResultFound, match="riposte db upgrade"), sessions.begin() as session:
            audit.record(session, actor="system", verb="test.lost")
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0
    finally:
        engine.dispose()


def test_postgres_keeps_the_tail_row(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        for statement in ("DELETE FROM audit_chain", "TRUNCATE audit_chain"):
            with pytest.raises(DBAPIError, match="audit_chain keeps its row"):
                with engine.begin() as connection:
                    connection.execute(text(statement))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM audit_chain")).scalar() == 1
    finally:
        engine.dispose()


def test_a_joined_write_needs_postgres(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with pytest.raises(ValueError, match="needs PostgreSQL"):
            with make_sessionmaker(engine).begin() as session:
                audit.record(session, actor="system", verb="test.joined",
                             joined=(audit.joined_to(select(Alert.id).cte("gate")), {}))
    finally:
        engine.dispose()
