"""Sign-in to the console with OpenID Connect: the authorization code flow with PKCE.

``GET /ui/sign-in/oidc?next=/ui/…`` sends the browser to the provider's authorization endpoint
with a state, a nonce and a PKCE S256 challenge. What the callback needs to check the answer
(the state, the nonce, the code verifier, where to go next) travels in a short-lived HttpOnly
cookie signed with the console's session key (``RIPOSTE_CONSOLE_SECRET_KEY``), not in this
process's memory, so that any API replica can take the callback.
``GET /ui/sign-in/oidc/callback`` checks the state, exchanges the code with the verifier,
validates the ID token with the provider's published keys (signature, issuer, audience, expiry,
nonce), maps the person's groups to a role (``RIPOSTE_OIDC_ROLES``, the highest wins) and starts
a console session as that person.

A sign-in that fails is a page saying what went wrong — 4xx, or 502 when the provider cannot be
reached or answers what no provider should — and an audit row ``console.sign_in_refused``: as
the person when the provider vouched for them (signed in, but given no role that may use the
console), else as ``anonymous`` at the bounded rate of api/refusals.py, since anyone can send a
browser to the callback.
"""

from __future__ import annotations

import base64
import functools
import logging
import secrets
import ssl
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, get_args
from urllib.parse import quote, urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadData
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
)
from joserfc.jwk import KeySet

from api import refusals
from api.console.access import HOME, safe_next
from api.console.sessions import (
    ConsoleIdentity,
    caller_of,
    is_secure,
    signer_of,
    start_session,
)
from api.console.signin import sign_in_page
from api.deps import Runtime, runtime_of
from core.settings import Role, Settings, variable
from engine import audit
from engine.identities import DECIDING_ROLES, NAME_LIMIT

log = logging.getLogger("riposte.api")

router = APIRouter(prefix="/ui/sign-in/oidc", include_in_schema=False)

FLOW_COOKIE = "riposte_oidc_flow"
FLOW_COOKIE_PATH = "/ui/sign-in/oidc"  # sent to the callback only, never to the console's pages
FLOW_SALT = "riposte.console.oidc-flow"  # the session key, for another purpose
FLOW_SECONDS = 600  # time for a person to sign in at the provider (password, MFA, a coffee)
PROVIDER_SECONDS = 3600.0  # the provider's configuration and keys are read again after this
LEEWAY_SECONDS = 60  # clock difference tolerated on the ID token's times
PROVIDER_TIMEOUT = httpx.Timeout(10.0)
# Signatures with the provider's published keys only: never "none", nor HS* (keyed with the
# client secret, which would make Riposte able to forge its own ID tokens).
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                       "ES256", "ES384", "ES512", "EdDSA")
ROLES_LOWEST_FIRST: tuple[str, ...] = get_args(Role)
# api/refusals.py's label for a refused sign-in that no provider vouched for.
UNPROVEN = "oidc_unproven"
MAX_SHOWN = 300  # characters of a provider's error description shown and audited


class SignInRefused(Exception):
    """A sign-in that cannot go on: the page's status and what it says, the audit row's why.

    ``actor``: the person, when the provider vouched for them; None: anonymous.
    """

    def __init__(self, status: int, message: str, *, reason: str, actor: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.actor = actor
        self.details = details or {}


# ---------------------------------------------------------------------------------------------
# The flow's state, kept by the browser


@dataclass(frozen=True)
class Flow:
    """One sign-in under way: what the callback checks, and where the person goes after."""

    state: str
    nonce: str
    verifier: str
    next: str
    redirect_uri: str

    @classmethod
    def begin(cls, *, next_path: str, redirect_uri: str) -> Flow:
        """Start a sign-in with fresh random values (a 64-character PKCE code verifier)."""
        return cls(state=generate_token(32), nonce=generate_token(32),
                   verifier=generate_token(64), next=next_path, redirect_uri=redirect_uri)


def seal_flow(request: Request, flow: Flow) -> str:
    """Return the flow cookie's value: ``flow``, signed and dated."""
    return signer_of(request).sibling(FLOW_SALT).dumps(asdict(flow))


def open_flow(request: Request) -> Flow | None:
    """Return the flow the request's cookie carries; None if absent, altered or stale."""
    value = request.cookies.get(FLOW_COOKIE)
    if not value:
        return None
    try:
        sealed: Any = signer_of(request).sibling(FLOW_SALT).loads(value, max_age=FLOW_SECONDS)
        return Flow(**{name: str(sealed[name]) for name in Flow.__dataclass_fields__})
    except (BadData, KeyError, TypeError):
        return None


def role_for_groups(groups: list[str], roles: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """Return the highest role the mapped ones among ``groups`` give, with those groups; None
    when no group is mapped."""
    mapped = sorted({group for group in groups if group in roles})
    if not mapped:
        return None
    return max((roles[group] for group in mapped), key=ROLES_LOWEST_FIRST.index), mapped


# ---------------------------------------------------------------------------------------------
# The provider


@dataclass(frozen=True)
class ProviderConfiguration:
    """What Riposte reads of the provider's discovery document."""

    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    algorithms: tuple[str, ...]
    basic_auth: bool  # the token endpoint takes client_secret_basic (the spec's default)


@dataclass
class Provider:
    """The OpenID provider the settings name: its configuration and keys, kept an hour."""

    issuer: str
    client_id: str
    client_secret: str | None
    _configuration: tuple[ProviderConfiguration, float] | None = field(default=None, repr=False)
    _keys: tuple[KeySet, float] | None = field(default=None, repr=False)

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=PROVIDER_TIMEOUT, verify=_tls())

    async def configuration(self) -> ProviderConfiguration:
        """Return the provider's configuration, from {issuer}/.well-known/openid-configuration."""
        if self._configuration is not None and time.monotonic() < self._configuration[1]:
            return self._configuration[0]
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._get_json(url, "configuration")
        if document.get("issuer") != self.issuer:
            raise SignInRefused(
                502, f"The identity provider's configuration ({url}) names its issuer "
                f"{document.get('issuer')!r}, not {self.issuer!r}: set {variable('oidc_issuer')} "
                "to exactly the provider's issuer.", reason="provider_misconfigured")
        endpoints = {name: document.get(name) for name in
                     ("authorization_endpoint", "token_endpoint", "jwks_uri")}
        missing = [name for name, value in endpoints.items() if not isinstance(value, str)]
        offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = tuple(name for name in ID_TOKEN_ALGORITHMS if name in offered)
        if missing or not algorithms:
            why = (f"has no {', '.join(missing)}" if missing else
                   f"signs ID tokens with {', '.join(map(str, offered))}, none of which Riposte "
                   f"accepts ({', '.join(ID_TOKEN_ALGORITHMS)})")
            raise SignInRefused(502, f"The identity provider's configuration ({url}) {why}.",
                                reason="provider_misconfigured")
        userinfo = document.get("userinfo_endpoint")
        methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        configuration = ProviderConfiguration(
            authorization_endpoint=str(endpoints["authorization_endpoint"]),
            token_endpoint=str(endpoints["token_endpoint"]), jwks_uri=str(endpoints["jwks_uri"]),
            userinfo_endpoint=userinfo if isinstance(userinfo, str) else None,
            algorithms=algorithms, basic_auth="client_secret_basic" in methods,
        )
        self._configuration = (configuration, time.monotonic() + PROVIDER_SECONDS)
        return configuration

    async def keys(self, *, fresh: bool = False) -> KeySet:
        """Return the provider's signing keys (``fresh``: read again, after a key rotation)."""
        if not fresh and self._keys is not None and time.monotonic() < self._keys[1]:
            return self._keys[0]
        url = (await self.configuration()).jwks_uri
        try:
            keys = KeySet.import_key_set(await self._get_json(url, "signing keys"))  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError) as exc:
            raise SignInRefused(502, f"The identity provider's signing keys ({url}) cannot be "
                                f"read: {exc}.", reason="provider_misconfigured") from exc
        self._keys = (keys, time.monotonic() + PROVIDER_SECONDS)
        return keys

    async def exchange(self, flow: Flow, code: str) -> dict[str, Any]:
        """Exchange the authorization code, with the PKCE verifier, for the tokens."""
        configuration = await self.configuration()
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": flow.redirect_uri, "code_verifier": flow.verifier}
        headers = {"Accept": "application/json"}
        if self.client_secret is None:
            form["client_id"] = self.client_id
        elif configuration.basic_auth:  # RFC 6749 2.3.1: each part form-encoded first
            pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form |= {"client_id": self.client_id, "client_secret": self.client_secret}
        url = configuration.token_endpoint
        try:
            async with self._client() as client:
                answer = await client.post(url, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise _unreachable(url, exc) from exc
        tokens = _json_object(answer, url, "token endpoint", refusal=answer.status_code < 500)
        if answer.status_code != 200:
            raise _token_refusal(tokens, answer.status_code)
        if not isinstance(tokens.get("id_token"), str):
            raise SignInRefused(502, f"The identity provider's token endpoint ({url}) answered "
                                "no ID token: is openid among RIPOSTE_OIDC_SCOPES?",
                                reason="provider_misconfigured")
        return tokens

    async def verify_id_token(self, id_token: str, *, nonce: str,
                              access_token: str | None) -> dict[str, Any]:
        """Return the ID token's claims once its signature, issuer, audience, times and nonce
        (and ``at_hash`` against the access token, when it has one) are right."""
        algorithms = (await self.configuration()).algorithms
        try:
            try:
                token = jwt.decode(id_token, await self.keys(), algorithms=algorithms)
            except InvalidKeyIdError:  # signed with a key published since they were read
                token = jwt.decode(id_token, await self.keys(fresh=True), algorithms=algorithms)
            claims = CodeIDToken(
                token.claims, token.header,
                {"iss": {"essential": True, "value": self.issuer},
                 "aud": {"essential": True, "value": self.client_id}},
                {"nonce": nonce, "client_id": self.client_id, "access_token": access_token},
            )
            claims.validate(leeway=LEEWAY_SECONDS)
        except JoseError as exc:
            raise SignInRefused(400, f"The identity provider's ID token is refused: "
                                f"{_id_token_problem(exc)}", reason="id_token_invalid",
                                details={"problem": str(exc)[:MAX_SHOWN]}) from exc
        return dict(claims)

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        """Return the claims the userinfo endpoint gives for ``access_token`` ({} if none)."""
        url = (await self.configuration()).userinfo_endpoint
        if url is None:
            return {}
        return await self._get_json(url, "userinfo endpoint",
                                    headers={"Authorization": f"Bearer {access_token}"})

    async def _get_json(self, url: str, what: str,
                        headers: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            async with self._client() as client:
                answer = await client.get(url, headers={"Accept": "application/json",
                                                        **(headers or {})})
        except httpx.HTTPError as exc:
            raise _unreachable(url, exc) from exc
        document = _json_object(answer, url, what)
        if answer.status_code != 200:
            raise SignInRefused(502, f"The identity provider's {what} ({url}) answered "
                                f"HTTP {answer.status_code}.", reason="provider_error")
        return document


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS settings of every request to the provider, made once: loading the CA
    certificates costs each new client ~0.1 s."""
    return httpx.create_ssl_context()


def _unreachable(url: str, exc: httpx.HTTPError) -> SignInRefused:
    log.warning("OIDC provider unreachable at %s: %s", url, exc)
    return SignInRefused(502, f"The identity provider cannot be reached ({url}: "
                         f"{type(exc).__name__}{': ' + str(exc) if str(exc) else ''}). Try again "
                         "in a moment; if it persists, check RIPOSTE_OIDC_ISSUER and the "
                         "network between Riposte and the provider.",
                         reason="provider_unreachable")


def _json_object(answer: httpx.Response, url: str, what: str, *,
                 refusal: bool = False) -> dict[str, Any]:
    try:
        document = answer.json()
    except ValueError:
        document = None
    if isinstance(document, dict):
        return document
    if refusal and answer.status_code != 200:
        return {}  # an error without a body: _token_refusal says what it can
    raise SignInRefused(502, f"The identity provider's {what} ({url}) answered HTTP "
                        f"{answer.status_code} without a JSON object.", reason="provider_error")


def _token_refusal(answer: dict[str, Any], status: int) -> SignInRefused:
    # RFC 6749 5.2: a 401 is the client's authentication failing, whatever the body says.
    error = str(answer.get("error") or ("invalid_client" if status == 401 else f"HTTP {status}"))
    error = error[:MAX_SHOWN]
    description = str(answer.get("error_description") or "")[:MAX_SHOWN]
    said = f"{error} ({description})" if description else error
    if error in ("invalid_client", "unauthorized_client"):
        return SignInRefused(502, f"The identity provider refused Riposte's client: {said}. "
                             "Check RIPOSTE_OIDC_CLIENT_ID and RIPOSTE_OIDC_CLIENT_SECRET.",
                             reason="client_refused", details={"error": error})
    return SignInRefused(400, f"The identity provider refused the sign-in's code: {said}. A code "
                         "is good once and for a short while: start again.",
                         reason="code_refused", details={"error": error})


def _id_token_problem(exc: JoseError) -> str:
    if isinstance(exc, ExpiredTokenError):
        return "it has expired (is this server's clock right?)."
    if isinstance(exc, BadSignatureError | InvalidKeyIdError):
        return "its signature does not verify with the keys the provider publishes."
    claim = getattr(exc, "claim", None) if isinstance(exc, ClaimError) else None
    return {
        "nonce": "its nonce is not the one this sign-in sent, so it was issued to another "
                 "sign-in (replayed or injected). Start again.",
        "iss": f"it was issued by another issuer than {variable('oidc_issuer')}.",
        "aud": f"it was issued to another client than {variable('oidc_client_id')}.",
        "azp": f"it was issued to another client than {variable('oidc_client_id')}.",
        "at_hash": "it does not belong with the access token it came with.",
    }.get(str(claim), f"{exc.description or type(exc).__name__} ({exc.error}).")


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
