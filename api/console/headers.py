"""The headers every console answer carries: a strict Content-Security-Policy and friends.

The policy lets a page load only Riposte's own script (htmx), style sheet and images, talk
only to Riposte, post forms only to Riposte, and be framed by nobody. No inline script or
style is allowed at all, so even markup that slipped through escaping could not run.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
# Pages hold incident data: no shared or browser cache keeps them (static assets may be kept).
_NO_STORE = (b"cache-control", b"no-store")
STATIC_PREFIX = "/ui/static/"


def is_console_path(path: str) -> bool:
    """Whether a path is the console's (``/`` redirects to it)."""
    return path in ("/", "/ui") or path.startswith("/ui/")


class ConsoleHeadersMiddleware:
    """Add the console's security headers to every answer under ``/ui/`` (and ``/``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_console_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(STATIC_PREFIX)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [header for header in _HEADERS if header[0] not in present]
                if not static and b"cache-control" not in present:
                    added.append(_NO_STORE)
                message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        await self.app(scope, receive, with_headers)
