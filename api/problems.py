"""Error answers as RFC 9457 problem details, and their place in the OpenAPI document.

Every error the API answers is ``application/problem+json``::

    {"type": "urn:riposte:problem:not_found", "title": "Not Found", "status": 404,
     "detail": "no run '0192…'", "code": "not_found"}

``code`` (an extension member) is the machine-readable reason clients branch on; ``type`` is
the same reason as a URI, as the RFC asks. A 422 adds ``errors``: one ``{field, message}`` per
problem, ``field`` being where it is (``query.limit``, ``body.name``, ``path.run_id``).
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.schemas.common import STORABLE_JSON_SCHEMA

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:riposte:problem:"

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
}
# Titles of the codes that say more than their status does.
_TITLES = {
    "malformed_json": "Malformed JSON body",
    "too_many_events": "Too many events in one delivery",
    "body_too_large": "Request body too large",
}


class FieldProblem(BaseModel):
    """What is wrong with one part of a request."""

    field: str = Field(description="Where: query.limit, path.run_id, body.severity, …")
    message: str = Field(description="What is wrong, in words.")


class Problem(BaseModel):
    """An error answer (RFC 9457 problem details)."""

    type: str = Field(description="A URI naming the kind of problem: urn:riposte:problem:<code>.")
    title: str = Field(description="A short summary of that kind of problem.")
    status: int = Field(description="The HTTP status.")
    detail: str = Field(description="What went wrong this time and what to do about it.")
    code: str = Field(description="The kind of problem as a short code clients can branch on "
                      "(not_found, invalid_request, malformed_json, …).")
    errors: list[FieldProblem] | None = Field(
        default=None, description="422 only: every problem with the request, where and what.")


def code_of(status: int) -> str:
    """Return the code of a status's problems when nothing more specific is known."""
    return CODES.get(status, "error")


def problem_body(
    status: int, detail: str, *, code: str | None = None,
    errors: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Return the members of a problem answer."""
    code = code or code_of(status)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body: dict[str, Any] = {"type": TYPE_PREFIX + code, "title": _TITLES.get(code, phrase),
                            "status": status, "detail": detail, "code": code}
    if errors is not None:
        body["errors"] = errors
    return body


def problem_response(
    status: int, detail: str, *, code: str | None = None,
    headers: Mapping[str, str] | None = None, errors: list[dict[str, str]] | None = None,
) -> JSONResponse:
    """Return a problem answer."""
    return JSONResponse(problem_body(status, detail, code=code, errors=errors),
                        status_code=status, headers=dict(headers or {}),
                        media_type=PROBLEM_MEDIA_TYPE)


# ---------------------------------------------------------------------------------------------
# The OpenAPI document

_DESCRIPTIONS = {
    400: "The request is malformed (the detail says how).",
    401: "No live token: send Authorization: Bearer <token>.",
    403: "The token's role may not do this.",
    404: "Not found.",
    409: "Conflicts with the resource's state.",
    413: "The body is over RIPOSTE_MAX_BODY_BYTES.",
    415: "The body must be JSON (Content-Type: application/json).",
    422: "A parameter or the body is invalid: errors lists every problem.",
    502: "An upstream service refused.",
    503: "The database is unavailable: retry after Retry-After seconds.",
}
_REF = {"$ref": "#/components/schemas/Problem"}

Responses = dict[int | str, dict[str, Any]]


def problems(*statuses: int, described: Mapping[int, str] | None = None) -> Responses:
    """Return the ``responses=`` entries of the error statuses a route can answer.

    Each is documented as ``application/problem+json`` with the Problem schema; ``described``
    replaces the generic description of a status with the route's own.
    """
    described = described or {}
    return {status: {"description": described.get(status, _DESCRIPTIONS.get(status, "Error")),
                     "content": {PROBLEM_MEDIA_TYPE: {"schema": _REF}}}
            for status in statuses}


# What every route that takes a token can answer besides its own problems.
AUTHENTICATED = (401, 403, 503)
# What every route that takes a JSON body can answer besides its own problems.
WITH_BODY = (400, 413, 415, 422)


def install_openapi(app: FastAPI) -> None:
    """Add the Problem schema (and StorableJson) to the app's OpenAPI document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, summary=app.summary,
                description=app.description, routes=app.routes, servers=app.servers)
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(problem.pop("$defs", {}))
            schemas["Problem"] = problem
            schemas["StorableJson"] = STORABLE_JSON_SCHEMA
            app.openapi_schema = document
        return app.openapi_schema

    setattr(app, "openapi", openapi)  # noqa: B010  (FastAPI's documented way to customise it)

