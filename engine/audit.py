"""The append-only audit log: one writer function, a hash chain, and its verification."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import (
    CTE,
    Connection,
    Executable,
    Table,
    Text,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Session

from engine import event_log
from engine.audit_check import ChainCheck, ChainReport
from engine.audit_hash import GENESIS, AuditRow, chained, hash_head, row_hash
from engine.store.models import AuditChain, AuditEvent
from engine.store.types import utcnow

__all__ = ["GENESIS", "ChainReport", "Joined", "hash_head", "joined_to", "list_events",
           "record", "row_hash", "scrub", "verify"]
# Any key that looks like it holds a credential is masked before it is stored or hashed.
_SECRET_KEY = re.compile(r"token|password|secret|signature|authorization|credential", re.I)
# Plain Core, run on the session's Connection: an audit row is never changed after its INSERT,
# so the ORM has nothing to track.
_EVENTS = cast(Table, AuditEvent.__table__)
_CHAIN = cast(Table, AuditChain.__table__)
_CONTENT = ["at", "actor", "verb", "alert_id", "run_id", "step_id", "details"]
_TAIL = _CHAIN.c.id == 1
_APPEND = insert(_EVENTS).returning(_EVENTS.c.id)
_READ_TAIL = select(_CHAIN.c.hash).where(_TAIL)
# Each append counts itself in the tail row: verify knows how many events the chain holds.
_COUNTED = _CHAIN.c.event_count + 1
_MOVE_TAIL = update(_CHAIN).where(_TAIL).values(event_count=_COUNTED)


def _append_in_one_statement(gate: CTE | None = None) -> Executable:
    """PostgreSQL: lock the tail, chain the event to it and insert it, in one statement.

    WITH link AS (UPDATE audit_chain SET prev_hash = hash, hash = encode(sha256(convert_to(
                      :event_head || hash || '"]', 'UTF8')), 'hex'), event_count = event_count + 1
                  WHERE id = 1 [AND EXISTS (SELECT * FROM gate)] RETURNING prev_hash, hash)
    INSERT INTO audit_events (at, …, details, prev_hash, hash)
    SELECT :event_at, …, :event_details, link.prev_hash, link.hash FROM link RETURNING id

    The UPDATE waits for the row lock of any other writer until that one commits, then reads
    the tail it committed (READ COMMITTED re-reads an updated row): writers queue here, each
    sees its true predecessor, and the lock is held only from this statement to the COMMIT.
    ``event_head`` is the event's hashed text up to its predecessor's hash (``hash_head``), so
    the database computes exactly ``row_hash``. With a ``gate`` (see ``Joined``) the event is only
    appended when the gate yields a row. Parameters are named ``event_<column>``, apart from
    those of the gate.
    """
    text_hashed = (bindparam("event_head", type_=Text()) + _CHAIN.c.hash
                   + literal_column("'\"]'"))
    chained_in_database = func.encode(
        func.sha256(func.convert_to(text_hashed, literal_column("'UTF8'"))),
        literal_column("'hex'"),
    )
    tail = _TAIL if gate is None else and_(_TAIL, exists().select_from(gate))
    link = (
        update(_CHAIN).where(tail)
        .values(prev_hash=_CHAIN.c.hash, hash=chained_in_database, event_count=_COUNTED)
        .returning(_CHAIN.c.prev_hash, _CHAIN.c.hash).cte("link")
    )
    content = [bindparam(f"event_{name}", type_=_EVENTS.c[name].type) for name in _CONTENT]
    append = (
        insert(_EVENTS)
        .from_select([*_CONTENT, "prev_hash", "hash"],
                     select(*content, link.c.prev_hash, link.c.hash))
        .returning(_EVENTS.c.id)
    )
    if gate is None:
        return append
    # Say both whether the gate wrote and the event id: a gate that wrote with no event after
    # it (no tail row) must not pass for a gate that wrote nothing.
    event = append.cte("event")
    return select(select(func.count()).select_from(gate).scalar_subquery(),
                  select(event.c.id).scalar_subquery())


_APPEND_CHAINED = _append_in_one_statement()


@dataclass(frozen=True)
class Joined:
    """Another write to run in the same statement as an audit append (PostgreSQL only).

    ``gate`` is a CTE (an INSERT … RETURNING, say): the statement runs it, then appends the
    event only if it yielded a row. Build one per write, once (``joined_to``), and pass it to
    ``record`` with the gate's parameters, none of them named like a column of ``audit_chain``
    (SQLAlchemy would SET that column from it) or ``event_*`` (the event's own).
    """

    gate: CTE
    statement: Executable


def joined_to(gate: CTE) -> Joined:
    """Return the statement that runs ``gate`` and appends an event if it yields a row."""
    return Joined(gate=gate, statement=_append_in_one_statement(gate))


def scrub(value: Any) -> Any:
    """Return a JSON-safe copy of ``value`` with credential-like keys masked."""
    if isinstance(value, dict):
        return {
            str(k): "***" if _SECRET_KEY.search(str(k)) else scrub(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def record(
    session: Session | Connection,
    *,
    actor: str,
    verb: str,
    alert_id: str | None = None,
    run_id: str | None = None,
    step_id: str | None = None,
    details: dict[str, Any] | None = None,
    joined: tuple[Joined, Mapping[str, Any]] | None = None,
) -> int | None:
    """Append one audit event in the caller's transaction (the only way rows are written).

    Returns the new row's id. ``session`` may be a Connection, for a caller that needs no ORM.
    ``joined`` (PostgreSQL only): a write and its parameters, run in the same statement; the
    event is appended only if the write's gate yielded a row, and None is returned if not.
    """
    content: dict[str, Any] = {
        "at": utcnow(),
        "actor": actor,
        "verb": verb,
        "alert_id": alert_id,
        "run_id": run_id,
        "step_id": step_id,
        "details": scrub(details or {}),
    }
    head = hash_head(**content)
    connection = session if isinstance(session, Connection) else session.connection()
    if connection.dialect.name == "postgresql":
        parameters = {f"event_{name}": value for name, value in content.items()}
        parameters["event_head"] = head
        if joined is not None:
            written, event_id = connection.execute(joined[0].statement,
                                                   {**joined[1], **parameters}).one()
            if not written:
                return None  # the gate wrote nothing, so no event was due
        else:
            event_id = connection.execute(_APPEND_CHAINED, parameters).scalar()
    elif joined is not None:
        raise ValueError(f"audit event {verb!r}: a joined write needs PostgreSQL, not "
                         f"{connection.dialect.name}")
    else:
        # SQLite: the transaction holds the database's only write lock since its BEGIN.
        event_id = _append_after_reading_tail(connection, content, head)
    if event_id is None:
        raise NoResultFound("the audit chain has no tail row (audit_chain id 1): the database "
                            "was not migrated with `riposte db upgrade`")
    if isinstance(session, Session):  # run and approval events are logged once committed
        event_log.after_commit(session, content)
    return int(event_id)


def _append_after_reading_tail(
    connection: Connection, content: dict[str, Any], head: str
) -> int | None:
    prev_hash = connection.execute(_READ_TAIL).scalar()
    if prev_hash is None:
        return None
    event_hash = chained(head, prev_hash)
    connection.execute(_MOVE_TAIL, {"prev_hash": prev_hash, "hash": event_hash})
    values = {**content, "prev_hash": prev_hash, "hash": event_hash}
    return int(connection.execute(_APPEND, values).scalar_one())


def list_events(
    session: Session,
    *,
    alert_id: str | None = None,
    run_id: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    after_id: int = 0,
) -> Sequence[AuditEvent]:
    """Return audit events oldest first, filtered, after the id ``after_id`` (for paging)."""
    query = select(AuditEvent).where(AuditEvent.id > after_id)
    if alert_id is not None:
        query = query.where(AuditEvent.alert_id == alert_id)
    if run_id is not None:
        query = query.where(AuditEvent.run_id == run_id)
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    return session.execute(query.order_by(AuditEvent.id).limit(limit)).scalars().all()


def verify(session: Session, *, public_keys: Iterable[Ed25519PublicKey] = ()) -> ChainReport:
    """Recompute every row's hash in order and name the first row that does not match.

    The rows are also checked against the tail row (how many events the chain holds and the
    newest one's hash), so rows deleted at the end show. The rows and the tail are read by one
    statement, at one instant, whatever else appends meanwhile. Given ``public_keys``, every
    checkpoint's signature is checked too (see ``engine.audit_check``).
    """
    keys = list(public_keys)
    connection = session.connection()
    while True:
        report = _verify_at_one_instant(connection, keys)
        if report is not None:
            return report


def _verify_at_one_instant(
    connection: Connection, public_keys: list[Ed25519PublicKey]
) -> ChainReport | None:
    """Verify the rows one statement reads; None: it read none, but some were appended since."""
    check = ChainCheck(public_keys=public_keys)
    rows = connection.execute(_TAIL_AND_EVENTS.execution_options(yield_per=1000))
    try:
        first = rows.fetchone()
        if first is None:
            tail = connection.execute(_TAIL_AND_COUNT).one_or_none()
            if tail is not None and tail.events:
                return None
            tail_hash, tail_count = (tail.hash, tail.event_count) if tail else (None, None)
        else:
            tail_hash, tail_count = first.tail_hash, first.tail_count
        if tail_hash is None or tail_count is None:
            return _TAIL_LOST
        check.expect(tail_count, tail_hash, by=_TAIL_SAYS, last=True)
        if first is not None and check.add(cast(AuditRow, first)):
            for row in rows:
                if not check.add(cast(AuditRow, row)):
                    break
    finally:
        rows.close()
    return check.report()


# The tail in the statement that reads the rows (scalar subqueries: evaluated once, with the
# rows' snapshot), and alone with the number of rows when there is none.
_TAIL_AND_EVENTS = select(
    *_EVENTS.c,
    select(_CHAIN.c.hash).where(_TAIL).scalar_subquery().label("tail_hash"),
    select(_CHAIN.c.event_count).where(_TAIL).scalar_subquery().label("tail_count"),
).order_by(_EVENTS.c.id)
_TAIL_AND_COUNT = select(
    _CHAIN.c.hash, _CHAIN.c.event_count,
    select(func.count()).select_from(_EVENTS).scalar_subquery().label("events"),
).where(_TAIL)
_TAIL_SAYS = "the chain's tail (audit_chain)"
_TAIL_LOST = ChainReport(
    ok=False, checked=0,
    reason=f"{_TAIL_SAYS} has lost its row (id 1): it was deleted, so no row can be checked "
           "against it and no event can be appended",
)
