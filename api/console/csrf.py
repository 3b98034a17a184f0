"""Cross-site request forgery: every console form carries a secret another site cannot read.

A signed-in form carries the session's own CSRF secret (made at sign-in, kept in the signed
session cookie). The sign-in form, before any session, carries a random value also set in a
short-lived signed cookie of its own (double submit): another site can make a browser post to
``/ui/sign-in``, but not with the value of that cookie. Each POST compares the two in constant
time and is refused (403) otherwise, before anything is done.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, Request, Response
from itsdangerous import BadData, URLSafeTimedSerializer

from api.console.sessions import is_secure, signer_of

FIELD = "csrf_token"
SIGN_IN_COOKIE = "riposte_sign_in"
SECURE_SIGN_IN_COOKIE = "__Host-riposte_sign_in"
SIGN_IN_SECONDS = 3600  # how long a sign-in page may stay open before its form is refused
_SALT = "riposte.console.sign-in"
MAX_FIELDS = 20


class CsrfRefused(Exception):
    """A form came without the secret its page was given: refused, nothing done."""


def check(expected: str, sent: str | None) -> None:
    """Raise ``CsrfRefused`` unless ``sent`` is ``expected``."""
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRefused("the form did not carry this session's CSRF token")


def new_token() -> str:
    """Return a fresh random token for a sign-in form."""
    return secrets.token_urlsafe(32)


def set_sign_in_cookie(request: Request, response: Response, token: str) -> None:
    """Set the cookie that the sign-in form carrying ``token`` is checked against."""
    secure = is_secure(request)
    response.set_cookie(
        SECURE_SIGN_IN_COOKIE if secure else SIGN_IN_COOKIE, _serializer(request).dumps(token),
        max_age=SIGN_IN_SECONDS, path="/", secure=secure, httponly=True, samesite="lax",
    )


def check_sign_in(request: Request, sent: str | None) -> None:
    """Raise ``CsrfRefused`` unless ``sent`` is the token of the sign-in cookie."""
    cookie = request.cookies.get(SECURE_SIGN_IN_COOKIE if is_secure(request) else SIGN_IN_COOKIE)
    if not cookie:
        raise CsrfRefused("no sign-in cookie: cookies may be blocked, or the page is too old")
    try:
        expected = _serializer(request).loads(cookie, max_age=SIGN_IN_SECONDS)
    except BadData:
        raise CsrfRefused("the sign-in cookie is altered or too old") from None
    check(str(expected), sent)


def forget_sign_in(response: Response) -> None:
    """Delete the sign-in form's cookie (signed in, it is of no more use)."""
    response.delete_cookie(SECURE_SIGN_IN_COOKIE, path="/", secure=True, httponly=True,
                           samesite="lax")
    response.delete_cookie(SIGN_IN_COOKIE, path="/", httponly=True, samesite="lax")


async def form_fields(request: Request) -> dict[str, str]:
    """Read an ``application/x-www-form-urlencoded`` body: each field's first value.

    The console's forms send nothing else (no files), so no multipart parser is needed; the
    app's body limit bounds the size.
    """
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        parsed = parse_qs(body, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:  # more fields than any console form has: not one of its forms
        return {}
    return {name: values[0] for name, values in parsed.items()}


FormDep = Annotated[dict[str, str], Depends(form_fields)]


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return signer_of(request).sibling(_SALT)
