"""Give every HTTP request an id: on every log line it causes and in its answer's header.

The id is the caller's ``X-Request-ID`` when it is sane (1 to 128 characters among letters,
digits and ``-_.:@+=``; a proxy's UUID, a load balancer's ``Root=1-…``-style trace), else a new
UUID. An id that is not sane is replaced, never echoed: a header is attacker-chosen text, and a
log line or another system's header is no place for it.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logs import bound

HEADER = "X-Request-ID"
_HEADER_KEY = HEADER.lower().encode("latin-1")
SANE = re.compile(r"[A-Za-z0-9\-_.:@+=]{1,128}")
STATE_KEY = "request_id"  # request.state.request_id, for whoever wants to show it


def request_id(given: bytes | None) -> str:
    """Return the caller's id when it is sane, else a new one."""
    if given is not None:
        text = given.decode("latin-1")
        if SANE.fullmatch(text):
            return text
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Bind the request's id to the log lines of everything it runs; answer it in the header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == _HEADER_KEY), None)
        rid = request_id(given)
        scope.setdefault("state", {})[STATE_KEY] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        with bound(request_id=rid):
            await self.app(scope, receive, send_with_id)
