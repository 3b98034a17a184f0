"""API tokens: created once, shown once, stored as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import audit
from engine.identities import ROLES, token_name_problem
from engine.store.errors import Conflict, NotFound
from engine.store.models import ApiToken
from engine.store.types import utcnow

PREFIX = "rip_"


def token_hash(token: str) -> str:
    """Hash a token for storage and lookup (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    *, session: Session, name: str, role: str, expires_at: datetime | None = None,
    actor: str = "cli",
) -> str:
    """Create a token and return its only plaintext copy.

    Its name must not be reserved (a role's, or an actor Riposte writes itself, such as
    ``system``) nor hold a ``:``: ``engine.identities.token_name_problem`` says why not.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    problem = token_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        with session.begin_nested():
            session.add(
                ApiToken(name=name, role=role, token_hash=token_hash(token), expires_at=expires_at)
            )
    except IntegrityError:
        raise Conflict(f"a token named {name!r} already exists") from None
    audit.record(session, actor=actor, verb="token.created", details={"name": name, "role": role})
    return token


def authenticate(session: Session, token: str) -> ApiToken | None:
    """Return the live token matching ``token``: not unknown, revoked or expired."""
    row = session.execute(
        select(ApiToken).where(ApiToken.token_hash == token_hash(token))
    ).scalars().first()
    return row if row is not None and _live(row) else None


def live_token(session: Session, name: str) -> ApiToken | None:
    """Return the token called ``name`` while it is live (not revoked, not expired), else None.

    A console session made with a token names it; each request checks it is still live.
    """
    row = session.execute(select(ApiToken).where(ApiToken.name == name)).scalars().first()
    return row if row is not None and _live(row) else None


def _live(row: ApiToken) -> bool:
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > utcnow())


def revoke_token(*, session: Session, name: str, actor: str = "cli") -> ApiToken:
    """Revoke the token called ``name`` (the API stops it within RIPOSTE_TOKEN_CACHE_SECONDS)."""
    row = get_token(session, name)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(
            session, actor=actor, verb="token.revoked", details={"name": name, "role": row.role}
        )
    return row


def get_token(session: Session, name: str) -> ApiToken:
    """Return the token called ``name`` (never its secret: only its hash is stored)."""
    row = session.execute(select(ApiToken).where(ApiToken.name == name)).scalars().first()
    if row is None:
        raise NotFound(f"no token named {name!r}")
    return row


def list_tokens(
    session: Session, *, limit: int | None = None, after_id: str | None = None
) -> Sequence[ApiToken]:
    """Tokens, oldest first (names and roles only are of use: secrets are not stored).

    Ids are time-ordered (to the millisecond); ``after_id``: only those after that token.
    """
    query = select(ApiToken).order_by(ApiToken.id).limit(limit)
    if after_id is not None:
        query = query.where(ApiToken.id > after_id)
    return session.execute(query).scalars().all()
