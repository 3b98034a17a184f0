"""Signed checkpoints appended to the audit log: writing one, and when the workers do.

A checkpoint is an audit event (``audit.checkpoint``) whose details carry the signed statement
of the chain before it (``engine.audit_signing``): no table of its own, and it is chained like
any event, so removing one breaks the chain or the next checkpoint. The workers' housekeeping
signs one every ``RIPOSTE_AUDIT_CHECKPOINT_SECONDS`` when events were appended since the last
(``Checkpointer``); ``riposte audit checkpoint`` signs one at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Table, select
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings, SettingsInvalid, variable
from engine import audit
from engine.audit_signing import (
    CHECKPOINT_VERB,
    Checkpoint,
    CheckpointMalformed,
    SignedCheckpoint,
    SigningKeyInvalid,
    key_id,
    load_private_key,
    sign,
)
from engine.store.models import AuditChain, AuditEvent
from engine.store.types import utcnow

log = logging.getLogger("riposte.audit")
_EVENTS = cast(Table, AuditEvent.__table__)
_CHAIN = cast(Table, AuditChain.__table__)
# Taking the tail's row lock first holds every other append off until the checkpoint's own
# (SQLite: the transaction already holds the database's write lock).
_LOCK_TAIL = (
    select(_CHAIN.c.hash, _CHAIN.c.event_count).where(_CHAIN.c.id == 1).with_for_update()
)
_NEWEST_CHECKPOINT = (
    select(_EVENTS.c.id, _EVENTS.c.at, _EVENTS.c.hash, _EVENTS.c.details)
    .where(_EVENTS.c.verb == CHECKPOINT_VERB).order_by(_EVENTS.c.id.desc()).limit(1)
)


@dataclass(frozen=True)
class Written:
    """A checkpoint just appended: its event's id and what it signed."""

    event_id: int
    checkpoint: Checkpoint


def write_checkpoint(
    session: Session, *, key: Ed25519PrivateKey, actor: str, unless_within: float | None = None
) -> Written | None:
    """Sign the chain as it stands and append the checkpoint, in the caller's transaction.

    Returns None, writing nothing, when no event was appended since the newest checkpoint, or
    when that one is younger than ``unless_within`` seconds (another worker just wrote it).
    """
    connection = session.connection()
    tail = connection.execute(_LOCK_TAIL).one_or_none()
    if tail is None:
        raise NoResultFound("the audit chain has no tail row (audit_chain id 1): the database "
                            "was not migrated with `riposte db upgrade`")
    newest = connection.execute(_NEWEST_CHECKPOINT).one_or_none()
    now = utcnow()
    if newest is not None:
        if newest.hash == tail.hash:
            return None
        if unless_within is not None and newest.at > now - timedelta(seconds=unless_within):
            return None
    checkpoint = Checkpoint(
        rows=tail.event_count, tail=tail.hash, at=now.isoformat(),
        previous=_signature_of(newest.id, newest.details) if newest is not None else None,
        key_id=key_id(key.public_key()),
    )
    signed = sign(checkpoint, key)
    event_id = audit.record(session, actor=actor, verb=CHECKPOINT_VERB, details=signed.details())
    assert event_id is not None  # no joined write: record returns the id or raises
    return Written(event_id=event_id, checkpoint=checkpoint)


def _signature_of(event_id: int, details: object) -> str:
    try:
        return SignedCheckpoint.from_details(details).signature
    except CheckpointMalformed as exc:
        raise CheckpointMalformed(
            f"the newest checkpoint (audit row {event_id}) is malformed ({exc}), so no "
            "checkpoint can follow it: run `riposte audit verify --public-key FILE`"
        ) from exc


def newest_checkpoint_at(connection: Connection) -> datetime | None:
    """Return when the newest checkpoint was written (None: there is none)."""
    newest = connection.execute(_NEWEST_CHECKPOINT).one_or_none()
    return newest.at if newest is not None else None


def signing_key(settings: Settings) -> Ed25519PrivateKey | None:
    """Load the key ``RIPOSTE_AUDIT_SIGNING_KEY`` names (None: unset); raise SettingsInvalid."""
    if settings.audit_signing_key is None:
        return None
    try:
        return load_private_key(settings.audit_signing_key)
    except SigningKeyInvalid as exc:
        raise SettingsInvalid([f"{variable('audit_signing_key')}: {exc}"]) from exc


class Checkpointer:
    """Signs a checkpoint when the newest is ``every`` seconds old; the workers call it often.

    Between looks it only compares clocks: it reads the database once per ``every`` seconds at
    most, however often it is called. Looks are safe from every worker at once:
    ``write_checkpoint`` checks again under the tail's lock.
    """

    def __init__(
        self, *, key: Ed25519PrivateKey | None, every: float, sessions: sessionmaker[Session],
        actor: str,
    ) -> None:
        self.key = key
        self.every = every
        self.sessions = sessions
        self.actor = actor
        self._next_look = 0.0  # time.monotonic() of the next look at the database

    @classmethod
    def from_settings(
        cls, settings: Settings, *, sessions: sessionmaker[Session], actor: str
    ) -> Checkpointer:
        """Build it from the settings; an unusable key file raises SettingsInvalid at once."""
        return cls(key=signing_key(settings), every=settings.audit_checkpoint_seconds,
                   sessions=sessions, actor=actor)

    def sign_if_due(self, now: float | None = None) -> Written | None:
        """Write a checkpoint if one is due; return it (None: none due, or no key set).

        ``now``: ``time.monotonic()``, if the caller has it.
        """
        now = time.monotonic() if now is None else now
        if self.key is None or now < self._next_look:
            return None
        with self.sessions() as session:
            newest_at = newest_checkpoint_at(session.connection())
        age = (utcnow() - newest_at).total_seconds() if newest_at is not None else self.every
        if age < self.every:
            self._next_look = now + self.every - age
            return None
        with self.sessions.begin() as session:
            written = write_checkpoint(session, key=self.key, actor=self.actor,
                                       unless_within=self.every)
        self._next_look = now + self.every
        if written is not None:
            log.info("audit checkpoint at row %d: %d events signed", written.event_id,
                     written.checkpoint.rows)
        return written
