"""Every error the API answers is an RFC 9457 problem (api.problems): type, title, status,
detail, and the ``code`` clients branch on.

Service errors map to one status each; bad input is a 4xx that says what to fix; anything
unexpected is a 500 whose body says nothing about the code (the log has the traceback).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import refusals
from api.problems import PROBLEM_MEDIA_TYPE, install_openapi, problem_body, problem_response
from api.problems import code_of as _code_of
from engine.conductor import IllegalTransition
from engine.delivery_json import MalformedJson, UnstorableText, parse_delivery_json
from engine.store.alerts import record_rejected_delivery
from engine.store.errors import Conflict, Forbidden, NotFound

log = logging.getLogger("riposte.api")

RETRY_AFTER_SECONDS = 5
_MAX_LISTED_PROBLEMS = 5
# Endpoints where a refused body is still a delivery to record, with the source it records.
DELIVERY_ENDPOINTS = {
    "/v1/alerts": "unknown",
    "/v1/webhooks/sns": "sns",
    "/v1/webhooks/eventbridge": "eventbridge",
    "/v1/webhooks/cloudtrail": "cloudtrail",
}
SNS_ENDPOINT = "/v1/webhooks/sns"
# Webhooks also record refusals raised as ApiError (bad signature, malformed body, auth).
WEBHOOK_ENDPOINTS = frozenset(path for path in DELIVERY_ENDPOINTS if "/webhooks/" in path)


class ApiError(Exception):
    """An answer other than success, raised from a route or a dependency."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _code_of(status)
        self.message = message
        self.headers = dict(headers or {})


def unavailable(message: str) -> ApiError:
    """Return the 503 that tells a sender to retry later."""
    return ApiError(503, message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def error_body(status: int, message: str, *, code: str | None = None) -> dict[str, Any]:
    """Return the members of an error answer (a problem: api.problems)."""
    return problem_body(status, message, code=code)


def error_response(
    status: int, message: str, *, code: str | None = None,
    headers: Mapping[str, str] | None = None, errors: list[dict[str, str]] | None = None,
) -> JSONResponse:
    """Return an error answer (a problem: api.problems)."""
    return problem_response(status, message, code=code, headers=headers, errors=errors)


def install(app: FastAPI) -> None:
    """Answer every known failure with its status and a problem; document them in OpenAPI."""
    install_openapi(app)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(NotFound, _status(404))
    app.add_exception_handler(Conflict, _status(409))
    app.add_exception_handler(IllegalTransition, _status(409))
    app.add_exception_handler(Forbidden, _status(403))
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(DataError, _data_error)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    response = error_response(exc.status, exc.message, code=exc.code, headers=exc.headers)
    if (request.method == "POST" and request.url.path in WEBHOOK_ENDPOINTS
            and 400 <= exc.status < 500):
        await _record_rejected_delivery(request, response)
    return response


def _status(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return error_response(status, str(exc))

    return handler


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
        # Starlette names the methods of the first route of the path; there may be more.
        headers = {**(exc.headers or {}), "Allow": ", ".join(_allowed_methods(request))}
        return error_response(405, message, headers=headers)
    elif exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
        # FastAPI's own parse of a JSON body failed (an integer too long, nesting too deep):
        # name the problem as the webhooks do, and record the refused delivery.
        response = error_response(400, await _body_problem(request), code="malformed_json")
        if request.method == "POST" and request.url.path in DELIVERY_ENDPOINTS:
            await _record_rejected_delivery(request, response)
        return response
    return error_response(exc.status_code, message, headers=exc.headers)


def _allowed_methods(request: Request) -> list[str]:
    # The OpenAPI document's paths: the public list of what the API serves, however FastAPI
    # nests its routers.
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {method.upper() for method in operations}
    if "GET" in methods:
        methods.add("HEAD")  # Starlette answers HEAD wherever it answers GET
    return sorted(methods)


async def _body_problem(request: Request) -> str:
    try:
        parse_delivery_json(await request.body())
    except (MalformedJson, UnstorableText) as exc:
        return f"malformed JSON body: {exc}"
    return "malformed JSON body"


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable during %s %s: %s", request.method, request.url.path,
                type(exc).__name__)
    return error_response(
        503, "the database is unavailable; retry later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # Input validation keeps these out; a value the database still refuses is the caller's.
    log.warning("database refused a value in %s %s: %s", request.method, request.url.path,
                getattr(exc, "orig", exc))
    return error_response(400, "a value in the request cannot be stored or searched "
                               "(e.g. it holds a NUL character or is out of range)")


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    response = _validation_response(exc)
    if request.method == "POST" and request.url.path in DELIVERY_ENDPOINTS:
        await _record_rejected_delivery(request, response)
    return response


async def _record_rejected_delivery(request: Request, response: JSONResponse) -> None:
    """Keep a trace of a refused delivery (every delivery is recorded, with its reason).

    One from a sender that proved no identity is recorded at a bounded rate (api.refusals).
    """
    why = _unproven_sender(request, response.status_code)
    if why is not None and not refusals.recorded(request, why):
        return
    body = await request.body()
    reason = json.loads(bytes(response.body)).get("detail", "")

    def record() -> None:
        with request.app.state.runtime.sessions.begin() as session:
            record_rejected_delivery(
                session=session, endpoint=request.url.path,
                source=DELIVERY_ENDPOINTS.get(request.url.path, "unknown"),
                reason=f"{response.status_code}: {reason}",
                body_sha256=hashlib.sha256(body).hexdigest(), body_bytes=len(body),
            )

    try:
        await run_in_threadpool(record)
    except DBAPIError as err:  # the refusal stands even if its trace cannot be stored
        log.warning("could not record a rejected delivery: %s", type(err).__name__)


def _unproven_sender(request: Request, status: int) -> str | None:
    """Say why a refused delivery's sender proved no identity, or None if it did."""
    if hasattr(request.state, "refusal_recorded"):
        return refusals.MISSING  # refused by authentication (401), decided there already
    # The SNS endpoint's credential is the message's signature on an allowed topic: a 400 (not
    # an SNS message) or 403 (signature, topic, replay) comes before its sender is known.
    if request.url.path == SNS_ENDPOINT and status in (400, 403):
        return refusals.SNS_UNPROVEN
    return None


def _validation_response(exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            detail = (err.get("ctx") or {}).get("error", "not JSON")
            position = err["loc"][-1] if err.get("loc") else "?"
            return error_response(400, f"malformed JSON body: {detail} at position {position}",
                                  code="malformed_json")
        if tuple(err.get("loc", ())) == ("body",) and isinstance(err.get("input"), bytes):
            return error_response(
                415, "the body must be JSON sent with Content-Type: application/json"
            )
    problems = [{"field": _field(err.get("loc", ())), "message": _problem(err)} for err in errors]
    listed = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:_MAX_LISTED_PROBLEMS])
    more = len(problems) - _MAX_LISTED_PROBLEMS
    message = f"invalid request: {listed}" + (f" (and {more} more)" if more > 0 else "")
    return error_response(422, message, errors=problems)


def _field(loc: Any) -> str:
    return ".".join(str(part) for part in loc) or "request"


def _problem(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "field required"
    message = str(err.get("msg", "invalid value"))
    # pydantic prefixes messages of our own validators with "Value error, ".
    return message.removeprefix("Value error, ")


class CatchAllMiddleware:
    """Answer any exception nothing else handled with a bare 500, logging the traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # the answer is half sent: only the server can cut the connection
            body = json.dumps(error_body(500, "internal error; it has been logged"))
            await send({
                "type": "http.response.start",
                "status": 500,
                "headers": [(b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                            (b"content-length", str(len(body)).encode())],
            })
            await send({"type": "http.response.body", "body": body.encode()})
