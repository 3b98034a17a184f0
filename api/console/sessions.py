"""Console sessions: who signed in, carried in a signed cookie, and who that is to the API.

A session is a cookie signed with ``RIPOSTE_CONSOLE_SECRET_KEY`` (itsdangerous, HMAC-SHA256)
holding the identity — name, role, how the person signed in (``token`` with the token's name,
or ``oidc`` with the subject and e-mail) — the secret the session's forms carry (CSRF), and the
time it was made; it is refused once ``RIPOSTE_CONSOLE_SESSION_HOURS`` old. Signed, not
encrypted: nothing in it is secret from its own holder, and an API token never enters it.

The cookie is ``HttpOnly``, ``SameSite=Lax`` (a link from an approval notice opens the page
signed in; another site's form posts without it) and ``Secure`` — named ``__Host-…`` so that no
other host under the same domain can plant one — unless the console is reached over plain
http on this machine (127.0.0.1, ::1, localhost: the demo and the tests), where browsers would
drop a Secure cookie.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from itsdangerous import BadData, URLSafeTimedSerializer

from api.deps import Caller
from core.settings import Settings

log = logging.getLogger("riposte.console")

COOKIE = "riposte_session"
SECURE_COOKIE = "__Host-riposte_session"
_SALT = "riposte.console.session"
Via = Literal["token", "oidc"]


@dataclass(frozen=True)
class ConsoleIdentity:
    """A person signed in to the console: their name, their role, and how they signed in.

    ``via`` is ``token`` (``name`` is the API token's name) or ``oidc`` (``subject`` and
    ``email`` are what the identity provider said).
    """

    name: str
    role: str
    via: str
    subject: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class ConsoleSession:
    """What a valid session cookie holds: the identity and the secret its forms carry."""

    identity: ConsoleIdentity
    csrf: str


def caller_of(identity: ConsoleIdentity) -> Caller:
    """Return the API caller a console identity acts as: the one place that decides it.

    The name is the actor of every audit row and decision the person makes: the token's name,
    or for OpenID Connect the e-mail (``oidc:<subject>`` when the provider gives no e-mail: a
    token's name has no ':', so no token can pass for that person), never "console".
    """
    if identity.via == "oidc":
        return Caller(name=identity.email or f"oidc:{identity.subject or identity.name}",
                      role=identity.role)
    return Caller(name=identity.name, role=identity.role)


class SessionSigner:
    """Makes and reads session cookies with one key; sessions last ``max_age`` seconds."""

    def __init__(self, key: str | bytes, *, max_age: int) -> None:
        self.max_age = max_age
        self._key = key
        self._serializer = URLSafeTimedSerializer(key, salt=_SALT)

    def sibling(self, salt: str) -> URLSafeTimedSerializer:
        """Return a serializer with the same key for another purpose (its own ``salt``)."""
        return URLSafeTimedSerializer(self._key, salt=salt)

    def dumps(self, session: ConsoleSession) -> str:
        """Return the cookie value of ``session``."""
        identity = session.identity
        payload = {"n": identity.name, "r": identity.role, "v": identity.via,
                   "s": identity.subject, "e": identity.email, "c": session.csrf}
        return self._serializer.dumps(payload)

    def loads(self, value: str) -> ConsoleSession | None:
        """Return the session of a cookie value: None if forged, altered or too old."""
        try:
            payload: Any = self._serializer.loads(value, max_age=self.max_age)
        except BadData:
            return None
        try:
            identity = ConsoleIdentity(name=str(payload["n"]), role=str(payload["r"]),
                                       via=str(payload["v"]), subject=payload.get("s"),
                                       email=payload.get("e"))
            return ConsoleSession(identity=identity, csrf=str(payload["c"]))
        except (KeyError, TypeError):  # signed by us, but by an older shape: sign in again
            return None


def install_signer(app: FastAPI, settings: Settings) -> None:
    """Give the app its session signer, keyed by ``RIPOSTE_CONSOLE_SECRET_KEY``.

    Unset, the key is random and this process's own (``riposte serve`` warns of it through
    ``Settings.warnings``): every session ends when the process does.
    """
    configured = settings.console_secret_key
    key = configured.get_secret_value() if configured is not None else secrets.token_bytes(32)
    max_age = max(1, int(settings.console_session_hours * 3600))
    app.state.console_sessions = SessionSigner(key, max_age=max_age)


def signer_of(request: Request) -> SessionSigner:
    """Return the app's session signer."""
    signer: SessionSigner = request.app.state.console_sessions
    return signer


def start_session(response: Response, identity: ConsoleIdentity, request: Request) -> None:
    """Sign ``identity`` in: set a new session cookie (a new CSRF secret with it) on ``response``.

    Whatever session the browser had is replaced, never extended.
    """
    signer = signer_of(request)
    session = ConsoleSession(identity=identity, csrf=secrets.token_urlsafe(32))
    secure = is_secure(request)
    response.set_cookie(
        SECURE_COOKIE if secure else COOKIE, signer.dumps(session), max_age=signer.max_age,
        path="/", secure=secure, httponly=True, samesite="lax",
    )
    log.info("%s signed in to the console (%s, %s)", caller_of(identity).name, identity.via,
             identity.role)


def end_session(response: Response) -> None:
    """Sign out: delete the session cookie (both names: the response may not know which)."""
    response.delete_cookie(SECURE_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")


def read_session(request: Request) -> ConsoleSession | None:
    """Return the request's valid session, or None (no cookie, or one forged or too old).

    Over https only the ``__Host-`` cookie counts: a plain one could have been planted.
    """
    value = request.cookies.get(SECURE_COOKIE if is_secure(request) else COOKIE)
    return signer_of(request).loads(value) if value else None


def has_session_cookie(request: Request) -> bool:
    """Whether the request carries a session cookie at all (valid or not)."""
    return SECURE_COOKIE in request.cookies or COOKIE in request.cookies


def is_secure(request: Request) -> bool:
    """Whether cookies must be Secure: always, but over plain http to this machine."""
    if request.url.scheme == "https":
        return True
    return not _loopback(request.url.hostname or "")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
