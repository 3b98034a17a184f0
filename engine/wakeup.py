"""Wake idle workers the moment a run becomes runnable.

In-process: a condition variable, signalled after any commit that queued work (marked with
``mark_runnable``). Across processes on PostgreSQL: ``NOTIFY`` sent in the same transaction, so
it is delivered exactly when the run becomes visible.
"""

from __future__ import annotations

import threading

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from engine.store.db import RUNS_CHANNEL

_condition = threading.Condition()
_generation = 0


def mark_runnable(session: Session) -> None:
    """Note that this transaction makes a run runnable: wake workers when it commits."""
    if session.get_bind().dialect.name == "postgresql" and not session.info.get("notified"):
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": RUNS_CHANNEL})
        session.info["notified"] = True
    session.info["wake_workers"] = True


def signal() -> None:
    """Wake every in-process waiter."""
    global _generation
    with _condition:
        _generation += 1
        _condition.notify_all()


def generation() -> int:
    """Return a counter that changes at every signal (read it before looking for work)."""
    return _generation


def wait(seen: int, timeout: float) -> bool:
    """Sleep until a signal newer than ``seen`` or the timeout; tell whether one came."""
    with _condition:
        return _condition.wait_for(lambda: _generation != seen, timeout)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop("wake_workers", False):
        signal()
    session.info.pop("notified", None)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop("wake_workers", None)
    session.info.pop("notified", None)


def listen_postgres(url: str, stop: threading.Event) -> None:
    """Relay PostgreSQL notifications on the runs channel to in-process waiters until stopped."""
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    while not stop.is_set():
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"LISTEN {RUNS_CHANNEL}")
                signal()  # anything queued while we were not listening
                while not stop.is_set():
                    for _ in conn.notifies(timeout=0.5, stop_after=1):
                        signal()
        except psycopg.OperationalError:
            stop.wait(1.0)  # database away: the poll interval still finds work
