"""An attacker with write access to the database, for the audit log's tampering tests.

Its hashing is written from the documented format (the JSON of ``[at, actor, verb, alert_id,
run_id, step_id, details, prev_hash]``, keys sorted, no spaces, ASCII), not taken from
``engine.audit``: a rewrite it recomputes is one the chain alone cannot tell from the original.
On PostgreSQL it works as a superuser would, with the audit triggers switched off for its own
session (``session_replication_role = replica``): what the application's role cannot do.
"""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from engine import audit
from engine.store.models import AuditEvent

EVENTS = cast(Table, AuditEvent.__table__)


def append_events(sessions: sessionmaker[Session], count: int, *, verb: str = "test.event") -> None:
    """Append ``count`` audit events through the application, one transaction each."""
    for n in range(count):
        with sessions.begin() as session:
            audit.record(session, actor="system", verb=verb, details={"n": n})


def attacker_hash(row: Any, prev_hash: str) -> str:
    """Hash a row as the documentation says the chain does."""
    content = [row.at.isoformat(), row.actor, row.verb, row.alert_id, row.run_id, row.step_id,
               row.details, prev_hash]
    text_hashed = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text_hashed.encode()).hexdigest()


def tamper(engine: Engine, *statements: str, **parameters: Any) -> None:
    """Run SQL behind the application's back, past PostgreSQL's audit triggers."""
    with engine.begin() as connection:
        past_the_triggers(connection)
        for statement in statements:
            connection.execute(text(statement), parameters)


def rewrite_and_recompute(
    engine: Engine, row_id: int, *, actor: str = "mallory", restate_checkpoints: bool = False,
    chain_to: str | None = None,
) -> None:
    """Change one row's actor, then recompute every hash from it on, and the tail row.

    ``restate_checkpoints``: also make each later checkpoint state the recomputed chain (its
    signature, which the attacker cannot make, left as it was). ``chain_to``: the hash the row
    chains to instead of its own prev_hash (closing the gap of a deleted row).
    """
    with engine.begin() as connection:
        past_the_triggers(connection)
        rows = connection.execute(select(EVENTS).order_by(EVENTS.c.id)).all()
        start = next(n for n, row in enumerate(rows) if row.id == row_id)
        prev_hash = chain_to or rows[start].prev_hash
        for count, row in enumerate(rows[start:], start=start):
            values = row._asdict()
            if row.id == row_id:
                values["actor"] = actor
            if restate_checkpoints and row.verb == "audit.checkpoint":
                statement = {**values["details"]["checkpoint"], "rows": count, "tail": prev_hash}
                values["details"] = {**values["details"], "checkpoint": statement}
            values["hash"] = attacker_hash(SimpleNamespace(**values), prev_hash)
            values["prev_hash"] = prev_hash
            connection.execute(update(EVENTS).where(EVENTS.c.id == row.id).values(
                actor=values["actor"], details=values["details"], prev_hash=prev_hash,
                hash=values["hash"],
            ))
            prev_hash = values["hash"]
        set_tail(connection, prev_hash, len(rows))


def set_tail(connection: Connection, tail: str, count: int) -> None:
    """Point the tail row at ``tail`` after ``count`` events, as an attacker covering tracks."""
    connection.execute(text("UPDATE audit_chain SET hash = :hash, event_count = :count "
                            "WHERE id = 1"), {"hash": tail, "count": count})


def forge_next_row(engine: Engine, *, actor: str = "mallory") -> int:
    """Append a row chained to the newest one, as the application would, but by hand."""
    with engine.begin() as connection:
        newest = connection.execute(select(EVENTS).order_by(EVENTS.c.id.desc()).limit(1)).one()
        values = {**newest._asdict(), "id": newest.id + 1, "actor": actor,
                  "prev_hash": newest.hash}
        values["hash"] = attacker_hash(SimpleNamespace(**values), newest.hash)
        connection.execute(EVENTS.insert().values(values))
    return int(values["id"])


def past_the_triggers(connection: Connection) -> None:
    """Switch PostgreSQL's triggers off for this transaction (as a superuser can)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
