"""Count and log every refused request (a 4xx answer), by why it was refused.

Whatever refused it — authentication (401), a role (403), a malformed body (400), the body
limit (413), validation (422), a missing thing (404), a conflict (409) — the answer's status
says why, so one middleware outside them all sees every refusal: it counts it in
``riposte_http_refused_total{reason}`` and writes one ``warning`` line with the method, the
path (never its query string), the route, the status and what the answer's body told the
caller, on the request's line (its ``request_id``). A refused alert delivery is also counted
in ``riposte_alerts_received_total{outcome="refused"}``.

No secret reaches that line: the API's refusals never repeat a credential, the query string
(where a careless client may put one) is left out, and the log's filter redacts any credential
by its shape (core.logs).
"""

from __future__ import annotations

import json
import logging

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logs import fields
from engine.metrics import ALERTS_RECEIVED

log = logging.getLogger("riposte.api")

# Why, by status: the label values of the counter, a closed set.
REASONS = {
    400: "malformed",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
}
OTHER = "other"
HTTP_REFUSED = Counter(
    "riposte_http_refused", "Requests refused with a 4xx answer, by why (its status)", ["reason"]
)
# The endpoints whose requests are alert deliveries, and the source they are counted under.
DELIVERY_SOURCES = {
    "/v1/alerts": "generic",
    "/v1/webhooks/sns": "sns",
    "/v1/webhooks/eventbridge": "eventbridge",
    "/v1/webhooks/cloudtrail": "cloudtrail",
}
# Enough of an error body to read what it says; a refusal's body is far smaller.
_BODY_KEPT = 4096
_DETAIL_LIMIT = 500


def reason_of(status: int) -> str:
    """Return the ``reason`` label of a refusal answered with ``status``."""
    return REASONS.get(status, OTHER)


class RefusedRequestsMiddleware:
    """Count and log each 4xx answer of the app it wraps."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        body = bytearray()

        async def watching_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and 400 <= status < 500:
                body.extend(message.get("body", b"")[: _BODY_KEPT - len(body)])
            await send(message)

        await self.app(scope, receive, watching_send)
        if 400 <= status < 500:
            refused(scope, status, bytes(body))


def refused(scope: Scope, status: int, body: bytes) -> None:
    """Count and log the refusal of the request ``scope`` with ``status``."""
    reason = reason_of(status)
    HTTP_REFUSED.labels(reason).inc()
    method, path = scope.get("method", ""), scope.get("path", "")
    source = DELIVERY_SOURCES.get(path)
    if method == "POST" and source is not None:
        ALERTS_RECEIVED.labels(source, "refused").inc()
    route = getattr(scope.get("route"), "path", None)
    detail = _detail(body)
    log.warning("refused %s %s: %d %s%s", method, path, status, reason,
                f": {detail}" if detail else "",
                extra=fields(event="http.refused", method=method, path=path, route=route,
                             status=status, reason=reason, client=_client(scope)))


def _detail(body: bytes) -> str:
    """What an error body told the caller (RFC 9457 ``detail``, or ``message``), shortened."""
    try:
        answer = json.loads(body)
    except ValueError:  # not JSON (a page of the console), or cut short
        return ""
    if not isinstance(answer, dict):
        return ""
    said = answer.get("detail") or answer.get("message") or answer.get("title") or ""
    text = said if isinstance(said, str) else json.dumps(said)
    return text[:_DETAIL_LIMIT] + ("…" if len(text) > _DETAIL_LIMIT else "")


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
