"""Signing in to the console with an API token, and signing out.

The token is checked exactly as the API checks a bearer token (``api.deps.token_caller``:
same lookup, same audited refusal) and exchanged for a session naming it; the token itself is
never kept, in the cookie or anywhere. Only responder and admin tokens may sign in. Signing in
with the team's identity provider (OpenID Connect) is ``api/console/oidc.py``'s, which ends in
the same :func:`~api.console.sessions.start_session`.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from api.console import csrf
from api.console.access import (
    SIGN_IN,
    SIGNED_OUT_WHY,
    PostedForm,
    ViewerDep,
    safe_next,
)
from api.console.pages import render
from api.console.sessions import ConsoleIdentity, caller_of, end_session, start_session
from api.deps import Runtime, RuntimeDep, refused, token_caller
from engine import audit
from engine.identities import DECIDING_ROLES

log = logging.getLogger("riposte.console")
router = APIRouter(include_in_schema=False)

TOKEN_LIMIT = 512


def sign_in_page(request: Request, runtime: Runtime, *, next_path: str, status: int = 200,
                 message: str | None = None, message_kind: str = "info") -> HTMLResponse:
    """The sign-in form (a fresh CSRF token and its cookie with it)."""
    token = csrf.new_token()
    page = render("sign_in.html", status=status, viewer=None, nav="sign-in",
                  next_path=next_path, oidc_provider=_provider(runtime), message=message,
                  message_kind=message_kind, csrf_token=token)
    csrf.set_sign_in_cookie(request, page, token)
    return page


def _provider(runtime: Runtime) -> str | None:
    """The identity provider's host name, when OpenID Connect sign-in is configured."""
    issuer = runtime.settings.oidc_issuer
    return (urlsplit(issuer).hostname or issuer) if issuer else None


@router.get(SIGN_IN)
def sign_in_form(
    request: Request, runtime: RuntimeDep,
    next_path: Annotated[str | None, Query(alias="next", max_length=2048)] = None,
    why: Annotated[str | None, Query(max_length=32)] = None,
) -> HTMLResponse:
    """The sign-in page: paste an API token, or sign in with the identity provider."""
    return sign_in_page(request, runtime, next_path=safe_next(next_path),
                        message=SIGNED_OUT_WHY.get(why or ""))


@router.post(SIGN_IN, response_model=None)
async def sign_in(request: Request, form: csrf.FormDep,
                  runtime: RuntimeDep) -> HTMLResponse | RedirectResponse:
    """Check the token as the API would and start a session naming it."""
    csrf.check_sign_in(request, form.get(csrf.FIELD))
    next_path = safe_next(form.get("next"))
    secret = form.get("token", "").strip()
    if not secret:
        return sign_in_page(request, runtime, next_path=next_path, status=422,
                            message="Paste an API token (responder or admin).",
                            message_kind="error")
    caller = None
    if len(secret) <= TOKEN_LIMIT and secret.isascii() and secret.isprintable():
        caller = await token_caller(runtime, request, secret)
    if caller is None:
        return sign_in_page(request, runtime, next_path=next_path, status=401,
                            message="Not signed in: that token is unknown, revoked or expired.",
                            message_kind="error")
    if caller.role not in DECIDING_ROLES:
        reason = f"role {caller.role!r} may not use the console (needs responder or admin)"
        await refused(runtime, request, actor=caller.name, reason=reason)
        return sign_in_page(request, runtime, next_path=next_path, status=403,
                            message=f"Not signed in: token {caller.name!r} is an {caller.role} "
                                    "token; the console needs a responder or admin token.",
                            message_kind="error")
    identity = ConsoleIdentity(name=caller.name, role=caller.role, via="token")
    await run_in_threadpool(_audit_sign_in, runtime, identity, request)
    response = RedirectResponse(next_path, status_code=303)
    start_session(response, identity, request)
    csrf.forget_sign_in(response)
    return response


def _audit_sign_in(runtime: Runtime, identity: ConsoleIdentity, request: Request) -> None:
    address = request.client.host if request.client is not None else "unknown"
    with runtime.sessions.begin() as session:
        audit.record(session, actor=caller_of(identity).name, verb="console.signed_in",
                     details={"via": identity.via, "role": identity.role, "address": address})


@router.post("/ui/sign-out")
def sign_out(viewer: ViewerDep, form: PostedForm) -> RedirectResponse:
    """End the session (the cookie is deleted; an API token signed in with stays valid)."""
    response = RedirectResponse(SIGN_IN, status_code=303)
    end_session(response)
    log.info("%s signed out of the console", viewer.caller.name)
    return response
