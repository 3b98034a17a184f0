"""Refuse query parameters a route does not take, or takes once but were given more often.

A typo is an error, not a silent default.

The request bodies refuse unknown fields (api.schemas.RequestModel); this does the same for the
query string of the API's own routes (not the webhooks: a sender may add parameters of its own).
"""

from __future__ import annotations

from collections import Counter

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


def _names(dependant: Dependant) -> list[str]:
    names = [param.alias for param in dependant.query_params]
    for sub in dependant.dependencies:
        names += _names(sub)
    return names


async def refuse_unknown_query(request: Request) -> None:
    """Answer 422 naming every query parameter the route does not take or that is repeated."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _names(route.dependant)  # a few fields to walk: cheaper than any cache
    given = Counter(name for name, _ in request.query_params.multi_items())
    problems = [
        {"type": "extra_forbidden", "loc": ("query", name), "msg": "unknown parameter",
         "input": None} if name not in known else
        # Every parameter takes one value: FastAPI would read the last and drop the others.
        {"type": "value_error", "loc": ("query", name), "msg": "given more than once",
         "input": None}
        for name, count in given.items() if name not in known or count > 1]
    if problems:
        raise RequestValidationError(problems)


STRICT_QUERY = [Depends(refuse_unknown_query)]
