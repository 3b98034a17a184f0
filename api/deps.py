"""Shared dependencies: the runtime, a database session per request, and who is calling.

Sessions: ``SessionDep`` is a plain session, closed (rolled back if still open) after the
request. A route that writes wraps its service call in ``with session.begin():`` so the commit
happens inside the route, before the answer: a 2xx always means committed, and a failed commit
is an error answer instead of a lost write.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.errors import ApiError
from api.schemas import Text
from engine import audit
from engine.library import PlaybookLibrary
from engine.store import tokens
from riposte.settings import Settings


@dataclass(frozen=True)
class Runtime:
    """What one app instance holds: settings, database, playbooks, metrics."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    library: PlaybookLibrary
    registry: CollectorRegistry


def get_runtime(request: Request) -> Runtime:
    """Return the runtime the app was created with."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_settings(runtime: RuntimeDep) -> Settings:
    """Return the settings the app was created with (not re-read from the environment)."""
    return runtime.settings


def get_library(runtime: RuntimeDep) -> PlaybookLibrary:
    """Return the playbook library, which reloads itself when its files change."""
    return runtime.library


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """Yield a session for one request; writes commit inside the route (see module doc)."""
    with runtime.sessions() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
LibraryDep = Annotated[PlaybookLibrary, Depends(get_library)]
SessionDep = Annotated[Session, Depends(get_session)]

Limit = Annotated[int, Query(ge=1, le=1000, description="Most items to return.")]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1, description="Items to skip.")]
# Ids in paths and filters are checked like body text, so every backend answers them alike.
IdInPath = Annotated[Text, Path(min_length=1, max_length=128, description="An id the API gave.")]
IdFilter = Annotated[Text | None, Query(min_length=1, max_length=128)]


@dataclass(frozen=True)
class BodyDigest:
    """The SHA-256 and size of the raw request body, kept with each delivery."""

    sha256: str
    size: int


async def get_body_digest(request: Request) -> BodyDigest:
    """Return the digest of the request body."""
    body = await request.body()  # cached by Starlette: the body parameter reads the same bytes
    return BodyDigest(sha256=hashlib.sha256(body).hexdigest(), size=len(body))


BodyDigestDep = Annotated[BodyDigest, Depends(get_body_digest)]

# ---------------------------------------------------------------------------------------------
# Authentication and roles

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer rip_…`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Caller:
    """The token a request was made with: its name (the actor in the audit log) and role."""

    name: str
    role: str


def authenticate(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Return the caller of a live bearer token, or answer 401 (and audit the refusal)."""
    if credentials is None:
        reason = "no bearer token"
    else:
        # Its own transaction: a refusal's audit row must commit although the request fails.
        with runtime.sessions.begin() as session:
            token = tokens.authenticate(session, credentials.credentials)
            if token is not None:
                return Caller(name=token.name, role=token.role)
        reason = "token unknown, revoked or expired"
    _refuse(runtime, request, actor="anonymous", reason=reason)
    raise ApiError(401, f"authentication required: {reason}; send Authorization: Bearer <token>",
                   headers=_CHALLENGE)


def require(*roles: str) -> Callable[..., Caller]:
    """Return a dependency admitting tokens of ``roles`` (admin is always admitted)."""
    allowed = tuple(dict.fromkeys((*roles, "admin")))

    def guard(
        request: Request, runtime: RuntimeDep, caller: Annotated[Caller, Depends(authenticate)]
    ) -> Caller:
        if caller.role in allowed:
            return caller
        reason = f"role {caller.role!r} may not do this (needs {' or '.join(allowed)})"
        _refuse(runtime, request, actor=caller.name, reason=reason)
        raise ApiError(403, f"token {caller.name!r}: {reason}")

    return guard


IngestCaller = Annotated[Caller, Depends(require("ingest"))]
ResponderCaller = Annotated[Caller, Depends(require("responder"))]
AdminCaller = Annotated[Caller, Depends(require())]


def _refuse(runtime: Runtime, request: Request, *, actor: str, reason: str) -> None:
    # Never the token itself: the path, the method and why are enough to investigate.
    with runtime.sessions.begin() as session:
        audit.record(
            session,
            actor=actor,
            verb="auth.refused",
            details={"method": request.method, "path": request.url.path, "reason": reason},
        )
