"""Every kind of tampering with the audit log is caught, and the first bad row is named.

Issue 12, item 3: deleting the newest rows (one, five, all) left ``verify`` saying intact,
since the tail row was never compared with the rows. Edits and deletions in the middle were
already caught; a rewrite that recomputes every hash is caught only by a signed checkpoint.
On PostgreSQL the tampering is done as a superuser past the triggers (the application's role
cannot: test_audit_app_role.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from engine import audit
from engine.audit_checkpoints import write_checkpoint
from tests.integration.audit_tamper import (
    EVENTS,
    append_events,
    forge_next_row,
    past_the_triggers,
    rewrite_and_recompute,
    set_tail,
    tamper,
)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def twenty_rows(sessionmaker: sessionmaker[Session]) -> Iterator[sessionmaker[Session]]:
    """A log of 20 events, rows 1 to 20, intact."""
    append_events(sessionmaker, 20)
    assert verify(sessionmaker).ok
    yield sessionmaker


@pytest.fixture
def signed_log(
    sessionmaker: sessionmaker[Session], key: Ed25519PrivateKey
) -> sessionmaker[Session]:
    """Rows 1-10 events, 11 a checkpoint, 12-16 events, 17 a checkpoint, 18-20 events."""
    for events in (10, 5):
        append_events(sessionmaker, events)
        with sessionmaker.begin() as session:
            assert write_checkpoint(session, key=key, actor="test") is not None
    append_events(sessionmaker, 3)
    return sessionmaker


def verify(sessions: sessionmaker[Session], *keys: Ed25519PrivateKey) -> audit.ChainReport:
    with sessions() as session:
        return audit.verify(session, public_keys=[k.public_key() for k in keys])


# ---------------------------------------------------------------------------------------------
# At the tail: the regression of issue 12


@pytest.mark.parametrize(
    ("deleted", "first_missing", "said"),
    [("id = 20", 20, "the newest row was deleted"),
     ("id > 15", 16, "the newest 5 rows were deleted"),
     ("1 = 1", 1, "the newest 20 rows were deleted")],
    ids=["newest-row", "newest-five", "every-row"],
)
def test_rows_deleted_at_the_tail_are_caught(
    twenty_rows: sessionmaker[Session], engine: Engine, deleted: str, first_missing: int,
    said: str,
) -> None:
    tamper(engine, f"DELETE FROM audit_events WHERE {deleted}")

    report = verify(twenty_rows)

    assert not report.ok
    assert report.first_broken_id == first_missing
    assert report.checked == first_missing - 1
    assert report.reason is not None
    assert report.reason.startswith("the chain's tail (audit_chain) counts 20 events")
    assert report.reason.endswith(said)


def test_a_row_deleted_at_the_tail_is_caught_after_new_events_follow(
    twenty_rows: sessionmaker[Session], engine: Engine
) -> None:
    # The application appends after the gap: the next event chains to the deleted row.
    tamper(engine, "DELETE FROM audit_events WHERE id > 18")
    append_events(twenty_rows, 2)

    report = verify(twenty_rows)

    assert (report.ok, report.first_broken_id, report.checked) == (False, 21, 18)
    assert report.reason == "prev_hash does not match the row before"


def test_a_row_slipped_in_behind_the_tail_is_caught(
    twenty_rows: sessionmaker[Session], engine: Engine
) -> None:
    # Chained correctly to the newest row, but the tail row was not moved: not the application.
    assert forge_next_row(engine) == 21

    report = verify(twenty_rows)

    assert (report.ok, report.first_broken_id, report.checked) == (False, 21, 20)
    assert report.reason is not None and "counts 20 events, yet this row follows" in report.reason


def test_a_tail_row_set_elsewhere_is_caught(
    twenty_rows: sessionmaker[Session], engine: Engine
) -> None:
    with engine.begin() as connection:
        past_the_triggers(connection)
        set_tail(connection, "f" * 64, 20)

    report = verify(twenty_rows)

    assert (report.ok, report.first_broken_id, report.checked) == (False, 20, 20)
    assert report.reason is not None and "says event 20 is hashed ffffffffffff" in report.reason


def test_a_lost_tail_row_is_reported(sqlite_url: str) -> None:
    # PostgreSQL refuses to delete it (test_audit_chain.py); on SQLite verify says so.
    from engine.store.db import make_engine, make_sessionmaker

    engine = make_engine(sqlite_url)
    try:
        sessions = make_sessionmaker(engine)
        append_events(sessions, 2)
        tamper(engine, "DELETE FROM audit_chain")
        report = verify(sessions)
    finally:
        engine.dispose()
    assert not report.ok and report.first_broken_id is None
    assert report.reason is not None and "has lost its row" in report.reason


def test_an_empty_untouched_log_verifies(sessionmaker: sessionmaker[Session]) -> None:
    report = verify(sessionmaker)
    assert (report.ok, report.checked) == (True, 0)


# ---------------------------------------------------------------------------------------------
# In the middle


def test_an_edited_row_is_named(twenty_rows: sessionmaker[Session], engine: Engine) -> None:
    tamper(engine, "UPDATE audit_events SET actor = 'mallory' WHERE id = 7")

    report = verify(twenty_rows)

    assert (report.ok, report.first_broken_id, report.checked) == (False, 7, 6)
    assert report.reason == "content does not match its hash"


def test_a_row_deleted_in_the_middle_is_named_by_the_row_after_it(
    twenty_rows: sessionmaker[Session], engine: Engine
) -> None:
    tamper(engine, "DELETE FROM audit_events WHERE id = 7")

    report = verify(twenty_rows)

    assert (report.ok, report.first_broken_id, report.checked) == (False, 8, 6)
    assert report.reason == "prev_hash does not match the row before"


# ---------------------------------------------------------------------------------------------
# A rewrite with every hash recomputed: only the signed checkpoints show it


def test_a_recomputed_chain_fools_the_hashes_alone(
    twenty_rows: sessionmaker[Session], engine: Engine
) -> None:
    # What the checkpoints are for: the attacker's rewrite is complete, the chain holds.
    rewrite_and_recompute(engine, 7)

    assert verify(twenty_rows).ok
    with engine.connect() as connection:
        assert connection.execute(text("SELECT actor FROM audit_events WHERE id = 7")).scalar() \
            == "mallory"


@pytest.mark.parametrize(("rewritten", "caught_at", "holds_until"), [(3, 11, None), (13, 17, 11)],
                         ids=["before-the-first-checkpoint", "between-checkpoints"])
def test_a_recomputed_chain_is_caught_at_the_next_checkpoint(
    signed_log: sessionmaker[Session], engine: Engine, key: Ed25519PrivateKey,
    rewritten: int, caught_at: int, holds_until: int | None,
) -> None:
    rewrite_and_recompute(engine, rewritten)

    for keys in ((), (key,)):  # the statement alone already disagrees with the rows
        report = verify(signed_log, *keys)
        assert (report.ok, report.first_broken_id) == (False, caught_at)
        assert report.reason is not None
        assert "rows were rewritten or removed and the hashes recomputed" in report.reason
        after = (f"after row {holds_until} (the checkpoint before, which holds)"
                 if holds_until else "from the first row on")
        assert after in report.reason


def test_a_recomputed_chain_with_restated_checkpoints_is_caught_by_the_signature(
    signed_log: sessionmaker[Session], engine: Engine, key: Ed25519PrivateKey
) -> None:
    rewrite_and_recompute(engine, 13, restate_checkpoints=True)

    assert verify(signed_log).ok  # without the public key only the statements are checked
    report = verify(signed_log, key)

    assert (report.ok, report.first_broken_id, report.checked) == (False, 17, 16)
    assert report.reason == "checkpoint signature does not verify: the checkpoint was altered"


def test_a_removed_checkpoint_is_caught_at_the_next(
    signed_log: sessionmaker[Session], engine: Engine, key: Ed25519PrivateKey
) -> None:
    # Checkpoint 11 deleted, the gap closed (row 12 chained to row 10), every hash recomputed
    # and checkpoint 17 restated to match: it still names checkpoint 11 as the one before it.
    with engine.connect() as connection:
        row_10 = connection.execute(EVENTS.select().where(EVENTS.c.id == 10)).one()
    tamper(engine, "DELETE FROM audit_events WHERE id = 11")
    rewrite_and_recompute(engine, 12, actor="system", chain_to=row_10.hash,
                          restate_checkpoints=True)

    report = verify(signed_log)
    assert (report.ok, report.first_broken_id, report.checked) == (False, 17, 15)
    assert report.reason is not None
    assert report.reason.startswith("checkpoint does not follow the checkpoint before it (none)")
    assert not verify(signed_log, key).ok


def test_a_signed_log_verifies_and_says_what_is_signed(
    signed_log: sessionmaker[Session], key: Ed25519PrivateKey
) -> None:
    report = verify(signed_log, key)

    assert (report.ok, report.checked, report.checkpoints) == (True, 20, 2)
    assert (report.signatures_checked, report.last_checkpoint_id, report.unsigned) == (
        True, 17, 3)


def test_a_checkpoint_by_another_key_is_not_trusted(
    signed_log: sessionmaker[Session], key: Ed25519PrivateKey
) -> None:
    report = verify(signed_log, Ed25519PrivateKey.generate())

    assert (report.ok, report.first_broken_id) == (False, 11)
    assert report.reason is not None and "not by one of the public keys given" in report.reason


def test_verify_while_writers_append_never_cries_wolf(sessionmaker: sessionmaker[Session]) -> None:
    # The tail and the rows are read at one instant: appends committing meanwhile are either
    # wholly in what verify reads (row and tail) or wholly out of it.
    done = threading.Event()
    reports: list[audit.ChainReport] = []

    def write(writer: int) -> None:
        for n in range(40):
            with sessionmaker.begin() as session:
                audit.record(session, actor=f"writer-{writer}", verb="test.event",
                             details={"n": n})

    def check() -> None:
        while not done.is_set():
            reports.append(verify(sessionmaker))

    checker = threading.Thread(target=check)
    checker.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(write, range(4)))
    finally:
        done.set()
        checker.join()
    reports.append(verify(sessionmaker))

    assert len(reports) > 1
    assert [r for r in reports if not r.ok] == []
    assert reports[-1].checked == 160
