"""Sign-in to the console with OpenID Connect: the authorization code flow with PKCE.

``GET /ui/sign-in/oidc?next=/ui/…`` sends the browser to the provider's authorization endpoint
with a state, a nonce and a PKCE S256 challenge. What the callback needs to check the answer
(the state, the nonce, the code verifier, where to go next) travels in a short-lived HttpOnly
cookie signed with the console's session key (``RIPOSTE_CONSOLE_SECRET_KEY``), not in this
process's memory, so that any API replica can take the callback (``oidc_flow.py``).
``GET /ui/sign-in/oidc/callback`` checks the state, exchanges the code with the verifier,
validates the ID token with the provider's published keys (signature, issuer, audience, expiry,
nonce; ``oidc_provider.py``), maps the person's groups to a role (``RIPOSTE_OIDC_ROLES``, the
highest wins) and starts a console session as that person.

A sign-in that fails is a page saying what went wrong — 4xx, or 502 when the provider cannot be
reached or answers what no provider should — and an audit row ``console.sign_in_refused``: as
the person when the provider vouched for them (signed in, but given no role that may use the
console), else as ``anonymous`` at the bounded rate of api/refusals.py, since anyone can send a
browser to the callback.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import refusals
from api.console.access import HOME, safe_next
from api.console.oidc_flow import (
    FLOW_COOKIE,
    FLOW_COOKIE_PATH,
    FLOW_SECONDS,
    Flow,
    open_flow,
    seal_flow,
)
from api.console.oidc_provider import MAX_SHOWN, Provider, SignInRefused
from api.console.sessions import ConsoleIdentity, caller_of, is_secure, start_session
from api.console.signin import sign_in_page
from api.deps import Runtime, runtime_of
from core.settings import Role, Settings, variable
from engine import audit
from engine.identities import DECIDING_ROLES, NAME_LIMIT

log = logging.getLogger("riposte.api")

router = APIRouter(prefix="/ui/sign-in/oidc", include_in_schema=False)

ROLES_LOWEST_FIRST: tuple[str, ...] = get_args(Role)
# api/refusals.py's label for a refused sign-in that no provider vouched for.
UNPROVEN = "oidc_unproven"


def role_for_groups(groups: list[str], roles: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """Return the highest role the mapped ones among ``groups`` give, with those groups; None
    when no group is mapped."""
    mapped = sorted({group for group in groups if group in roles})
    if not mapped:
        return None
    return max((roles[group] for group in mapped), key=ROLES_LOWEST_FIRST.index), mapped


# ---------------------------------------------------------------------------------------------
# The routes


def provider_of(request: Request) -> Provider | None:
    """Return the app's OIDC provider, made on first use; None when no issuer is configured."""
    settings = runtime_of(request).settings
    if settings.oidc_issuer is None or settings.oidc_client_id is None:
        return None
    provider: Provider | None = getattr(request.app.state, "oidc_provider", None)
    if provider is None:
        secret = settings.oidc_client_secret
        provider = Provider(issuer=settings.oidc_issuer, client_id=settings.oidc_client_id,
                            client_secret=secret.get_secret_value() if secret else None)
        request.app.state.oidc_provider = provider
    return provider


def redirect_uri(request: Request, settings: Settings) -> str:
    """Return the callback's address: under RIPOSTE_PUBLIC_URL, else as this request reached us
    (the demo, tests; behind a proxy set RIPOSTE_PUBLIC_URL)."""
    if settings.public_url:
        return f"{settings.public_url.rstrip('/')}{router.prefix}/callback"
    return str(request.url_for("oidc_callback"))


@router.get("", name="oidc_sign_in")
async def begin_sign_in(
    request: Request, next_path: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """Send the browser to the identity provider, with a state, a nonce and a PKCE challenge."""
    provider = provider_of(request)
    if provider is None:
        return _not_configured(request)
    try:
        configuration = await provider.configuration()
    except SignInRefused as refused:
        return await _refuse(request, refused)
    settings = runtime_of(request).settings
    flow = Flow.begin(next_path=safe_next(next_path),
                      redirect_uri=redirect_uri(request, settings))
    query = urlencode({
        "response_type": "code", "client_id": provider.client_id,
        "redirect_uri": flow.redirect_uri, "scope": settings.oidc_scopes,
        "state": flow.state, "nonce": flow.nonce,
        "code_challenge": create_s256_code_challenge(flow.verifier),  # type: ignore[no-untyped-call]
        "code_challenge_method": "S256",
    })
    endpoint = configuration.authorization_endpoint
    response = RedirectResponse(f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", 302,
                                headers={"Cache-Control": "no-store"})
    # SameSite=Lax, not Strict: the provider sends the browser back with a cross-site GET.
    response.set_cookie(FLOW_COOKIE, seal_flow(request, flow), max_age=FLOW_SECONDS,
                        path=FLOW_COOKIE_PATH, secure=is_secure(request), httponly=True,
                        samesite="lax")
    return response


@router.get("/callback", name="oidc_callback")
async def finish_sign_in(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> Response:
    """Check the provider's answer and start a console session as the person it vouches for."""
    provider = provider_of(request)
    if provider is None:
        return _not_configured(request)
    flow = open_flow(request)
    response: Response
    try:
        identity, details = await _identity(request, provider, flow, code=code, state=state,
                                            error=error, error_description=error_description)
    except SignInRefused as refused:
        response = await _refuse(request, refused, next_path=flow.next if flow else HOME)
    else:
        assert flow is not None  # _identity refuses a sign-in without one
        response = RedirectResponse(flow.next, 303, headers={"Cache-Control": "no-store"})
        # The verb and the actor of a token's sign-in (api/console/signin.py): one for both.
        await run_in_threadpool(_record, runtime_of(request), caller_of(identity).name,
                                "console.signed_in", details)
        start_session(response, identity, request)
    # Good for one callback: a replayed answer finds no flow to match.
    response.delete_cookie(FLOW_COOKIE, path=FLOW_COOKIE_PATH, secure=is_secure(request),
                           httponly=True, samesite="lax")
    return response


async def _identity(
    request: Request, provider: Provider, flow: Flow | None, *, code: str | None,
    state: str | None, error: str | None, error_description: str | None,
) -> tuple[ConsoleIdentity, dict[str, Any]]:
    """Return who the provider's answer proves the person is, and the audit row's details."""
    if flow is None:
        raise SignInRefused(400, "This browser has no sign-in under way here: it began on "
                            f"another site, more than {FLOW_SECONDS // 60} minutes ago, or "
                            "with cookies blocked. Start again.", reason="no_flow")
    # An error answer fails the sign-in whatever its state, so one without any is still shown
    # (RFC 6749 4.1.2.1 asks for the state, but some providers leave it out of a refusal).
    if (state is not None or error is None) and not secrets.compare_digest(state or "",
                                                                             flow.state):
        raise SignInRefused(400, "The provider's answer does not belong to the sign-in this "
                            "browser started (its state differs). Start again.",
                            reason="state_mismatch")
    if error is not None:
        said = error[:MAX_SHOWN] + (f" ({error_description[:MAX_SHOWN]})"
                                    if error_description else "")
        raise SignInRefused(403 if error == "access_denied" else 400,
                            f"The identity provider did not sign you in: {said}.",
                            reason="provider_refused", details={"error": error[:MAX_SHOWN]})
    if not code:
        raise SignInRefused(400, "The provider's answer carries no authorization code. Start "
                            "again.", reason="no_code")
    tokens = await provider.exchange(flow, code)
    access_token = tokens.get("access_token")
    access_token = access_token if isinstance(access_token, str) else None
    claims = await provider.verify_id_token(tokens["id_token"], nonce=flow.nonce,
                                            access_token=access_token)
    settings = runtime_of(request).settings
    groups_claim = settings.oidc_groups_claim
    if access_token and (groups_claim not in claims or "email" not in claims):
        extra = await provider.userinfo(access_token)
        if extra and extra.get("sub") != claims["sub"]:  # OIDC Core 5.3.2: must be the same
            raise SignInRefused(502, "The identity provider's userinfo answer is about another "
                                "subject than its ID token.", reason="provider_error")
        claims = {**extra, **claims}
    return _person(claims, settings)


def _person(claims: dict[str, Any], settings: Settings) -> tuple[ConsoleIdentity, dict[str, Any]]:
    subject = str(claims["sub"])
    given_email = claims.get("email") if isinstance(claims.get("email"), str) else None
    # An address the provider says it has not verified is anyone's to claim (the name of
    # another person, even): it neither names the person nor goes into the session.
    verified = claims.get("email_verified") is not False
    email = given_email if verified and given_email and len(given_email) <= NAME_LIMIT else None
    name = email or f"oidc:{subject}"
    # Who the person is in the audit log and on their decisions, as sessions.py decides it
    # (from the name, subject and e-mail only: the role is not known yet).
    actor = caller_of(ConsoleIdentity(name=name, role="", via="oidc", subject=subject,
                                      email=email)).name
    claim = settings.oidc_groups_claim
    given = claims.get(claim)
    groups = [given] if isinstance(given, str) else [
        group for group in given if isinstance(group, str)] if isinstance(given, list) else []
    details: dict[str, Any] = {"via": "oidc", "issuer": settings.oidc_issuer,
                               "subject": subject, "email": given_email}
    if not verified:
        details["email_verified"] = False
    if len(actor) > NAME_LIMIT:
        raise SignInRefused(403, f"Your identity at the provider (subject {subject[:64]!r}…) is "
                            f"longer than Riposte's names ({NAME_LIMIT} characters).",
                            reason="name_too_long", details=details)
    found = role_for_groups(groups, settings.oidc_roles)
    if found is None:
        why = (f"the provider sent no {claim!r} claim ({variable('oidc_groups_claim')}); "
               "configure it to send your groups" if given is None else
               f"none of your groups ({', '.join(groups) or 'none'}) is given a role in "
               f"{variable('oidc_roles')}")
        raise SignInRefused(403, f"You signed in at the identity provider as {actor}, but "
                            f"Riposte gives you no role: {why}. Ask a Riposte admin to map "
                            "your group.", reason="no_mapped_group", actor=actor,
                            details={**details, "groups": groups[:50]})
    role, mapped = found
    if role not in DECIDING_ROLES:
        raise SignInRefused(403, f"You signed in at the identity provider as {actor}, but your "
                            f"groups ({', '.join(mapped)}) give you the {role} role, which cannot "
                            f"use the console ({' or '.join(DECIDING_ROLES)} can).",
                            reason="role_cannot_use_console", actor=actor,
                            details={**details, "role": role, "groups": mapped})
    identity = ConsoleIdentity(name=name, role=role, via="oidc", subject=subject, email=email)
    return identity, {**details, "role": role, "groups": mapped}


async def _refuse(request: Request, refused: SignInRefused, *,
                  next_path: str = HOME) -> HTMLResponse:
    """Audit a refused sign-in (anonymous ones at the bounded rate); say why on the sign-in
    page, whose link to the provider starts again."""
    log.warning("console sign-in refused (%s): %s", refused.reason, refused.message)
    runtime = runtime_of(request)
    if refused.actor is not None or refusals.recorded(request, UNPROVEN):
        address = request.client.host if request.client is not None else "unknown"
        details = {"via": "oidc", "reason": refused.reason, "problem": refused.message,
                   "address": address, **refused.details}
        await run_in_threadpool(_record, runtime, refused.actor or "anonymous",
                                "console.sign_in_refused", details)
    return sign_in_page(request, runtime, next_path=next_path, status=refused.status,
                        message=f"Not signed in: {refused.message[:1].lower()}"
                                f"{refused.message[1:]}", message_kind="error")


def _record(runtime: Runtime, actor: str, verb: str, details: dict[str, Any]) -> None:
    with runtime.sessions.begin() as session:
        audit.record(session, actor=actor, verb=verb, details=details)


def _not_configured(request: Request) -> HTMLResponse:
    return sign_in_page(request, runtime_of(request), next_path=HOME, status=404,
                        message="Signing in with an identity provider is not configured here "
                                f"({variable('oidc_issuer')} is not set).",
                        message_kind="error")
