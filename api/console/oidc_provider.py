"""The OpenID provider as Riposte talks to it: discovery, keys, the code exchange, ID tokens.

Every way the provider can fail a sign-in is a :class:`SignInRefused` saying what went wrong:
502 when it cannot be reached or answers what no provider should, 4xx when it refuses.
"""

from __future__ import annotations

import base64
import functools
import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
)
from joserfc.jwk import KeySet

from api.console.oidc_flow import Flow
from core.settings import variable

log = logging.getLogger("riposte.api")

PROVIDER_SECONDS = 3600.0  # the provider's configuration and keys are read again after this
LEEWAY_SECONDS = 60  # clock difference tolerated on the ID token's times
PROVIDER_TIMEOUT = httpx.Timeout(10.0)
# Signatures with the provider's published keys only: never "none", nor HS* (keyed with the
# client secret, which would make Riposte able to forge its own ID tokens).
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                       "ES256", "ES384", "ES512", "EdDSA")
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
