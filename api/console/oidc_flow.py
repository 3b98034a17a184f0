"""The state of an OpenID Connect sign-in under way, kept by the browser in a signed cookie.

What the callback needs to check the provider's answer (the state, the nonce, the PKCE code
verifier, where to go next) travels in a short-lived HttpOnly cookie signed with the console's
session key, not in this process's memory, so that any API replica can take the callback.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from authlib.common.security import generate_token
from fastapi import Request
from itsdangerous import BadData

from api.console.sessions import signer_of

FLOW_COOKIE = "riposte_oidc_flow"
FLOW_COOKIE_PATH = "/ui/sign-in/oidc"  # sent to the callback only, never to the console's pages
FLOW_SALT = "riposte.console.oidc-flow"  # the session key, for another purpose
FLOW_SECONDS = 600  # time for a person to sign in at the provider (password, MFA, a coffee)


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
