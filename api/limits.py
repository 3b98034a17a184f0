"""Refuse request bodies over the configured size, declared or streamed."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from api.problems import PROBLEM_MEDIA_TYPE


class _BodyTooLarge(Exception):
    """Raised into the application when a streamed body passes the limit."""


class BodyLimitMiddleware:
    """Answer 413 to a body bigger than ``max_bytes``.

    A declared ``Content-Length`` is checked before anything is read; a chunked body is counted
    as it streams, and the application is cut off the moment it passes the limit.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            declared = _declared_length(scope)
        except ValueError:
            await _answer(send, 400, "bad_request", "Content-Length is not a whole number")
            return
        if declared is not None and declared > self.max_bytes:
            await _answer(send, 413, "body_too_large", self._message(declared))
            return

        received = 0
        refused = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if not started and not refused:
                        refused = True
                        await _answer(send, 413, "body_too_large", self._message(None))
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 has been sent; whatever the application says now is moot
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            if not refused:
                raise

    def _message(self, declared: int | None) -> str:
        size = f"{declared} bytes" if declared is not None else "the body"
        return f"{size} is over the limit of {self.max_bytes} bytes"


def _declared_length(scope: Scope) -> int | None:
    """Return the declared Content-Length, None if absent; ValueError if it is not a size."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            if not value.isdigit():
                raise ValueError(value)
            return int(value)
    return None


async def _answer(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(status, message, code=code)).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})
