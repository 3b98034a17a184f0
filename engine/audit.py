"""The append-only audit log: one writer function, a hash chain, and its verification."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from engine.store.models import AuditEvent
from engine.store.types import utcnow

GENESIS = "0" * 64
# Any key that looks like it holds a credential is masked before it is stored or hashed.
_SECRET_KEY = re.compile(r"token|password|secret|signature|authorization|credential", re.I)
_AUDIT_LOCK = 0x52495053  # pg_advisory_xact_lock key that serialises the chain's tail
_LOCK_TAIL = text("SELECT pg_advisory_xact_lock(:k)")
_TAIL_HASH = select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
_COLUMNS = [c.key for c in AuditEvent.__table__.columns if c.key != "id"]
_APPEND = insert(AuditEvent).returning(AuditEvent.id)  # run on the Connection: plain Core


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


def row_hash(row: AuditEvent) -> str:
    """Hash one row's content together with the previous row's hash."""
    body = json.dumps(
        [row.at.isoformat(), row.actor, row.verb, row.alert_id, row.run_id, row.step_id,
         row.details, row.prev_hash],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def record(
    session: Session,
    *,
    actor: str,
    verb: str,
    alert_id: str | None = None,
    run_id: str | None = None,
    step_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one audit event in the caller's transaction (the only way rows are written).

    Returns the new row's id.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Writers queue here until the holder commits, so every row sees its true predecessor.
        connection.execute(_LOCK_TAIL, {"k": _AUDIT_LOCK})
    prev_hash = connection.execute(_TAIL_HASH).scalar_one_or_none() or GENESIS
    event = AuditEvent(
        at=utcnow(),
        actor=actor,
        verb=verb,
        alert_id=alert_id,
        run_id=run_id,
        step_id=step_id,
        details=scrub(details or {}),
        prev_hash=prev_hash,
    )
    event.hash = row_hash(event)
    # A Core INSERT: the row is never changed after this, so the ORM has nothing to track.
    values = {name: getattr(event, name) for name in _COLUMNS}
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


@dataclass(frozen=True)
class ChainReport:
    """The outcome of recomputing the audit chain."""

    ok: bool
    checked: int
    first_broken_id: int | None = None
    reason: str | None = None


def verify(session: Session) -> ChainReport:
    """Recompute every row's hash in order and name the first row that does not match."""
    prev_hash = GENESIS
    checked = 0
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars()
    for row in rows.yield_per(1000):
        if row.prev_hash != prev_hash:
            return ChainReport(False, checked, row.id, "prev_hash does not match the row before")
        expected = row_hash(row)
        if row.hash != expected:
            return ChainReport(False, checked, row.id, "content does not match its hash")
        prev_hash = row.hash
        checked += 1
    return ChainReport(True, checked)
