"""Who is looking at a console page: the signed-in person, checked on every request.

A session made with an API token lasts only while that token is live: each request looks the
token up by name, so a revoked or expired token signs its sessions out at their next click. Only
roles that may read the API's runs and decide (responder, admin) use the console.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Literal
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request

from api.console import csrf
from api.console.sessions import ConsoleIdentity, caller_of, has_session_cookie, read_session
from api.deps import Caller, runtime_of
from engine.identities import DECIDING_ROLES
from engine.store.tokens import live_token

SIGN_IN = "/ui/sign-in"
HOME = "/ui/"
# Why a person was signed out, by the key the sign-in page is given (never free text in a URL).
SignedOutWhy = Literal["expired", "revoked", "role"]
SIGNED_OUT_WHY: dict[str, str] = {
    "expired": "Your session has ended; sign in again.",
    "revoked": "The token you signed in with has been revoked or has expired; sign in again "
               "with a live one.",
    "role": "Your role cannot use the console (it needs responder or admin).",
}


@dataclass(frozen=True)
class Viewer:
    """The person a page is for: who they are, who they act as, their forms' CSRF secret."""

    identity: ConsoleIdentity
    caller: Caller
    csrf: str


class SignedOut(Exception):
    """The request has no live session: the person is sent to sign in (and back after)."""

    def __init__(self, why: SignedOutWhy | None) -> None:
        super().__init__(why or "not signed in")
        self.why = why


def current_viewer(request: Request) -> Viewer:
    """Return the signed-in person, or raise ``SignedOut``.

    Sync on purpose: FastAPI runs it in the thread pool, where the token lookup may block.
    """
    session = read_session(request)
    if session is None:
        raise SignedOut("expired" if has_session_cookie(request) else None)
    identity = session.identity
    if identity.via == "token":
        with runtime_of(request).sessions() as db:
            token = live_token(db, identity.name)
            role = token.role if token is not None else None
        if role is None:
            raise SignedOut("revoked")
        identity = replace(identity, role=role)
    if identity.role not in DECIDING_ROLES:
        raise SignedOut("role")
    return Viewer(identity=identity, caller=caller_of(identity), csrf=session.csrf)


ViewerDep = Annotated[Viewer, Depends(current_viewer)]


async def checked_form(viewer: ViewerDep, form: csrf.FormDep) -> dict[str, str]:
    """Return a signed-in person's posted form once its CSRF token is checked."""
    csrf.check(viewer.csrf, form.get(csrf.FIELD))
    return form


PostedForm = Annotated[dict[str, str], Depends(checked_form)]


def sign_in_url(next_path: str | None = None, why: SignedOutWhy | None = None) -> str:
    """Return the sign-in page's URL, coming back to ``next_path`` (a local path) after."""
    query = []
    if next_path and safe_next(next_path) == next_path and next_path != HOME:
        query.append(f"next={quote(next_path, safe='/')}")
    if why is not None:
        query.append(f"why={why}")
    return SIGN_IN + ("?" + "&".join(query) if query else "")


def safe_next(value: str | None) -> str:
    """Return ``value`` if it is a console path of this site, else the inbox.

    Never another site (``//evil.example``, ``https://…``, ``/\\evil``): an open redirect after
    sign-in would lend Riposte's name to a phishing page.
    """
    if not value or not (value == "/ui" or value.startswith("/ui/")):
        return HOME
    if value.startswith(SIGN_IN):  # back to the sign-in page would only ask again
        return HOME
    if "\\" in value or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return HOME
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        return HOME
    return value
