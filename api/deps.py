"""Shared dependencies: the runtime, a database session per request, and who is calling.

Sessions: ``SessionDep`` is a plain session, closed (rolled back if still open) after the
request. A route that writes wraps its service call in ``with session.begin():`` so the commit
happens inside the route, before the answer: a 2xx always means committed, and a failed commit
is an error answer instead of a lost write.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
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
from engine.sns import CertificateStore, ConfirmSubscription
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
    sns_certificates: CertificateStore
    # A seam of our own: tests record the URL instead of visiting AWS.
    confirm_subscription: ConfirmSubscription


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


async def get_raw_body(request: Request) -> bytes:
    """Return the request body as sent (webhooks parse it themselves, whatever its type)."""
    return await request.body()


RawBodyDep = Annotated[bytes, Depends(get_raw_body)]

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
    secret = credentials.credentials if credentials is not None else None
    return _caller_of(runtime, request, secret, missing="no bearer token",
                      how="send Authorization: Bearer <token>")


def authenticate_webhook(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Return the caller of the token in the API key header (EventBridge) or the bearer token."""
    header = runtime.settings.eventbridge_api_key_header
    secret = request.headers.get(header)
    if secret is None and credentials is not None:
        secret = credentials.credentials
    return _caller_of(runtime, request, secret, missing=f"no {header} header and no bearer token",
                      how=f"send the token in {header} or Authorization: Bearer <token>")


def _caller_of(
    runtime: Runtime, request: Request, secret: str | None, *, missing: str, how: str
) -> Caller:
    if secret is None:
        reason = missing
    else:
        # Its own transaction: a refusal's audit row must commit although the request fails.
        with runtime.sessions.begin() as session:
            token = tokens.authenticate(session, secret)
            if token is not None:
                return Caller(name=token.name, role=token.role)
        reason = "token unknown, revoked or expired"
    _refuse(runtime, request, actor="anonymous", reason=reason)
    raise ApiError(401, f"authentication required: {reason}; {how}", headers=_CHALLENGE)


BearerAuth = Annotated[Caller, Depends(authenticate)]
WebhookAuth = Annotated[Caller, Depends(authenticate_webhook)]


def require(*roles: str, webhook: bool = False) -> Callable[..., Caller]:
    """Return a dependency admitting tokens of ``roles`` (admin is always admitted).

    With ``webhook`` the token may also come in the EventBridge API key header.
    """
    allowed = tuple(dict.fromkeys((*roles, "admin")))

    def guard(request: Request, runtime: RuntimeDep, caller: BearerAuth) -> Caller:
        return _admit(runtime, request, caller, allowed)

    def webhook_guard(request: Request, runtime: RuntimeDep, caller: WebhookAuth) -> Caller:
        return _admit(runtime, request, caller, allowed)

    return webhook_guard if webhook else guard


def _admit(runtime: Runtime, request: Request, caller: Caller, allowed: tuple[str, ...]) -> Caller:
    if caller.role in allowed:
        return caller
    reason = f"role {caller.role!r} may not do this (needs {' or '.join(allowed)})"
    _refuse(runtime, request, actor=caller.name, reason=reason)
    raise ApiError(403, f"token {caller.name!r}: {reason}")


IngestCaller = Annotated[Caller, Depends(require("ingest"))]
ResponderCaller = Annotated[Caller, Depends(require("responder"))]
AdminCaller = Annotated[Caller, Depends(require())]
WebhookCaller = Annotated[Caller, Depends(require("ingest", webhook=True))]

SNS_CALLER = Caller(name="sns", role="ingest")
_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="riposte-sns"'}


def authenticate_sns(request: Request, runtime: RuntimeDep) -> Caller:
    """Check the basic credentials of the SNS subscription URL when they are configured.

    The SNS signature is checked by the endpoint whatever this says.
    """
    expected = runtime.settings.sns_basic_auth
    if expected is None:
        return SNS_CALLER
    given = _basic_credentials(request.headers.get("authorization"))
    # Compared as bytes in constant time; neither value is ever logged or audited.
    if given is not None and hmac.compare_digest(
        given.encode("utf-8"), expected.get_secret_value().encode("utf-8")
    ):
        return SNS_CALLER
    reason = "no basic credentials" if given is None else "wrong basic credentials"
    _refuse(runtime, request, actor="anonymous", reason=reason)
    raise ApiError(401, f"authentication required: {reason}; put the user and password "
                        "configured in RIPOSTE_SNS_BASIC_AUTH in the subscription URL",
                   headers=_BASIC_CHALLENGE)


def _basic_credentials(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


SnsCaller = Annotated[Caller, Depends(authenticate_sns)]


def _refuse(runtime: Runtime, request: Request, *, actor: str, reason: str) -> None:
    # Never the token itself: the path, the method and why are enough to investigate.
    with runtime.sessions.begin() as session:
        audit.record(
            session,
            actor=actor,
            verb="auth.refused",
            details={"method": request.method, "path": request.url.path, "reason": reason},
        )
