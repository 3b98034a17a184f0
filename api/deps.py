"""Shared dependencies: the runtime, a database session per request, and who is calling.

Sessions: ``SessionDep`` is a plain session, closed (rolled back if still open) after the
request. A route that writes wraps its service call in ``with session.begin():`` so the commit
happens inside the route, before the answer: a 2xx always means committed, and a failed commit
is an error answer instead of a lost write.

Dependencies that do no I/O are ``async``: FastAPI runs a sync one in the thread pool, and each
such hop costs more than the work. Whatever talks to the database (a token not seen lately, the
audit row of a refusal) still runs in the thread pool, never on the event loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from anyio import CapacityLimiter
from fastapi import Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api import refusals
from api.errors import ApiError
from api.refusals import RefusalLedger
from core.settings import Settings
from engine import audit
from engine.library import PlaybookLibrary
from engine.sns import CertificateStore, ConfirmSubscription
from engine.store import tokens
from engine.store.types import utcnow


@dataclass(frozen=True)
class Caller:
    """The token a request was made with: its name (the actor in the audit log) and role."""

    name: str
    role: str


class VerifiedTokens:
    """Tokens found live in the database lately, by hash, each trusted until a deadline.

    The deadline is ``RIPOSTE_TOKEN_CACHE_SECONDS`` after the lookup, or the token's expiry if
    sooner: a token revoked in the meantime (by any process) keeps working at most that long.
    Only hashes are kept, never a token; refusals are never kept, so a new token works at once.
    """

    MAX_ENTRIES = 1024  # live tokens are few; past this, start again rather than grow

    def __init__(self) -> None:
        self._callers: dict[str, tuple[Caller, float]] = {}

    def get(self, digest: str) -> Caller | None:
        """Return the caller of a token hash verified before its deadline, else None."""
        entry = self._callers.get(digest)
        if entry is None or time.monotonic() >= entry[1]:
            return None
        return entry[0]

    def forget(self, digest: str) -> None:
        """Stop trusting the token of hash ``digest`` (revoked through this process)."""
        self._callers.pop(digest, None)

    def keep(self, digest: str, caller: Caller, *, seconds: float,
             expires_at: datetime | None) -> None:
        """Trust ``caller`` for ``seconds`` from now (not past ``expires_at``)."""
        if expires_at is not None:
            seconds = min(seconds, (expires_at - utcnow()).total_seconds())
        if seconds <= 0:
            return
        if len(self._callers) >= self.MAX_ENTRIES:
            self._callers.clear()
        self._callers[digest] = (caller, time.monotonic() + seconds)


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
    verified_tokens: VerifiedTokens = field(default_factory=VerifiedTokens)
    # How many deliveries are stored in worker threads at once (RIPOSTE_INGEST_THREADS).
    ingest_threads: CapacityLimiter = field(init=False)
    # Which refusals of anonymous senders are recorded one by one (api.refusals).
    refusals: RefusalLedger = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ingest_threads", CapacityLimiter(self.settings.ingest_threads))
        object.__setattr__(self, "refusals", RefusalLedger(
            per_address=self.settings.anonymous_refusals_per_address,
            per_minute=self.settings.anonymous_refusals_per_minute))


def runtime_of(request: Request) -> Runtime:
    """Return the runtime the app was created with."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    """Return the runtime the app was created with."""
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(runtime: RuntimeDep) -> Settings:
    """Return the settings the app was created with (not re-read from the environment)."""
    return runtime.settings


async def get_library(runtime: RuntimeDep) -> PlaybookLibrary:
    """Return the playbook library, which reloads itself when its files change."""
    return runtime.library


async def get_session(request: Request) -> AsyncIterator[Session]:
    """Yield a session for one request; writes commit inside the route (see module doc)."""
    async with _request_session(runtime_of(request)) as session:
        yield session


@asynccontextmanager
async def _request_session(runtime: Runtime) -> AsyncIterator[Session]:
    # Making a session does no I/O, nor does closing it once the route's transaction ended; a
    # route that only read leaves one open, whose rollback is closed in the thread pool.
    session = runtime.sessions()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


SettingsDep = Annotated[Settings, Depends(get_settings)]
LibraryDep = Annotated[PlaybookLibrary, Depends(get_library)]
SessionDep = Annotated[Session, Depends(get_session)]

# Ids in paths and filters are text with no control character (so no NUL, which neither
# database stores): the schema has the same pattern and bounds as the server. (A URL decodes
# to no lone surrogate: Starlette reads a bad percent-escape as U+FFFD.)
TEXT_PATTERN = r"^[^\u0000-\u001f\u007f]+$"
IdInPath = Annotated[str, Path(min_length=1, max_length=128, pattern=TEXT_PATTERN,
                               description="An id the API gave.")]
IdFilter = Annotated[str | None, Query(min_length=1, max_length=128, pattern=TEXT_PATTERN)]


@dataclass(frozen=True)
class BodyDigest:
    """The SHA-256 and size of the raw request body, kept with each delivery."""

    sha256: str
    size: int

    @classmethod
    def of(cls, body: bytes) -> BodyDigest:
        """Return the digest of ``body``."""
        return cls(sha256=hashlib.sha256(body).hexdigest(), size=len(body))


async def get_body_digest(request: Request) -> BodyDigest:
    """Return the digest of the request body."""
    # Cached by Starlette: the body parameter reads the same bytes.
    return BodyDigest.of(await request.body())


BodyDigestDep = Annotated[BodyDigest, Depends(get_body_digest)]


async def get_raw_body(request: Request) -> bytes:
    """Return the request body as sent (webhooks parse it themselves, whatever its type)."""
    return await request.body()


RawBodyDep = Annotated[bytes, Depends(get_raw_body)]


@dataclass(frozen=True)
class Incoming:
    """What a webhook stores: the body as sent, its digest, the runtime and a session."""

    body: bytes
    digest: BodyDigest
    runtime: Runtime
    session: Session


async def get_incoming(request: Request) -> AsyncIterator[Incoming]:
    """Yield the raw body (webhooks parse it themselves), its digest, the runtime and a session.

    One dependency instead of four: FastAPI's work per request grows with every dependency a
    route has, and the webhooks are the busiest routes.
    """
    runtime = runtime_of(request)
    body = await request.body()
    async with _request_session(runtime) as session:
        yield Incoming(body=body, digest=BodyDigest.of(body), runtime=runtime, session=session)


IncomingDep = Annotated[Incoming, Depends(get_incoming)]

# ---------------------------------------------------------------------------------------------
# Authentication and roles

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer rip_…`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


# The dependencies below read the runtime from the request rather than depend on get_runtime:
# every route runs them, and each dependency costs FastAPI work on every request.


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Return the caller of a live bearer token, or answer 401 (and audit the refusal)."""
    secret = credentials.credentials if credentials is not None else None
    return await _caller_of(runtime_of(request), request, secret, missing="no bearer token",
                            how="send Authorization: Bearer <token>")


async def authenticate_webhook(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Return the caller of the token in the API key header (EventBridge) or the bearer token."""
    runtime = runtime_of(request)
    header = runtime.settings.eventbridge_api_key_header
    secret = request.headers.get(header)
    if secret is None and credentials is not None:
        secret = credentials.credentials
    return await _caller_of(runtime, request, secret,
                            missing=f"no {header} header and no bearer token",
                            how=f"send the token in {header} or Authorization: Bearer <token>")


async def _caller_of(
    runtime: Runtime, request: Request, secret: str | None, *, missing: str, how: str
) -> Caller:
    if secret is None:
        await refused(runtime, request, actor="anonymous", reason=missing,
                      anonymous=refusals.MISSING)
        raise ApiError(401, f"authentication required: {missing}; {how}", headers=_CHALLENGE)
    caller = await token_caller(runtime, request, secret)
    if caller is None:
        raise ApiError(401, f"authentication required: {NOT_LIVE}; {how}", headers=_CHALLENGE)
    return caller


NOT_LIVE = "token unknown, revoked or expired"


async def token_caller(runtime: Runtime, request: Request, secret: str) -> Caller | None:
    """Return the caller of a live token, or None once the refusal is audited (as a 401 is).

    The API's bearer tokens and the console's token sign-in are checked here alike.
    """
    digest = tokens.token_hash(secret)
    caller = runtime.verified_tokens.get(digest)
    if caller is None:
        caller = await run_in_threadpool(_look_up_token, runtime, secret, digest)
    if caller is None:
        await refused(runtime, request, actor="anonymous", reason=NOT_LIVE,
                      anonymous=refusals.NOT_LIVE)
    return caller


def _look_up_token(runtime: Runtime, secret: str, digest: str) -> Caller | None:
    with runtime.sessions.begin() as session:
        token = tokens.authenticate(session, secret)
        if token is None:
            return None
        caller = Caller(name=token.name, role=token.role)
        runtime.verified_tokens.keep(digest, caller,
                                     seconds=runtime.settings.token_cache_seconds,
                                     expires_at=token.expires_at)
        return caller


BearerAuth = Annotated[Caller, Depends(authenticate)]
WebhookAuth = Annotated[Caller, Depends(authenticate_webhook)]


def require(
    *roles: str, webhook: bool = False
) -> Callable[..., Coroutine[Any, Any, Caller]]:
    """Return a dependency admitting tokens of ``roles`` (admin is always admitted).

    With ``webhook`` the token may also come in the EventBridge API key header.
    """
    allowed = tuple(dict.fromkeys((*roles, "admin")))

    async def guard(request: Request, caller: BearerAuth) -> Caller:
        return await _admit(runtime_of(request), request, caller, allowed)

    async def webhook_guard(request: Request, caller: WebhookAuth) -> Caller:
        return await _admit(runtime_of(request), request, caller, allowed)

    return webhook_guard if webhook else guard


async def _admit(
    runtime: Runtime, request: Request, caller: Caller, allowed: tuple[str, ...]
) -> Caller:
    if caller.role in allowed:
        return caller
    reason = f"role {caller.role!r} may not do this (needs {' or '.join(allowed)})"
    await refused(runtime, request, actor=caller.name, reason=reason)
    raise ApiError(403, f"token {caller.name!r}: {reason}")


IngestCaller = Annotated[Caller, Depends(require("ingest"))]
ResponderCaller = Annotated[Caller, Depends(require("responder"))]
AdminCaller = Annotated[Caller, Depends(require())]
# A metrics token reads the metrics and nothing else (no other route admits its role): a
# scraper's token may not act, approve containment or read an alert. A person may look too.
MetricsCaller = Annotated[Caller, Depends(require("metrics", "responder"))]
WebhookCaller = Annotated[Caller, Depends(require("ingest", webhook=True))]

SNS_CALLER = Caller(name="sns", role="ingest")
_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="riposte-sns"'}


async def authenticate_sns(request: Request) -> Caller:
    """Check the basic credentials of the SNS subscription URL when they are configured.

    The SNS signature is checked by the endpoint whatever this says.
    """
    runtime = runtime_of(request)
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
    await refused(runtime, request, actor="anonymous", reason=reason,
                  anonymous=refusals.MISSING if given is None else refusals.WRONG_BASIC)
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


async def refused(
    runtime: Runtime, request: Request, *, actor: str, reason: str, anonymous: str | None = None
) -> None:
    """Audit a refusal; one that proved no identity (``anonymous``: why) at a bounded rate."""
    if anonymous is not None and not refusals.recorded(request, anonymous):
        return
    # Never the token itself: the path, the method, the sender's address and why are enough.
    details = {"method": request.method, "path": request.url.path, "reason": reason,
               "address": request.client.host if request.client is not None else "unknown"}
    await run_in_threadpool(_audit_refusal, runtime, actor, details)


def _audit_refusal(runtime: Runtime, actor: str, details: dict[str, str]) -> None:
    # Its own transaction: a refusal's audit row must commit although the request fails.
    with runtime.sessions.begin() as session:
        audit.record(session, actor=actor, verb="auth.refused", details=details)
